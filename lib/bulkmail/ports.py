"""The stores the core depends on, as Protocols: bulkmail.adapters implements them on AWS, and
tests/fakes.py in memory for the fast tests of the core's decisions (Transport and MetricsSink,
the other two seams, live beside the code that uses them: sending.py and metrics.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from bulkmail.models import BatchMessage, BatchRecord, Campaign, CampaignStatus, Contact, Lease, Outcome

# A store's opaque position in a paged read (DynamoDB's LastEvaluatedKey); None: from the start.
Cursor = dict[str, Any]
# Step Functions' StartExecution: (state machine ARN, execution name, input) -> execution ARN.
StartExecution = Callable[[str, str, Mapping[str, Any]], str]


class Campaigns(Protocol):
    """The campaign records and their counters (adapters/campaigns.CampaignStore)."""

    def get(self, campaign_id: str, *, content: bool = True) -> Campaign:
        """The record with its content and live counts; CampaignNotFound if there is none."""
        ...

    def head(self, campaign_id: str) -> Campaign:
        """The record alone, without summing its counter shards (what a worker needs per message)."""
        ...

    def with_content(self, record: Campaign) -> Campaign:
        """The record with the subject and bodies of its content version (read once per version)."""
        ...

    def edit(self, campaign_id: str, changes: dict[str, Any], statuses: tuple[str, ...], now: str) -> bool:
        """Apply `changes` while the status is one of `statuses` (False otherwise); content changes
        become the next content version."""
        ...

    def note_counts(self, campaign_id: str, counts: dict[str, int]) -> None:
        """Copy live counts onto the record, for what reads the record alone."""
        ...

    def create(self, campaign: Campaign) -> bool:
        """Store a new campaign with zeroed counters; False when the id exists."""
        ...

    def update_fields(self, campaign_id: str, fields: dict[str, Any]) -> None: ...

    def set_estimate(self, campaign_id: str, estimate: int) -> bool:
        """The recipient estimate, only before the first page is fanned out."""
        ...

    def record_fanout_page(self, campaign_id: str, page_no: int, cursor: Cursor | None, queued: int, now: str) -> bool:
        """Count page `page_no` and move the cursor, once; the last page (no cursor) fixes the total."""
        ...

    def transition(
        self,
        campaign_id: str,
        from_statuses: tuple[CampaignStatus, ...],
        to: CampaignStatus,
        now: str,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Move the status only from one of `from_statuses`; False otherwise (no races)."""
        ...


class Contacts(Protocol):
    """The reads of the contacts table that decide a campaign's audience (adapters/contacts.ContactStore)."""

    def recipients_page(
        self, audience: dict[str, Any] | None, cursor: Cursor | None, limit: int
    ) -> tuple[list[str], Cursor | None]:
        """Recipients' emails among the next `limit` contacts (or list members) read, and the next
        cursor (None: the end). `audience`: {"lists", "match"} (segments.campaign_audience); None: all."""
        ...

    def count_recipients(self, audience: dict[str, Any] | None) -> int: ...

    def has_recipient(self, audience: dict[str, Any] | None) -> bool: ...

    def batch_get(self, emails: Iterable[str]) -> dict[str, Contact]:
        """The contacts among these that exist, by email."""
        ...


class Ledger(Protocol):
    """The delivery ledger and its batch claims (adapters/ledger.Ledger): one row per recipient, the
    claims that keep a message from sending twice, parked batches of a paused campaign."""

    def claim(self, campaign_id: str, batch_id: str, token: str, now: float, lease_seconds: int) -> BatchRecord: ...

    def recorded(self, campaign_id: str, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The rows among these recipients that exist: email -> {dead_lettered, noted_by, batch_id, ...}."""
        ...

    def note_sent(self, lease: Lease, outcome: Outcome, now_iso: str) -> bool:
        """Write down at once that an email was accepted; False if the recipient has an outcome already."""
        ...

    def record(self, lease: Lease, outcomes: list[Outcome], *, batch_status: str, now_iso: str) -> list[Outcome]:
        """Outcomes + counters + the batch's release, all or nothing; returns the outcomes recorded."""
        ...

    def release(self, lease: Lease, now_iso: str) -> None: ...

    def take_over_for_resend(self, original_id: str, email: str, resend_id: str, lease: Lease) -> bool: ...

    def take_back_dead_letter(self, campaign_id: str, email: str, lease: Lease) -> bool: ...

    def park(self, lease: Lease, emails: list[str], now_iso: str) -> bool:
        """Hold a paused campaign's batch; False if the campaign is no longer paused."""
        ...

    def failed_page(self, campaign_id: str, cursor: Cursor | None, limit: int) -> tuple[list[str], Cursor | None]: ...

    def count_failed(self, campaign_id: str) -> int: ...

    def unpark_all(self, campaign_id: str, now_iso: str) -> list[tuple[str, list[str]]]:
        """Take every parked batch back, each exactly once: [(batch_id, emails)]."""
        ...


class Queue(Protocol):
    """The send queue (adapters/queue.SendQueue)."""

    def send(self, messages: list[BatchMessage]) -> None: ...


# --- the management API's seams ------------------------------------------------------------------


class CampaignAdmin(Protocol):
    """The API's own reads and writes of the campaigns and deliveries tables (adapters/campaign_admin)."""

    def campaigns_page(
        self, limit: int, cursor: Cursor | None, status: str | None
    ) -> tuple[list[Campaign], Cursor | None]: ...

    def deliveries_page(
        self, campaign_id: str, limit: int, cursor: Cursor | None, status: str | None
    ) -> tuple[list[dict[str, Any]], Cursor | None]: ...

    def delete(self, campaign_id: str) -> None:
        """Take back a record whose execution or schedule could not be made (nothing half-made stays)."""
        ...

    def claim_resend(self, campaign_id: str, resend_id: str) -> str:
        """The campaign's one re-send: `resend_id` if this call recorded it, else the one recorded before."""
        ...


class Executions(Protocol):
    """The campaign workflow's executions, named after campaigns (adapters/stepfunctions.Workflow)."""

    def arn(self, name: str) -> str:
        """The ARN an execution of this name gets, known before it starts."""
        ...

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        """ExecutionExists when an execution of this name ran before."""
        ...

    def start_once(self, name: str, payload: Mapping[str, Any]) -> str:
        """A repeat finds the execution of this name started already."""
        ...

    def describe(self, arn: str) -> dict[str, Any]:
        """ExecutionNotFound for an unknown ARN."""
        ...

    def history(self, arn: str) -> list[dict[str, Any]]: ...


class Schedules(Protocol):
    """One-time schedules that start the workflow (adapters/scheduler.Scheduler)."""

    group: str

    def schedule_start(self, name: str, when: datetime, payload: Mapping[str, Any]) -> str: ...

    def delete(self, group: str, name: str) -> bool:
        """False when there was nothing to delete (it has fired already)."""
        ...
