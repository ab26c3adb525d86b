"""The logic behind the workflow's Lambda steps: persist a validated campaign, fan out one page."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bulkmail.errors import CampaignInvalid
from bulkmail.models import BatchMessage, CampaignStatus



def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def audience_size(campaign: dict[str, Any], *, contacts, ledger) -> int:
    if campaign.get("resend_of"):
        return ledger.count_failed(campaign["resend_of"])
    return contacts.count_recipients(campaign.get("list"))


def audience_page(campaign: dict[str, Any], cursor: dict | None, limit: int, *, contacts, ledger
                  ) -> tuple[list[str], dict | None]:
    """The next page of recipients: subscribed contacts (of the list), or a re-send's failed ones."""
    if campaign.get("resend_of"):
        return ledger.failed_page(campaign["resend_of"], cursor, limit)
    return contacts.scan_page(cursor, limit, campaign.get("list"))


def persist_campaign(campaign: dict[str, Any], execution_arn: str, *, campaigns, contacts, ledger, settings
                     ) -> dict[str, Any]:
    """Store the campaign as queued (once, even when retried) and hand the workflow its first cursor."""
    record = {
        **campaign,
        "status": CampaignStatus.QUEUED.value,
        "execution_arn": execution_arn,
        "max_send_rate": campaign.get("max_send_rate", settings.default_max_send_rate),
        "updated_at": _now(),
    }
    estimate = audience_size(campaign, contacts=contacts, ledger=ledger)
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
        # What the workflow's CampaignStarted event reports.
        "campaign_name": campaign["campaign_name"],
        "total_contacts": estimate,
    }


def backlog_bound(campaign: dict[str, Any], settings) -> int:
    """How many queued-but-unsent recipients a campaign may have: a few minutes at its rate."""
    rate = float(campaign.get("max_send_rate") or settings.default_max_send_rate)
    return max(settings.fanout_page_size, int(rate * settings.backlog_seconds))


def fan_out_page(campaign_id: str, *, campaigns, contacts, ledger, queue, settings) -> dict[str, Any]:
    campaign = campaigns.get(campaign_id)
    # The campaign item, not the workflow state, holds the cursor: a retried step resumes where the
    # last recorded page ended.
    state = {"page_no": campaign["fanout_page"], "done": False, "backlogged": False}
    if campaign["status"] == CampaignStatus.FAILED.value:
        return {**state, "done": True}
    backlog = campaign["queued_count"] - campaign["processed_count"]
    # A cancelled campaign still fans out, unthrottled: workers account each recipient as skipped.
    if campaign["status"] != CampaignStatus.CANCELLED.value and (
            campaign["status"] == CampaignStatus.PAUSED.value or backlog >= backlog_bound(campaign, settings)):
        return {**state, "backlogged": True}

    page_no = campaign["fanout_page"]
    emails, cursor = audience_page(campaign, campaign.get("fanout_cursor"), settings.fanout_page_size,
                                   contacts=contacts, ledger=ledger)
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
    # "queued" is for the step's metrics; the state machine keeps only page_no, done and backlogged.
    return {"page_no": page_no + 1, "done": done, "backlogged": False, "queued": len(emails)}
