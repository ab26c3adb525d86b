"""The batch claim's lease is the template's, and outlives the worker that holds it."""

from dataclasses import MISSING
from pathlib import Path

from bulkmail.settings import Settings
from bulkmail_local.runtime.template import load_template

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")


def test_the_lease_comes_from_the_template_and_outlives_the_workers_timeout() -> None:
    lease = int(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["LEASE_SECONDS"])
    worker = TEMPLATE["Resources"]["SendEmailsFunction"]["Properties"]
    timeout = int(worker.get("Timeout", TEMPLATE["Globals"]["Function"].get("Timeout", 3)))
    assert lease > timeout, "a claim could go stale while its worker still runs: a second worker would send too"
    # No default of its own in Settings to drift from the template's (it was 960 against 180).
    assert Settings.__dataclass_fields__["lease_seconds"].default is MISSING
