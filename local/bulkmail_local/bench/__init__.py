"""Benchmarks on the embedded runtime: figures to compare within one run, not pass/fail tests."""

from __future__ import annotations

from bulkmail.adapters.contacts import ContactStore
from bulkmail.contact_import import normalise_contacts
from bulkmail_local.demo import generated_contacts


def load_generated_contacts(rt, n: int) -> None:
    """n generated contacts (demo.generated_contacts) into the runtime's contacts table."""
    items, _ = normalise_contacts(generated_contacts(n))
    ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"]).put_many(items)
