"""The logic behind the workflow's Lambda steps: persist a validated campaign, advance it one step,
continue it as a new execution."""

from __future__ import annotations

from typing import Any, cast

from bulkmail.clock import SYSTEM_CLOCK, Clock, now_iso
from bulkmail.errors import CampaignInvalid
from bulkmail.models import CAMPAIGN_COUNTERS, BatchMessage, Campaign, CampaignStatus
from bulkmail.ports import Campaigns, Contacts, Cursor, Ledger, Queue, StartExecution
from bulkmail.segments import campaign_audience
from bulkmail.settings import Settings


def audience_size(campaign: Campaign, *, contacts: Contacts, ledger: Ledger) -> int:
    if campaign.get("resend_of"):
        return ledger.count_failed(campaign["resend_of"])
    return contacts.count_recipients(campaign_audience(campaign))


def audience_page(
    campaign: Campaign, cursor: Cursor | None, limit: int, *, contacts: Contacts, ledger: Ledger
) -> tuple[list[str], Cursor | None]:
    """The next page of recipients: subscribed contacts (of the list or segment), or a re-send's failed ones."""
    if campaign.get("resend_of"):
        return ledger.failed_page(campaign["resend_of"], cursor, limit)
    return contacts.recipients_page(campaign_audience(campaign), cursor, limit)


def queued_record(campaign: Campaign, execution_arn: str, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Campaign:
    """The stored form of a campaign that is starting now (the API stores it before it answers, so
    that it can be read, paused or cancelled at once; PersistCampaign stores it if nobody did)."""
    return {
        **campaign,
        "status": CampaignStatus.QUEUED.value,
        "execution_arn": execution_arn,
        "max_send_rate": campaign.get("max_send_rate", settings.default_max_send_rate),
        "updated_at": now_iso(clock),
    }


def persist_campaign(
    campaign: Campaign,
    execution_arn: str,
    *,
    campaigns: Campaigns,
    contacts: Contacts,
    ledger: Ledger,
    settings: Settings,
) -> dict[str, Any]:
    """Store the campaign as queued (once, even when retried) and hand the workflow its first cursor."""
    record = queued_record(campaign, execution_arn, settings)
    estimate = audience_size(campaign, contacts=contacts, ledger=ledger)
    if not campaigns.create({**record, "total_contacts": estimate}):
        existing = campaigns.head(campaign["campaign_id"])
        # A scheduled campaign was stored by the API (its record may have been edited since): adopt it.
        adopted = existing.get("status") == CampaignStatus.SCHEDULED.value and campaigns.transition(
            campaign["campaign_id"],
            (CampaignStatus.SCHEDULED,),
            CampaignStatus.QUEUED,
            record["updated_at"],
            extra={
                "execution_arn": execution_arn,
                "total_contacts": estimate,
                "max_send_rate": record["max_send_rate"],
            },
        )
        if not adopted:
            if existing.get("execution_arn") != execution_arn:  # neither the API's record of this start nor ours
                raise CampaignInvalid(
                    [
                        {
                            "field": "campaign_id",
                            "message": f"{campaign['campaign_id']} already exists ({existing.get('status')})",
                        }
                    ]
                )
            # Stored by the API as it started this execution (and perhaps paused or cancelled since):
            # it gets its recipient estimate; its status is left as it is.
            campaigns.set_estimate(campaign["campaign_id"], estimate)
    # campaign_name and total_contacts: what the workflow's CampaignStarted event reports.
    return {
        **workflow_state(campaign["campaign_id"], settings, continuation=0),
        "campaign_name": campaign["campaign_name"],
        "total_contacts": estimate,
    }


# Where each execution's loop starts: no steps taken yet.
FIRST_STEP = {"next": "advance", "steps": 0}


def workflow_state(campaign_id: str, settings: Settings, *, continuation: int) -> dict[str, Any]:
    """What the workflow's loop carries: the campaign, its poll interval, and this execution's steps."""
    return {
        "campaign_id": campaign_id,
        "poll_seconds": settings.poll_seconds,
        "continuation": continuation,
        "advance": dict(FIRST_STEP),
    }


def backlog_bound(campaign: Campaign, settings: Settings) -> int:
    """How many queued-but-unsent recipients a campaign may have: a few minutes at its rate."""
    rate = float(campaign.get("max_send_rate") or settings.default_max_send_rate)
    return max(settings.fanout_page_size, int(rate * settings.backlog_seconds))


def advance(
    campaign_id: str,
    steps: int,
    *,
    campaigns: Campaigns,
    contacts: Contacts,
    ledger: Ledger,
    queue: Queue,
    settings: Settings,
) -> dict[str, Any]:
    """One step of the workflow's loop, and what it should do next:

    - "advance": a page was enqueued and the backlog allows another at once;
    - "wait": the backlog is at its bound, the campaign is paused, or recipients are still being sent;
    - "complete" / "cancelled": every recipient is accounted for (sent, failed or skipped);
    - "failed": the campaign was marked failed while its workflow ran;
    - "continue_as_new": this execution has taken its share of steps. A Standard workflow keeps at
      most 25,000 history events; a step (wait, this task, the choice) makes at most 9, so after
      settings.steps_per_execution steps the campaign goes on in a fresh execution.

    Each step also reports the campaign's counters as it found them: the execution's history then
    holds the campaign's progress over time, and the end states have the figures to announce.
    """
    steps += 1
    if steps > settings.steps_per_execution:
        return {"next": "continue_as_new", "steps": steps, "counts": {}}
    campaign = campaigns.get(campaign_id, content=False)  # the record and its live counts
    next_step = _next_step(campaign, settings)
    counts = cast("dict[str, int]", {k: v for k, v in campaign.items() if k in CAMPAIGN_COUNTERS})
    if next_step == "fan_out":
        last = fan_out_page(
            campaign, campaigns=campaigns, contacts=contacts, ledger=ledger, queue=queue, settings=settings
        )
        next_step = "wait" if last else "advance"
    elif next_step in ("complete", "cancelled", "failed"):
        # The end states' events read the record alone: it notes the final counts (once, not per poll).
        campaigns.note_counts(campaign_id, counts)
    return {"next": next_step, "steps": steps, "counts": counts}


def _next_step(campaign: Campaign, settings: Settings) -> str:
    """What the campaign's state asks for: "fan_out" when its next page may be queued now."""
    status = campaign["status"]
    if status == CampaignStatus.FAILED.value:
        return "failed"
    if campaign["fanout_done"]:
        if campaign["processed_count"] < campaign["total_contacts"]:
            return "wait"
        return "cancelled" if status == CampaignStatus.CANCELLED.value else "complete"
    backlog = campaign["queued_count"] - campaign["processed_count"]
    # A cancelled campaign still fans out, unthrottled: workers account each recipient as skipped.
    if status != CampaignStatus.CANCELLED.value and (
        status == CampaignStatus.PAUSED.value or backlog >= backlog_bound(campaign, settings)
    ):
        return "wait"
    return "fan_out"


def fan_out_page(
    campaign: Campaign,
    *,
    campaigns: Campaigns,
    contacts: Contacts,
    ledger: Ledger,
    queue: Queue,
    settings: Settings,
) -> bool:
    """Enqueue the next page of recipients; True when it was the last."""
    # The campaign item, not the workflow state, holds the cursor: a retried step resumes where the
    # last recorded page ended.
    campaign_id, page_no = campaign["campaign_id"], campaign["fanout_page"]
    emails, cursor = audience_page(
        campaign, campaign.get("fanout_cursor"), settings.fanout_page_size, contacts=contacts, ledger=ledger
    )
    n = settings.recipients_per_message
    # Batch ids derive from the page number, so a retried step re-sends the same batches, which
    # the ledger's batch claims then acknowledge instead of sending twice.
    messages = [
        BatchMessage(campaign_id, f"p{page_no:07d}-{i // n:03d}", tuple(emails[i : i + n]))
        for i in range(0, len(emails), n)
    ]
    queue.send(messages)
    campaigns.record_fanout_page(campaign_id, page_no, cursor, len(emails), now_iso())
    return cursor is None


# Campaign ids are letters, digits, "_" and "-" (the schema): an execution name with a "." can never
# be a campaign's own (first) execution, so no campaign can take another's continuation name.
CONTINUATION_SEPARATOR = "."


def continuation_name(campaign_id: str, continuation: int) -> str:
    """The execution name of a campaign's n-th continuation (≤ 80 characters: a 64-character id
    leaves room for 99,999 continuations)."""
    return f"{campaign_id}{CONTINUATION_SEPARATOR}continued-{continuation}"


def continue_as_new(
    state: dict[str, Any], state_machine_arn: str, *, campaigns: Campaigns, start_execution: StartExecution
) -> dict[str, Any]:
    """Start the campaign's next execution from the loop (the cursor and counters live in the campaign
    item, so nothing else needs carrying) and point the campaign at it. The name derives from the
    campaign and the continuation's number, so a retried step finds its execution already started."""
    campaign_id, continuation = state["campaign_id"], int(state["continuation"]) + 1
    next_state = {**state, "continuation": continuation, "advance": dict(FIRST_STEP)}
    arn = start_execution(state_machine_arn, continuation_name(campaign_id, continuation), next_state)
    campaigns.update_fields(campaign_id, {"execution_arn": arn, "continuations": continuation, "updated_at": now_iso()})
    return {"execution_arn": arn, "continuation": continuation}
