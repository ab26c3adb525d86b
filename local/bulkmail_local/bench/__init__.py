"""Benchmarks on the embedded runtime: figures to compare within one run, not pass/fail tests."""

from __future__ import annotations

from pathlib import Path

from bulkmail.adapters.contacts import ContactStore
from bulkmail.contact_import import normalise_contacts
from bulkmail_local.demo import generated_contacts

# A 60 KB HTML newsletter (nested tables, inline CSS, a few placeholders): the bench's and the cost
# model's default content, since a 60-byte body hides what real content costs (issue 14).
SAMPLE_NEWSLETTER = Path(__file__).with_name("newsletter.html")


def load_generated_contacts(rt, n: int) -> None:
    """n generated contacts (demo.generated_contacts) into the runtime's contacts table."""
    items, _ = normalise_contacts(generated_contacts(n))
    ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"]).put_many(items)
