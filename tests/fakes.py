"""In-memory stand-ins for the stores the core depends on, with the adapters' conditional semantics.

They let unit tests drive the core's decisions (the workflow's next step, pause/resume/cancel) in
milliseconds. tests/store_contract.py holds the checks that the fakes and the DynamoDB adapters
must both pass, so a fake cannot drift from the store it stands for.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bulkmail.errors import BatchBusy, CampaignNotFound
from bulkmail.models import (
    CAMPAIGN_COUNTERS,
    COUNTER_FOR,
    BatchMessage,
    BatchRecord,
    CampaignStatus,
    Claim,
    Contact,
    Lease,
    Outcome,
)
from bulkmail.segments import matches
from bulkmail.settings import Settings


class FakeCampaigns:
    """The campaigns table (adapters/campaigns.CampaignStore)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def get(self, campaign_id: str, *, content: bool = True) -> dict[str, Any]:
        return self.head(campaign_id)  # the fake keeps its counts and content on the record

    def head(self, campaign_id: str) -> dict[str, Any]:
        if campaign_id not in self.items:
            raise CampaignNotFound(campaign_id)
        return copy.deepcopy(self.items[campaign_id])

    def with_content(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def note_counts(self, campaign_id: str, counts: dict[str, int]) -> None:
        self._item(campaign_id)  # CampaignNotFound, as the store's update

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

    def edit(self, campaign_id: str, changes: dict[str, Any], statuses: tuple[str, ...], now: str) -> bool:
        item = self._item(campaign_id)
        if item["status"] not in statuses:
            return False
        item.update({**copy.deepcopy(changes), "updated_at": now})
        return True

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

    def _recipient(self, contact: dict[str, Any], audience: dict[str, Any] | None) -> bool:
        subscribed = contact.get("status", "subscribed") == "subscribed"
        if audience is None:
            return subscribed
        on = set(contact.get("lists", ())).intersection(audience["lists"])
        return subscribed and bool(on) and matches(contact, audience.get("match", []))

    def recipients_page(
        self, audience: dict[str, Any] | None, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[str], dict[str, Any] | None]:
        """As a DynamoDB Scan with Limit: `limit` items read, then filtered (a page may be short)."""
        start = cursor["position"] if cursor else 0
        read = self.contacts[start : start + limit]
        emails = [c["email"] for c in read if self._recipient(c, audience)]
        end = start + len(read)
        return emails, ({"position": end} if end < len(self.contacts) else None)

    def count_recipients(self, audience: dict[str, Any] | None) -> int:
        return sum(self._recipient(c, audience) for c in self.contacts)

    def has_recipient(self, audience: dict[str, Any] | None) -> bool:
        return self.count_recipients(audience) > 0

    def batch_get(self, emails: Iterable[str]) -> dict[str, Contact]:
        wanted = set(emails)
        return {
            c["email"]: Contact(**{k: v for k, v in c.items() if k != "lists"}, lists=tuple(c.get("lists", ())))
            for c in self.contacts
            if c["email"] in wanted
        }


class FakeLedger:
    """The delivery ledger and its batch claims (adapters/ledger.Ledger): rows, claims, parking, and
    the one-transaction record of outcomes + counters + release."""

    def __init__(self, campaigns: FakeCampaigns) -> None:
        self.campaigns = campaigns
        self.batches: dict[tuple[str, str], dict[str, Any]] = {}
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    # --- claims ------------------------------------------------------------------------------
    def claim(self, campaign_id: str, batch_id: str, token: str, now: float, lease_seconds: int) -> BatchRecord:
        batch = self.batches.setdefault((campaign_id, batch_id), {"status": "new", "attempts": 0})
        free = batch["status"] in ("new", "pending", "dead")
        if not (free or (batch["status"] == "claimed" and batch["lease_until"] < int(now))):
            state = {"done": Claim.DONE, "parked": Claim.PARKED}.get(batch["status"], Claim.BUSY)
            return BatchRecord(state, batch["attempts"])
        batch.update(status="claimed", claim_token=token, lease_until=int(now) + lease_seconds)
        batch["attempts"] += 1
        claim = Claim.CLAIMED if batch["attempts"] == 1 else Claim.RECLAIMED
        return BatchRecord(claim, batch["attempts"], frozenset(batch.get("counted", ())))

    def _held(self, lease: Lease) -> dict[str, Any]:
        batch = self.batches.get((lease.campaign_id, lease.batch_id), {})
        if batch.get("claim_token") != lease.token:
            raise BatchBusy(f"batch {lease.batch_id} of {lease.campaign_id} was claimed by another worker")
        return batch

    # --- rows --------------------------------------------------------------------------------
    def recorded(self, campaign_id: str, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = ("dead_lettered", "noted_by", "batch_id", "message_id", "replaced_dead_letter")
        return {
            email: {"email": email} | {k: row[k] for k in wanted if k in row}
            for email in dict.fromkeys(emails)
            if (row := self.rows.get((campaign_id, email))) is not None
        }

    def note_sent(self, lease: Lease, outcome: Outcome, now_iso: str) -> bool:
        key = (lease.campaign_id, outcome.email)
        existing = self.rows.get(key)
        if (existing is not None) != outcome.replaces_dead_letter or (existing and not existing.get("dead_lettered")):
            return False
        row = {"status": "sent", "batch_id": lease.batch_id, "updated_at": now_iso, "noted_by": lease.token}
        if outcome.message_id:
            row["message_id"] = outcome.message_id
        if outcome.replaces_dead_letter:
            row["replaced_dead_letter"] = True
        self.rows[key] = row
        return True

    def record(self, lease: Lease, outcomes: list[Outcome], *, batch_status: str, now_iso: str) -> list[Outcome]:
        """All or nothing, as the transaction: a recipient another batch recorded first is left out."""
        campaign = self.campaigns._item(lease.campaign_id)
        batch = self._held(lease)
        recorded = [o for o in outcomes if self._writable(lease.campaign_id, o)]
        for o in recorded:
            key = (lease.campaign_id, o.email)
            counter = COUNTER_FOR[o.status]
            campaign[counter] += 1
            if o.replaces_dead_letter:
                campaign["failed_count"] -= 1
            else:
                campaign["processed_count"] += 1
            if o.noted:  # counted through the batch's set of counted tokens, below
                continue
            row = {"status": o.status.value, "batch_id": lease.batch_id, "updated_at": now_iso}
            row |= {k: v for k, v in (("reason", o.reason), ("message_id", o.message_id)) if v}
            if o.dead_lettered:
                row["dead_lettered"] = True
            self.rows[key] = row
        batch.update(status=batch_status, updated_at=now_iso)
        batch["counted"] = batch.get("counted", set()) | {lease.token} | {o.noted_by for o in outcomes if o.noted}
        del batch["claim_token"], batch["lease_until"]
        return recorded

    def _writable(self, campaign_id: str, outcome: Outcome) -> bool:
        row = self.rows.get((campaign_id, outcome.email))
        if outcome.noted:  # no condition in the transaction: the row is this batch's own
            return row is not None
        if outcome.replaces_dead_letter:
            return row is not None and bool(row.get("dead_lettered"))
        return row is None

    def take_over_for_resend(self, original_id: str, email: str, resend_id: str, lease: Lease) -> bool:
        row = self.rows.get((original_id, email))
        if (
            row is None
            or row["status"] != "failed"
            or "redriven_by" in row
            or row.get("resent_in", resend_id) != resend_id
        ):
            return False
        row["resent_in"] = resend_id
        return True

    def take_back_dead_letter(self, campaign_id: str, email: str, lease: Lease) -> bool:
        row = self.rows.get((campaign_id, email))
        taken = row.get("redriven_by", lease.batch_id) if row else None
        if row is None or not row.get("dead_lettered") or "resent_in" in row or taken != lease.batch_id:
            return False
        row["redriven_by"] = lease.batch_id
        return True

    # --- parking (paused campaigns) ----------------------------------------------------------
    def park(self, lease: Lease, emails: list[str], now_iso: str) -> bool:
        batch = self.batches.get((lease.campaign_id, lease.batch_id), {})
        paused = self.campaigns.items.get(lease.campaign_id, {}).get("status") == CampaignStatus.PAUSED.value
        if not paused or batch.get("claim_token") != lease.token:
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

    def release(self, lease: Lease, now_iso: str) -> None:
        self.record(lease, [], batch_status="pending", now_iso=now_iso)

    # --- reads ---------------------------------------------------------------------------------
    def _failed(self, campaign_id: str) -> list[str]:
        return [
            email for (cid, email), row in sorted(self.rows.items()) if cid == campaign_id and row["status"] == "failed"
        ]

    def count_failed(self, campaign_id: str) -> int:
        return len(self._failed(campaign_id))

    def failed_page(
        self, campaign_id: str, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[str], dict[str, Any] | None]:
        failed = self._failed(campaign_id)
        start = cursor["position"] if cursor else 0
        end = start + limit
        return failed[start:end], ({"position": end} if end < len(failed) else None)


class FakeQueue:
    """The send queue (adapters/queue.SendQueue): what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[BatchMessage] = []

    def send(self, messages: list[BatchMessage]) -> None:
        self.sent.extend(messages)


class FakeTransport:
    """A transport (sending.Transport) that keeps what it accepted; `fail` maps an address to the
    errors its sends raise in turn (then it accepts)."""

    def __init__(self, fail: dict[str, list[Exception]] | None = None) -> None:
        self.accepted: list[Any] = []
        self.fail = {email: list(errors) for email, errors in (fail or {}).items()}

    def send(self, message: Any) -> str:
        errors = self.fail.get(message["To"], [])
        if errors:
            raise errors.pop(0)
        self.accepted.append(message)
        return f"message-{len(self.accepted)}"


def settings(**overrides: Any) -> Settings:
    """A deployment's settings for the fakes: table names that are only names, a lease of a minute."""
    names = {"campaigns_table": "c", "contacts_table": "p", "deliveries_table": "d", "batches_table": "b"}
    return Settings(**names, send_queue_url="q", lease_seconds=60, **overrides)


# --- signup (bulkmail.signup's Signups and RateLimiter) -----------------------------------------------
class FakeSignups:
    """Signups kept on contacts (adapters/signups.SignupStore), a dict of contact items by email."""

    def __init__(self, lists: Iterable[str] = ("news",)) -> None:
        self.lists = set(lists)
        self.items: dict[str, dict[str, Any]] = {}

    def list_exists(self, list_id: str) -> bool:
        return list_id in self.lists

    def request(self, request: Any) -> None:
        item = self.items.get(request.email)
        if item is None:
            self.items[request.email] = {
                "email": request.email,
                "status": "pending",
                "lists": [request.list_id],
                **request.names,
                "created_at": request.consent["requested_at"],
                "pending_signup": dict(request.consent),
            }
        else:
            item["pending_signup"] = dict(request.consent)

    def confirm(self, email: str, list_id: str, requested_at: str, confirmed: dict[str, Any]) -> str:
        from bulkmail.adapters.signups import confirmed_fields  # the adapter's own rule, so the two agree

        item = self.items.get(email)
        pending = (item or {}).get("pending_signup") or {}
        if item is None or pending.get("requested_at") != requested_at or pending.get("list") != list_id:
            on_list = item is not None and item.get("status") == "subscribed" and list_id in item.get("lists", ())
            return "already" if on_list and "deleted_at" not in item else "superseded"
        new = {**item, **confirmed_fields(item, pending, confirmed)}
        for name in ("pending_signup", "deleted_at", "suppressed_at", "suppression"):
            new.pop(name, None)
        self.items[email] = new
        return "confirmed"


class FakeRateLimiter:
    """Fixed windows counted in memory (adapters/signups.DynamoRateLimiter)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}

    def hit(self, key: str, limit: int, window_seconds: int, now: Any) -> int:
        moment = int(now.timestamp())
        window = moment // window_seconds
        bucket = f"{key}#{window}"
        if self.hits.get(bucket, 0) >= limit:
            return max(1, (window + 1) * window_seconds - moment)
        self.hits[bucket] = self.hits.get(bucket, 0) + 1
        return 0
