"""Plain data shapes shared by the workflow, the worker and the adapters."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypedDict

from bulkmail.errors import MalformedMessage

# Step Functions carries at most 256 KiB of UTF-8 JSON in an execution's input and in any state.
STATE_PAYLOAD_BYTES = 262_144
# DynamoDB's largest item: attribute names and values, as `dynamo_item_size` counts them.
DYNAMODB_ITEM_BYTES = 400 * 1024


def state_json(value: Any) -> str:
    """JSON as bulkmail hands it to Step Functions and Scheduler: compact, non-ASCII as UTF-8 (an
    escape such as \\u00e9 is 6 bytes where UTF-8 needs 2), so what is counted is what is sent."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: UTF-8 names and strings, numbers by significant digits,
    3 bytes per list or map and 1 per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float, Decimal)):
        digits = len(Decimal(str(value)).normalize().as_tuple().digits)
        return (digits + 1) // 2 + 1
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 3 + sum(_value_size(v) + 1 for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


# A campaign's counters. The workflow keeps the first two on the campaign record; the workers keep the
# others on counter shards (adapters/counters), in the same transaction as the ledger rows.
CAMPAIGN_COUNTERS = ("total_contacts", "queued_count", "sent_count", "failed_count", "skipped_count", "processed_count")
SHARDED_COUNTERS = CAMPAIGN_COUNTERS[2:]


class Campaign(TypedDict, total=False):
    """A campaign: the fields a client submits (schema/campaign.schema.json; validation requires
    campaign_name, subject and from_email and fills campaign_id) and what bulkmail stores beside them.

    A TypedDict rather than a class: the record goes to and from DynamoDB, Step Functions and JSON
    as it is, and mypy still checks every key read or written."""

    # --- submitted (and `resend_of`, which only bulkmail sets: validation.INTERNAL_FIELDS)
    campaign_id: str
    campaign_name: str
    subject: str
    body: str
    body_html: str
    from_email: str
    from_name: str
    reply_to: str
    email_service: str
    aws_region: str
    aws_secret_name: str
    smtp_server: str
    smtp_port: int
    list: str
    max_send_rate: float
    send_at: str
    resend_of: str
    segment: str  # issue 15: send to a segment instead of a list
    unsubscribe_scope: str  # "list" (default) or "all": what the one-click link leaves
    audience: dict[str, Any]  # the segment's lists and conditions, copied in at creation (INTERNAL_FIELDS)
    # --- stored by bulkmail
    created_at: str
    updated_at: str
    status: str  # a CampaignStatus value
    execution_arn: str
    continuations: int
    started_at: str
    cancelled_at: str
    pause_reason: str
    schedule_name: str
    schedule_group: str
    resent_as: str
    failure_cause: str
    fanout_page: int
    fanout_cursor: dict[str, Any] | None
    fanout_done: bool
    content_version: int  # the content item its subject and bodies are on (adapters/campaigns)
    # --- counters (CAMPAIGN_COUNTERS)
    total_contacts: int
    queued_count: int
    sent_count: int
    failed_count: int
    skipped_count: int
    processed_count: int


class CampaignView(Campaign, total=False):
    """A campaign as the management API answers with it: with its share done."""

    progress: float


class StartingCampaign(CampaignView, total=False):
    """A campaign whose execution has not stored it (yet): why, if that execution ended."""

    error: str
    cause: str


class CampaignStatus(str, enum.Enum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class DeliveryStatus(str, enum.Enum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class ContactStatus(str, enum.Enum):
    SUBSCRIBED = "subscribed"
    PENDING = "pending"  # signed up, not confirmed yet (double opt-in): never mailed a campaign
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


# The counter on the campaign item that each delivery status adds to.
COUNTER_FOR = {
    DeliveryStatus.SENT: "sent_count",
    DeliveryStatus.FAILED: "failed_count",
    DeliveryStatus.SKIPPED: "skipped_count",
}


@dataclass(frozen=True)
class Contact:
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    status: str = ContactStatus.SUBSCRIBED.value
    lists: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Contact:
        return cls(
            email=item["email"],
            first_name=item.get("first_name") or "",
            last_name=item.get("last_name") or "",
            company=item.get("company") or "",
            status=item.get("status") or ContactStatus.SUBSCRIBED.value,
            lists=tuple(sorted(item.get("lists") or ())),
            attributes=dict(item.get("attributes") or {}),
        )


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient of a batch: the ledger row and the counter it moves."""

    email: str
    status: DeliveryStatus
    reason: str = ""
    message_id: str = ""
    dead_lettered: bool = False  # failed because its message is going to the DLQ (redrivable)
    replaces_dead_letter: bool = False  # a redriven recipient: this outcome replaces that failure
    failure_class: str = ""  # failed: Rejected, InvalidAddress, RenderError, Transient, DeadLettered (metrics)
    noted: bool = False  # sent, and its ledger row already written (counted when the batch is recorded)
    noted_by: str = ""  # noted: the claim token of the attempt that wrote the row


@dataclass(frozen=True)
class BatchMessage:
    """The SQS message body: references only, never content or credentials."""

    campaign_id: str
    batch_id: str
    contact_emails: tuple[str, ...]

    def to_body(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "batch_id": self.batch_id,
            "contact_emails": list(self.contact_emails),
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> BatchMessage:
        emails = body["contact_emails"]
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise MalformedMessage("contact_emails must be a list of strings")
        return cls(str(body["campaign_id"]), str(body["batch_id"]), tuple(emails))


class Claim(enum.Enum):
    CLAIMED = "claimed"  # first claim of this batch
    RECLAIMED = "reclaimed"  # an earlier attempt ended (throttled, crashed): some may be recorded
    DONE = "done"  # recorded already: acknowledge the message
    BUSY = "busy"  # another worker holds a live lease
    PARKED = "parked"  # held while its campaign is paused: a duplicate of a parked message


@dataclass(frozen=True)
class BatchRecord:
    claim: Claim
    attempts: int
    counted: frozenset[str] = frozenset()  # the attempts' tokens whose noted rows are counted


@dataclass(frozen=True)
class Lease:
    """A worker's claim on one batch, and how long it may keep trying to write (the ledger retries a
    refused write, extending the lease, while `time_left()` is positive)."""

    campaign_id: str
    batch_id: str
    token: str
    lease_seconds: int
    time_left: Callable[[], float] = lambda: 0.0
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
