"""The logic behind the workflow's Lambda steps: persist a validated campaign, fan out one page."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bulkmail.errors import CampaignInvalid
from bulkmail.models import BatchMessage, CampaignStatus

_STOPPED = {CampaignStatus.CANCELLED.value, CampaignStatus.FAILED.value, CampaignStatus.COMPLETED.value}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def persist_campaign(campaign: dict[str, Any], execution_arn: str, *, campaigns, contacts, settings) -> dict[str, Any]:
    """Store the campaign as queued (once, even when retried) and hand the workflow its first cursor."""
    record = {
        **campaign,
        "status": CampaignStatus.QUEUED.value,
        "execution_arn": execution_arn,
        "max_send_rate": campaign.get("max_send_rate", settings.default_max_send_rate),
        "updated_at": _now(),
    }
    estimate = contacts.count_recipients(campaign.get("list"))
    if not campaigns.create({**record, "total_contacts": estimate}):
        existing = campaigns.get(campaign["campaign_id"])
        # A scheduled campaign was stored by the API (its record may have been edited since): adopt it.
        adopted = existing.get("status") == CampaignStatus.SCHEDULED.value and campaigns.transition(
            campaign["campaign_id"], (CampaignStatus.SCHEDULED,), CampaignStatus.QUEUED, record["updated_at"],
            extra={"execution_arn": execution_arn, "total_contacts": estimate,
                   "max_send_rate": record["max_send_rate"]})
        if not adopted and existing.get("execution_arn") != execution_arn:  # not our own earlier attempt
            raise CampaignInvalid([{"field": "campaign_id", "message": f"{campaign['campaign_id']} already exists "
                                                                       f"({existing.get('status')})"}])
    return {
        "campaign_id": campaign["campaign_id"],
        "poll_seconds": settings.poll_seconds,
        "fanout": {"page_no": 0, "done": False, "backlogged": False},
    }


def backlog_bound(campaign: dict[str, Any], settings) -> int:
    """How many queued-but-unsent recipients a campaign may have: a few minutes at its rate."""
    rate = float(campaign.get("max_send_rate") or settings.default_max_send_rate)
    return max(settings.fanout_page_size, int(rate * settings.backlog_seconds))


def fan_out_page(campaign_id: str, *, campaigns, contacts, queue, settings) -> dict[str, Any]:
    campaign = campaigns.get(campaign_id)
    # The campaign item, not the workflow state, holds the cursor: a retried step resumes where the
    # last recorded page ended.
    state = {"page_no": campaign["fanout_page"], "done": False, "backlogged": False}
    if campaign["status"] in _STOPPED:
        return {**state, "done": True}
    backlog = campaign["queued_count"] - campaign["processed_count"]
    if campaign["status"] == CampaignStatus.PAUSED.value or backlog >= backlog_bound(campaign, settings):
        return {**state, "backlogged": True}

    page_no = campaign["fanout_page"]
    emails, cursor = contacts.scan_page(campaign.get("fanout_cursor"), settings.fanout_page_size, campaign.get("list"))
    n = settings.recipients_per_message
    # Batch ids derive from the page number, so a retried step re-sends the same batches, which
    # the ledger's batch claims then acknowledge instead of sending twice.
    messages = [
        BatchMessage(campaign_id, f"p{page_no:07d}-{i // n:03d}", tuple(emails[i:i + n]))
        for i in range(0, len(emails), n)
    ]
    queue.send(messages)
    done = cursor is None
    campaigns.record_fanout_page(campaign_id, page_no, cursor, len(emails), _now())
    return {"page_no": page_no + 1, "done": done, "backlogged": False}
