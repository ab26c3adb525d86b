"""Campaign lifecycle events on the campaign event bus: source "bulkmail", detail-type the event name.

The workflow publishes CampaignStarted, CampaignCompleted and CampaignFailed itself (putEvents states
in the ASL, with this same detail shape). This module publishes what happens outside the workflow:
CampaignPaused (an operator through the API, or a worker whose SES account stopped sending) and
CampaignCancelled. It is called from the one place statuses change, CampaignStore.transition, so no
caller can change a status without the event.

    {"campaign_id", "campaign_name", "status", "counts": {"total", "sent", "failed", "skipped"},
     "occurred_at", ...extra (a pause's "reason")}
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from bulkmail.models import CampaignStatus

logger = logging.getLogger(__name__)

SOURCE = "bulkmail"
# The status changes announced from code (the workflow announces start, completion and its own
# failure; a scheduled start that failed never reached the workflow, so its code announces it).
ANNOUNCED = {
    CampaignStatus.PAUSED.value: "CampaignPaused",
    CampaignStatus.CANCELLED.value: "CampaignCancelled",
    CampaignStatus.FAILED.value: "CampaignFailed",
}
# The record's attribute that says why, carried in the event as `reason`.
_REASON = {"CampaignPaused": "pause_reason", "CampaignFailed": "failure_cause"}


@lru_cache(maxsize=1)
def _events() -> Any:  # boto3 clients carry no static types here
    return boto3.client("events")


def campaign_detail(record: dict[str, Any], occurred_at: str, **extra: Any) -> dict[str, Any]:
    """The event detail for a campaign record (plain values, as CampaignStore returns them)."""
    return {
        "campaign_id": record["campaign_id"],
        "campaign_name": record.get("campaign_name", ""),
        "status": record["status"],
        "counts": {
            "total": int(record.get("total_contacts", 0)),
            "sent": int(record.get("sent_count", 0)),
            "failed": int(record.get("failed_count", 0)),
            "skipped": int(record.get("skipped_count", 0)),
        },
        "occurred_at": occurred_at,
        **extra,
    }


class CampaignEvents:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def status_changed(self, record: dict[str, Any], occurred_at: str) -> bool:
        """Announce the record's new status if it is one of ANNOUNCED (False: not announced or not published)."""
        detail_type = ANNOUNCED.get(record["status"])
        if detail_type is None:
            return False
        reason = record.get(_REASON.get(detail_type, ""))
        extra = {"reason": reason} if reason else {}
        return self.publish(detail_type, campaign_detail(record, occurred_at, **extra))

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """PutEvents one event. The status change it reports has already happened and stands, so a
        refusal is logged as an error (the campaign record stays the truth), not raised: a pause that
        worked must not answer 500 to the operator, nor replace the SendingPaused a worker re-raises."""
        entry = {
            "EventBusName": self.bus_name,
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, separators=(",", ":"), default=str),
        }
        try:
            response = _events().put_events(Entries=[entry])  # boto3 retries throttling and 5xx itself
        except (BotoCoreError, ClientError) as exc:
            logger.error(
                "campaign event not published",
                extra={"detail_type": detail_type, "error": repr(exc), "campaign_id": detail.get("campaign_id")},
            )
            return False
        if response.get("FailedEntryCount"):
            logger.error(
                "campaign event refused",
                extra={
                    "detail_type": detail_type,
                    "entries": response.get("Entries"),
                    "campaign_id": detail.get("campaign_id"),
                },
            )
            return False
        return True


# ---- engagement (issue 16): contact-level events, for webhooks (stack parameter ContactEvents) ----
CONTACT_EVENT_TYPES = {
    "open": "EmailOpened",
    "click": "LinkClicked",
    "bounced": "ContactBounced",
    "unsubscribed": "ContactUnsubscribed",
}


def publish_contact_event(
    bus_name: str, kind: str, campaign_id: str, email: str, occurred_at: str, **extra: Any
) -> bool:
    """One person's first open or click of a campaign, a bounce, an unsubscribe: published after the
    write that counted it (a notification: a lost one is logged, the counters stay the record)."""
    detail = {"campaign_id": campaign_id, "email": email, "occurred_at": occurred_at, **extra}
    return CampaignEvents(bus_name).publish(CONTACT_EVENT_TYPES[kind], detail)
