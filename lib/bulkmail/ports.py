"""The stores the core depends on, as Protocols: bulkmail.adapters implements them on AWS, and
tests/fakes.py in memory for the fast tests of the core's decisions (Transport and MetricsSink,
the other two seams, live beside the code that uses them: sending.py and metrics.py)."""

from __future__ import annotations

from typing import Any, Protocol

from bulkmail.models import BatchMessage, CampaignStatus

# A store's opaque position in a paged read (DynamoDB's LastEvaluatedKey); None: from the start.
Cursor = dict[str, Any]


class Campaigns(Protocol):
    """The campaign records and their counters (adapters/campaigns.CampaignStore)."""

    def get(self, campaign_id: str) -> dict[str, Any]:
        """The record; CampaignNotFound if there is none."""
        ...

    def create(self, campaign: dict[str, Any]) -> bool:
        """Store a new campaign with zeroed counters; False when the id exists."""
        ...

    def update_fields(self, campaign_id: str, fields: dict[str, Any]) -> None: ...

    def record_fanout_page(
        self, campaign_id: str, page_no: int, cursor: Cursor | None, queued: int, now: str
    ) -> bool:
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

    def scan_page(self, cursor: Cursor | None, limit: int, list_name: str | None) -> tuple[list[str], Cursor | None]:
        """Recipients' emails among the next `limit` contacts read, and the next cursor (None: the end)."""
        ...

    def count_recipients(self, list_name: str | None) -> int: ...

    def has_recipient(self, list_name: str | None) -> bool: ...


class Ledger(Protocol):
    """The delivery ledger's reads and parked batches, as the workflow and the operator actions use
    them (adapters/ledger.Ledger)."""

    def failed_page(self, campaign_id: str, cursor: Cursor | None, limit: int) -> tuple[list[str], Cursor | None]: ...

    def count_failed(self, campaign_id: str) -> int: ...

    def unpark_all(self, campaign_id: str, now_iso: str) -> list[tuple[str, list[str]]]:
        """Take every parked batch back, each exactly once: [(batch_id, emails)]."""
        ...


class Queue(Protocol):
    """The send queue (adapters/queue.SendQueue)."""

    def send(self, messages: list[BatchMessage]) -> None: ...
