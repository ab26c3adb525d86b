"""Operator actions on a running campaign: pause, resume, cancel, re-send to the failed.

Each is a conditional status transition, so concurrent callers and workers cannot race it. While
paused, workers park the batches they receive in the ledger (not on the queue, where they would age
towards the dead-letter queue); resume and cancel put the parked batches back on the queue, where
workers send them (resume) or account every recipient as skipped("cancelled") (cancel).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from bulkmail.errors import InvalidTransition
from bulkmail.models import BatchMessage, CampaignStatus
from bulkmail.ports import Campaigns, Ledger, Queue
from bulkmail.validation import submitted_fields

ACTIVE = (CampaignStatus.QUEUED, CampaignStatus.PROCESSING)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _transition(
    campaigns: Campaigns,
    campaign_id: str,
    from_: tuple[CampaignStatus, ...],
    to: CampaignStatus,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if not campaigns.transition(campaign_id, from_, to, _now(), extra):
        current = campaigns.get(campaign_id)["status"]  # CampaignNotFound if it does not exist
        allowed = " or ".join(s.value for s in from_)
        raise InvalidTransition(f"campaign {campaign_id} is {current}; only a {allowed} campaign can become {to.value}")
    return campaigns.get(campaign_id)


def _requeue_parked(campaign_id: str, *, ledger: Ledger, queue: Queue) -> int:
    parked = ledger.unpark_all(campaign_id, _now())
    queue.send([BatchMessage(campaign_id, batch_id, tuple(emails)) for batch_id, emails in parked])
    return sum(len(emails) for _, emails in parked)


def pause(campaign_id: str, *, campaigns: Campaigns, reason: str = "paused by operator") -> dict[str, Any]:
    return _transition(campaigns, campaign_id, ACTIVE, CampaignStatus.PAUSED, {"pause_reason": reason})


def resume(campaign_id: str, *, campaigns: Campaigns, ledger: Ledger, queue: Queue) -> dict[str, Any]:
    """Back to sending: exactly the recipients without an outcome are sent to (the ledger decides)."""
    started = campaigns.get(campaign_id).get("started_at")
    record = _transition(
        campaigns,
        campaign_id,
        (CampaignStatus.PAUSED,),
        CampaignStatus.PROCESSING if started else CampaignStatus.QUEUED,
    )
    _requeue_parked(campaign_id, ledger=ledger, queue=queue)
    return record


def cancel(campaign_id: str, *, campaigns: Campaigns, ledger: Ledger, queue: Queue) -> dict[str, Any]:
    """Stop sending within one batch; every recipient not yet sent is recorded as skipped("cancelled")."""
    record = _transition(
        campaigns,
        campaign_id,
        (*ACTIVE, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED),
        CampaignStatus.CANCELLED,
        {"cancelled_at": _now()},
    )
    _requeue_parked(campaign_id, ledger=ledger, queue=queue)
    return record


def resend_failed_input(campaign_id: str, *, campaigns: Campaigns, ledger: Ledger) -> dict[str, Any]:
    """The state machine input of a new campaign whose audience is this campaign's failed recipients.

    The original keeps its ledger as history; the re-send has its own ledger, counters and status.
    """
    original = campaigns.get(campaign_id)
    if original["status"] not in (
        CampaignStatus.COMPLETED.value,
        CampaignStatus.CANCELLED.value,
        CampaignStatus.FAILED.value,
    ):
        raise InvalidTransition(f"campaign {campaign_id} is {original['status']}: re-send once it has finished")
    if ledger.count_failed(campaign_id) == 0:
        raise InvalidTransition(f"campaign {campaign_id} has no failed recipients")
    return {
        # The audience is the original's failed recipients, not its list.
        **submitted_fields(original, leave_out=("campaign_id", "resend_of", "list")),
        "campaign_id": f"{campaign_id[:40]}_resend_{uuid.uuid4().hex[:12]}",
        "resend_of": campaign_id,
    }
