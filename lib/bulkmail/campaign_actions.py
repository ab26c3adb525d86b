"""What an operator does to a campaign: start or schedule it, edit it, pause, resume, cancel, re-send
to the failed; and what the management API shows of one that has not been stored yet, and its trace.

These are the management API's use cases: the routes in `bulkmail.http.campaigns` parse the request
and call one of them with the stores it needs (bulkmail.ports; `bulkmail.adapters.wiring` builds
them). Every status change is a conditional transition, so concurrent callers and workers cannot race
it. While paused, workers park the batches they receive in the ledger (not on the queue, where they
would age towards the dead-letter queue); resume and cancel put the parked batches back on the queue,
where workers send them (resume) or account every recipient as skipped("cancelled") (cancel).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bulkmail.audience import audience_problems, with_segment
from bulkmail.clock import SYSTEM_CLOCK, Clock, now_iso
from bulkmail.errors import (
    CampaignExists,
    CampaignInvalid,
    CampaignNotFound,
    ExecutionExists,
    ExecutionNotFound,
    InvalidTransition,
    NoAudience,
)
from bulkmail.models import BatchMessage, Campaign, CampaignStatus, StartingCampaign
from bulkmail.ports import CampaignAdmin, Campaigns, Executions, Ledger, Queue, Schedules
from bulkmail.settings import Settings
from bulkmail.trace import path as trace_path
from bulkmail.trace import progress_samples
from bulkmail.trace import steps as trace_steps
from bulkmail.validation import parse_timestamp, submitted_fields, validate_campaign
from bulkmail.workflow import queued_record

if TYPE_CHECKING:  # the audience check reads the contacts adapter itself (bulkmail.audience)
    from bulkmail.adapters.contacts import ContactStore

ACTIVE = (CampaignStatus.QUEUED, CampaignStatus.PROCESSING)
EDITABLE_FIELDS = ("campaign_name", "subject", "body", "body_html")
EDITABLE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.QUEUED, CampaignStatus.PROCESSING, CampaignStatus.PAUSED)
MAX_TRACE_STEPS = 500  # the latest laps; `path` summarises them all


# --- start or schedule ----------------------------------------------------------------------------
def start(
    campaign: Campaign,
    *,
    campaigns: Campaigns,
    contacts: ContactStore,
    admin: CampaignAdmin,
    executions: Executions,
    schedules: Schedules,
    settings: Settings,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Start a validated campaign now, or schedule it when it names send_at. CampaignExists for a
    known id, NoAudience when its list has nobody to send to; a failed start leaves nothing stored."""
    campaign_id = campaign["campaign_id"]
    try:
        campaigns.get(campaign_id)
    except CampaignNotFound:
        pass
    else:
        raise CampaignExists(campaign_id)
    campaign = with_segment(campaign, contacts)  # issue 15: the segment's lists and conditions copied in
    nobody = audience_problems(campaign, contacts)
    if nobody:
        raise NoAudience(nobody)
    if "send_at" in campaign:
        return _schedule(campaign, campaigns=campaigns, admin=admin, schedules=schedules, clock=clock)
    # Stored before the execution starts, so that it can be read, paused or cancelled from the moment
    # this answers (PersistCampaign then adopts the record of its own execution). The conditional
    # create also makes a second start of the same id, while the first is starting, CampaignExists.
    arn = executions.arn(campaign_id)
    if not campaigns.create(queued_record(campaign, arn, settings, clock)):
        raise CampaignExists(campaign_id)
    try:
        executions.start(campaign_id, submitted_fields(campaign))
    except ExecutionExists:  # an execution of this name ran before (its campaign was never stored)
        admin.delete(campaign_id)
        raise CampaignExists(campaign_id) from None
    except Exception:
        admin.delete(campaign_id)  # nothing half-made stays
        raise
    return {"campaign_id": campaign_id, "status": CampaignStatus.QUEUED.value, "execution_arn": arn}


def _schedule(
    campaign: Campaign, *, campaigns: Campaigns, admin: CampaignAdmin, schedules: Schedules, clock: Clock
) -> dict[str, Any]:
    """Store the campaign as scheduled (so it can be read, edited, cancelled) and schedule its start."""
    campaign_id = campaign["campaign_id"]
    record: Campaign = {
        **campaign,
        "status": CampaignStatus.SCHEDULED.value,
        "schedule_name": campaign_id,
        "schedule_group": schedules.group,
        "updated_at": now_iso(clock),
    }
    if not campaigns.create(record):
        raise CampaignExists(campaign_id)
    when = parse_timestamp(campaign["send_at"])
    assert when is not None  # validate_campaign checked send_at
    try:
        schedules.schedule_start(campaign_id, when, submitted_fields(campaign))
    except Exception:
        admin.delete(campaign_id)  # nothing half-made stays
        raise
    return {"campaign_id": campaign_id, "status": CampaignStatus.SCHEDULED.value, "schedule_name": campaign_id}


def starting(campaign_id: str, *, executions: Executions) -> StartingCampaign:
    """A campaign whose execution has started but not yet stored it (executions are named after
    campaigns); CampaignNotFound when there is no such execution either."""
    arn = executions.arn(campaign_id)
    try:
        execution = executions.describe(arn)
    except ExecutionNotFound:
        raise CampaignNotFound(campaign_id) from None
    if execution["status"] == "RUNNING":
        return {
            "campaign_id": campaign_id,
            "status": CampaignStatus.QUEUED.value,
            "execution_arn": arn,
            "progress": 0.0,
        }
    # Ended without storing the campaign: rejected by ValidateCampaign, or not persisted.
    return {
        "campaign_id": campaign_id,
        "status": CampaignStatus.FAILED.value,
        "execution_arn": arn,
        "error": execution.get("error", ""),
        "cause": execution.get("cause", ""),
        "progress": 0.0,
    }


# --- edit -----------------------------------------------------------------------------------------
def edit(
    campaign_id: str,
    changes: dict[str, Any],
    *,
    campaigns: Campaigns,
    clock: Clock = SYSTEM_CLOCK,
    custom_fields: Iterable[str] | None = (),
) -> Campaign:
    """Change name, subject or bodies until the campaign ends: the same rules as a new campaign
    (CampaignInvalid; placeholders may name `custom_fields`), only EDITABLE_FIELDS from the client;
    InvalidTransition once it has ended."""
    not_editable = sorted(set(changes) - set(EDITABLE_FIELDS))
    if not_editable:
        raise CampaignInvalid(
            [
                {"field": f, "message": f"cannot be edited (editable: {', '.join(EDITABLE_FIELDS)})"}
                for f in not_editable
            ]
        )
    if not changes:
        raise CampaignInvalid([{"field": "$", "message": f"name at least one of {', '.join(EDITABLE_FIELDS)}"}])
    record = campaigns.get(campaign_id)
    validate_campaign(
        {**submitted_fields(record), **changes}, now=clock.now(), trusted=True, custom_fields=custom_fields
    )
    allowed = tuple(s.value for s in EDITABLE_STATUSES)
    if not campaigns.edit(campaign_id, changes, allowed, now_iso(clock)):
        raise InvalidTransition(f"a {campaigns.get(campaign_id)['status']} campaign cannot be edited")
    return campaigns.get(campaign_id)


# --- pause, resume, cancel ------------------------------------------------------------------------
def _transition(
    campaigns: Campaigns,
    campaign_id: str,
    from_: tuple[CampaignStatus, ...],
    to: CampaignStatus,
    extra: dict[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Campaign:
    if not campaigns.transition(campaign_id, from_, to, now_iso(clock), extra):
        current = campaigns.get(campaign_id)["status"]  # CampaignNotFound if it does not exist
        allowed = " or ".join(s.value for s in from_)
        raise InvalidTransition(f"campaign {campaign_id} is {current}; only a {allowed} campaign can become {to.value}")
    return campaigns.get(campaign_id)


def _requeue_parked(campaign_id: str, *, ledger: Ledger, queue: Queue, clock: Clock) -> int:
    parked = ledger.unpark_all(campaign_id, now_iso(clock))
    queue.send([BatchMessage(campaign_id, batch_id, tuple(emails)) for batch_id, emails in parked])
    return sum(len(emails) for _, emails in parked)


def pause(
    campaign_id: str, *, campaigns: Campaigns, reason: str = "paused by operator", clock: Clock = SYSTEM_CLOCK
) -> Campaign:
    return _transition(campaigns, campaign_id, ACTIVE, CampaignStatus.PAUSED, {"pause_reason": reason}, clock)


def resume(
    campaign_id: str, *, campaigns: Campaigns, ledger: Ledger, queue: Queue, clock: Clock = SYSTEM_CLOCK
) -> Campaign:
    """Back to sending: exactly the recipients without an outcome are sent to (the ledger decides)."""
    started = campaigns.get(campaign_id).get("started_at")
    record = _transition(
        campaigns,
        campaign_id,
        (CampaignStatus.PAUSED,),
        CampaignStatus.PROCESSING if started else CampaignStatus.QUEUED,
        clock=clock,
    )
    _requeue_parked(campaign_id, ledger=ledger, queue=queue, clock=clock)
    return record


def cancel(
    campaign_id: str, *, campaigns: Campaigns, ledger: Ledger, queue: Queue, clock: Clock = SYSTEM_CLOCK
) -> Campaign:
    """Stop sending within one batch; every recipient not yet sent is recorded as skipped("cancelled")."""
    record = _transition(
        campaigns,
        campaign_id,
        (*ACTIVE, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED),
        CampaignStatus.CANCELLED,
        {"cancelled_at": now_iso(clock)},
        clock,
    )
    _requeue_parked(campaign_id, ledger=ledger, queue=queue, clock=clock)
    return record


def drop_schedule(record: Campaign, *, schedules: Schedules) -> bool:
    """Delete a cancelled campaign's schedule; False when it has fired already. Cancelled first, then
    the schedule: if it fires in between, PersistCampaign refuses a cancelled campaign."""
    return schedules.delete(record["schedule_group"], record["schedule_name"])


# --- re-send to the failed ------------------------------------------------------------------------
def resend_failed_input(campaign_id: str, *, campaigns: Campaigns, ledger: Ledger) -> Campaign:
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


def resend_failed(
    campaign_id: str,
    *,
    campaigns: Campaigns,
    ledger: Ledger,
    admin: CampaignAdmin,
    executions: Executions,
    settings: Settings,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Start a new campaign to this one's failed recipients, once: a repeat, concurrent or later,
    answers with the first re-send instead of starting another."""
    campaign = validate_campaign(
        resend_failed_input(campaign_id, campaigns=campaigns, ledger=ledger),
        now=clock.now(),
        trusted=True,
        custom_fields=None,  # the original's placeholders were checked when it was created
    )
    # The first call records its id on the original (a conditional write); a repeat finds it.
    resend_id = admin.claim_resend(campaign_id, campaign["campaign_id"])
    try:
        record = campaigns.get(resend_id)
        return {
            "campaign_id": resend_id,
            "resend_of": campaign_id,
            "status": record["status"],
            "execution_arn": record.get("execution_arn"),
        }
    except CampaignNotFound:
        pass
    # Not stored yet: starting, or the first call stopped before it started. Stored before it starts
    # (so it can be cancelled from this answer on; a racing call's create finds it), and the execution
    # is named after the re-send, so of racing starts only one runs.
    resend: Campaign = {**campaign, "campaign_id": resend_id}
    campaigns.create(queued_record(resend, executions.arn(resend_id), settings, clock))
    arn = executions.start_once(resend_id, submitted_fields(resend))
    return {
        "campaign_id": resend_id,
        "resend_of": campaign_id,
        "status": CampaignStatus.QUEUED.value,
        "execution_arn": arn,
    }


# --- trace ----------------------------------------------------------------------------------------
def trace(record: Campaign, *, executions: Executions) -> dict[str, Any]:
    """The campaign's path through the workflow's states, with timings, and its progress samples;
    InvalidTransition for a campaign with no execution yet (a scheduled one)."""
    arn = record.get("execution_arn")
    if not arn:
        raise InvalidTransition(f"a {record['status']} campaign has no execution yet")
    events = executions.history(arn)
    execution = executions.describe(arn)
    every_step = trace_steps(events)
    return {
        "campaign_id": record["campaign_id"],
        "execution_arn": arn,
        "execution_status": execution["status"],
        "path": trace_path(every_step),
        "progress": progress_samples(events),
        "steps": [vars(s) for s in every_step[-MAX_TRACE_STEPS:]],
        "steps_omitted": max(0, len(every_step) - MAX_TRACE_STEPS),
    }
