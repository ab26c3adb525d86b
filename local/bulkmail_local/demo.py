"""`bulkmail demo`: a real campaign on the embedded runtime, from import to completion."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.ledger import Ledger
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import CampaignNotFound
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.stack import PROJECT_ROOT

EVENTS = PROJECT_ROOT / "events"
_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Zoë", "José"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Ritchie", "Liskov", "O'Brien"]
_COMPANIES = ["Acme Corp", "Initech", "Smith & Sons <Ltd>", "Globex"]


def generated_contacts(n: int) -> list[dict[str, Any]]:
    """n deterministic contacts; every 25th has no first name."""
    return [
        {
            "email": f"contact{i:07d}@example.org",
            "last_name": _LAST[i % len(_LAST)],
            "company": _COMPANIES[i % len(_COMPANIES)],
            "lists": ["newsletter"],
            **({} if i % 25 == 0 else {"first_name": _FIRST[i % len(_FIRST)]}),
        }
        for i in range(n)
    ]


@dataclass
class DemoResult:
    campaign: dict[str, Any]
    execution: dict[str, Any]
    state_path: list[str]
    seconds: float
    outbox: Path
    eml_files: int
    outcomes: Counter = field(default_factory=Counter)
    skipped_reasons: Counter = field(default_factory=Counter)
    rejected_contacts: list[dict[str, Any]] = field(default_factory=list)


def run_demo(
    *,
    contacts: int | None = None,
    outbox: Path = Path("outbox"),
    progress=None,
    campaign_file: Path = EVENTS / "campaign.json",
    contacts_file: Path = EVENTS / "contacts.json",
    timeout: float = 1800,
) -> DemoResult:
    campaign_input = json.loads(campaign_file.read_text())
    if contacts is None:
        sample = json.loads(contacts_file.read_text())
        documents, delete_after_queueing = sample["contacts"], sample.get("demo_delete_after_queueing")
    else:
        documents, delete_after_queueing = generated_contacts(contacts), None
    items, rejected = normalise_contacts(documents)
    campaign_id = campaign_input.setdefault("campaign_id", f"demo_{time.strftime('%Y%m%d_%H%M%S')}")

    with EmbeddedRuntime(outbox=outbox) as rt:
        store = ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"])
        store.put_many(items)
        campaigns = CampaignStore(rt.physical["CampaignsTable"])
        started = time.monotonic()
        if delete_after_queueing:
            rt.pause_workers()  # so that the contact is surely still queued when it is deleted
        arn = rt.start_campaign(campaign_input)

        def campaign_record() -> dict[str, Any] | None:
            try:
                return dict(campaigns.get(campaign_id))  # with its live counts
            except CampaignNotFound:
                return None

        if delete_after_queueing:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                record = campaign_record()
                # Only fanout_done says every contact is queued: CampaignStore.create zeroes total_contacts,
                # so "queued >= total" also holds in the instant between PersistCampaign and the first AdvanceCampaign.
                if record and record.get("fanout_done"):
                    break
                if rt.describe_execution(arn)["status"] != "RUNNING":
                    break
                time.sleep(0.1)
            store.delete(delete_after_queueing)
            rt.resume_workers()

        def tick(_execution: dict[str, Any]) -> None:
            if progress:
                record = campaign_record()
                if record:
                    progress(record)

        execution = rt.wait_for_execution(arn, timeout=timeout, on_tick=tick)
        seconds = time.monotonic() - started
        record = campaign_record() or {}
        rows = Ledger(
            rt.physical["DeliveriesTable"], rt.physical["BatchesTable"], rt.physical["CampaignsTable"]
        ).deliveries_for(campaign_id)
        folder = outbox / campaign_id
        return DemoResult(
            campaign=record,
            execution=execution,
            state_path=rt.state_path(arn),
            seconds=seconds,
            outbox=folder,
            eml_files=len(list(folder.glob("*.eml"))) if folder.exists() else 0,
            outcomes=Counter(r["status"] for r in rows),
            skipped_reasons=Counter(r.get("reason", "") for r in rows if r["status"] == "skipped"),
            rejected_contacts=rejected,
        )


def summarise_path(states: list[str]) -> str:
    """States in the order first entered, with how often each loop state ran."""
    counts = Counter(states)
    return " → ".join(f"{s} ×{counts[s]}" if counts[s] > 1 else s for s in dict.fromkeys(states))
