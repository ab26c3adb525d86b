"""In-memory stand-ins for the stores the core depends on, with the adapters' conditional semantics.

They let unit tests drive the core's decisions (the workflow's next step, pause/resume/cancel) in
milliseconds. tests/store_contract.py holds the checks that the fakes and the DynamoDB adapters
must both pass, so a fake cannot drift from the store it stands for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bulkmail.errors import CampaignNotFound
from bulkmail.models import CAMPAIGN_COUNTERS, BatchMessage, BatchRecord, CampaignStatus, Claim


class FakeCampaigns:
    """The campaigns table (adapters/campaigns.CampaignStore)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def get(self, campaign_id: str) -> dict[str, Any]:
        if campaign_id not in self.items:
            raise CampaignNotFound(campaign_id)
        return copy.deepcopy(self.items[campaign_id])

    def create(self, campaign: dict[str, Any]) -> bool:
        if campaign["campaign_id"] in self.items:
            return False
        self.items[campaign["campaign_id"]] = {
            **copy.deepcopy(campaign),
            **dict.fromkeys(CAMPAIGN_COUNTERS, 0),
            "total_contacts": campaign.get("total_contacts", 0),
            "fanout_done": False,
            "fanout_page": 0,
            "fanout_cursor": None,
        }
        return True

    def update_fields(self, campaign_id: str, fields: dict[str, Any]) -> None:
        self._item(campaign_id).update(copy.deepcopy(fields))

    def set_estimate(self, campaign_id: str, estimate: int) -> bool:
        item = self._item(campaign_id)
        if item["fanout_page"] != 0 or item["fanout_done"]:
            return False
        item["total_contacts"] = estimate
        return True

    def record_fanout_page(
        self, campaign_id: str, page_no: int, cursor: dict[str, Any] | None, queued: int, now: str
    ) -> bool:
        item = self._item(campaign_id)
        if item["fanout_page"] != page_no:
            return False
        item.update(fanout_page=page_no + 1, fanout_cursor=copy.deepcopy(cursor), updated_at=now)
        if cursor is None:
            item.update(fanout_done=True, total_contacts=item["queued_count"] + queued)
        item["queued_count"] += queued
        return True

    def transition(
        self,
        campaign_id: str,
        from_statuses: tuple[CampaignStatus, ...],
        to: CampaignStatus,
        now: str,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        item = self.items.get(campaign_id)
        if item is None or item["status"] not in {s.value for s in from_statuses}:
            return False
        item.update(status=to.value, updated_at=now, **copy.deepcopy(extra or {}))
        return True

    def _item(self, campaign_id: str) -> dict[str, Any]:
        if campaign_id not in self.items:  # the adapters' updates are conditional on the item existing
            raise CampaignNotFound(campaign_id)
        return self.items[campaign_id]


@dataclass
class FakeContacts:
    """The contacts table's reads the fan-out makes (adapters/contacts.ContactStore)."""

    contacts: list[dict[str, Any]] = field(default_factory=list)

    def _recipient(self, contact: dict[str, Any], list_name: str | None) -> bool:
        subscribed = contact.get("status", "subscribed") == "subscribed"
        return subscribed and (not list_name or list_name in contact.get("lists", ()))

    def scan_page(
        self, cursor: dict[str, Any] | None, limit: int, list_name: str | None
    ) -> tuple[list[str], dict[str, Any] | None]:
        """As a DynamoDB Scan with Limit: `limit` items read, then filtered (a page may be short)."""
        start = cursor["position"] if cursor else 0
        read = self.contacts[start : start + limit]
        emails = [c["email"] for c in read if self._recipient(c, list_name)]
        end = start + len(read)
        return emails, ({"position": end} if end < len(self.contacts) else None)

    def count_recipients(self, list_name: str | None) -> int:
        return sum(self._recipient(c, list_name) for c in self.contacts)

    def has_recipient(self, list_name: str | None) -> bool:
        return self.count_recipients(list_name) > 0


class FakeLedger:
    """The ledger's parking and failed-recipient reads (adapters/ledger.Ledger)."""

    def __init__(self, campaigns: FakeCampaigns) -> None:
        self.campaigns = campaigns
        self.batches: dict[tuple[str, str], dict[str, Any]] = {}
        self.failed: dict[str, list[str]] = {}

    def claim(self, campaign_id: str, batch_id: str, token: str, now: float, lease_seconds: int) -> BatchRecord:
        batch = self.batches.setdefault((campaign_id, batch_id), {"status": "new", "attempts": 0})
        free = batch["status"] in ("new", "pending", "dead")
        if not (free or (batch["status"] == "claimed" and batch["lease_until"] < int(now))):
            state = {"done": Claim.DONE, "parked": Claim.PARKED}.get(batch["status"], Claim.BUSY)
            return BatchRecord(state, batch["attempts"])
        batch.update(status="claimed", claim_token=token, lease_until=int(now) + lease_seconds)
        batch["attempts"] += 1
        return BatchRecord(Claim.CLAIMED if batch["attempts"] == 1 else Claim.RECLAIMED, batch["attempts"])

    def park(self, campaign_id: str, batch_id: str, token: str, emails: list[str], now_iso: str) -> bool:
        batch = self.batches.get((campaign_id, batch_id), {})
        paused = self.campaigns.items.get(campaign_id, {}).get("status") == CampaignStatus.PAUSED.value
        if not paused or batch.get("claim_token") != token:
            return False
        batch.update(status="parked", emails=list(emails), updated_at=now_iso)
        del batch["claim_token"], batch["lease_until"]
        return True

    def unpark_all(self, campaign_id: str, now_iso: str) -> list[tuple[str, list[str]]]:
        taken = []
        for (campaign, batch_id), batch in sorted(self.batches.items()):
            if campaign == campaign_id and batch["status"] == "parked":
                batch.update(status="pending", updated_at=now_iso)
                taken.append((batch_id, list(batch["emails"])))
        return taken

    def count_failed(self, campaign_id: str) -> int:
        return len(self.failed.get(campaign_id, []))

    def failed_page(
        self, campaign_id: str, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[str], dict[str, Any] | None]:
        failed = self.failed.get(campaign_id, [])
        start = cursor["position"] if cursor else 0
        end = start + limit
        return failed[start:end], ({"position": end} if end < len(failed) else None)


class FakeQueue:
    """The send queue (adapters/queue.SendQueue): what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[BatchMessage] = []

    def send(self, messages: list[BatchMessage]) -> None:
        self.sent.extend(messages)
