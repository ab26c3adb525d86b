"""A scheduled campaign whose start failed: EventBridge Scheduler could not start the workflow
(after its retries) and put the schedule's input on its dead-letter queue, with the error in the
message's attributes. The campaign is marked failed with that error — not left "scheduled" forever.
"""

from __future__ import annotations

import json
from typing import Any

from bulkmail.models import CampaignStatus
from bulkmail.ports import Campaigns

# The error EventBridge Scheduler reports on a dead-letter message, in its attributes.
ERROR_CODE, ERROR_MESSAGE = "ERROR_CODE", "ERROR_MESSAGE"


def failed_start(body: str, attributes: dict[str, str]) -> tuple[str, str]:
    """(campaign_id, cause) of one dead-lettered start: the body is the StartExecution input."""
    campaign_id = json.loads(body)["campaign_id"]
    code = attributes.get(ERROR_CODE) or "unknown error"
    message = attributes.get(ERROR_MESSAGE) or ""
    return campaign_id, f"the scheduled start failed: {code}: {message}".rstrip(": ")


def mark_start_failed(campaigns: Campaigns, campaign_id: str, cause: str, now: str) -> bool:
    """scheduled → failed, with the cause. False when it is no longer scheduled (cancelled, or
    started after all): then there is nothing to mark."""
    return campaigns.transition(
        campaign_id, (CampaignStatus.SCHEDULED,), CampaignStatus.FAILED, now, {"failure_cause": cause}
    )


def sqs_string_attributes(record: dict[str, Any]) -> dict[str, str]:
    """A Lambda SQS record's string message attributes, by name."""
    return {name: value.get("stringValue", "") for name, value in (record.get("messageAttributes") or {}).items()}
