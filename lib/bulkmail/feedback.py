"""Bounces and complaints from SES event publishing, read into plain records.

SES publishes through the configuration set's event destination: to EventBridge ("Email Bounced",
"Email Complaint Received", the SES event in `detail`) or to SNS (the same SES event as the
message). Each bounced or complained recipient becomes one Feedback. The campaign comes from the
X-Bulkmail-Campaign header SES includes with the event.

Permanent (hard) and undetermined bounces and every complaint suppress the contact; a transient
bounce (SES gave up after retrying) is recorded and counted but leaves the contact subscribed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bulkmail.models import ContactStatus

CAMPAIGN_HEADER = "x-bulkmail-campaign"
_DETAIL_TYPES = {"Email Bounced": "Bounce", "Email Complaint Received": "Complaint"}


@dataclass(frozen=True)
class Feedback:
    kind: str  # "bounced" | "complained" (the contact status it may set)
    email: str
    campaign_id: str | None
    ses_message_id: str
    suppress: bool
    detail: dict[str, Any] = field(default_factory=dict)


def ses_events(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The SES events inside a Lambda event from EventBridge or from SNS."""
    if "detail" in event and event.get("source") == "aws.ses":
        return [event["detail"]] if event.get("detail-type") in _DETAIL_TYPES else []
    records = event.get("Records") or []
    return [json.loads(r["Sns"]["Message"]) for r in records if "Sns" in r]


def _campaign_id(mail: dict[str, Any]) -> str | None:
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == CAMPAIGN_HEADER:
            return str(header.get("value", "")).strip() or None
    for tag, values in (mail.get("tags") or {}).items():  # if a sender tags its mail with the campaign
        if tag == "campaign_id" and values:
            return str(values[0])
    return None


def parse(ses_event: dict[str, Any]) -> list[Feedback]:
    kind = ses_event.get("eventType") or ses_event.get("notificationType")
    mail = ses_event.get("mail") or {}
    campaign_id = _campaign_id(mail)
    message_id = str(mail.get("messageId", ""))
    if kind == "Bounce":
        bounce = ses_event.get("bounce") or {}
        suppress = bounce.get("bounceType") != "Transient"
        return [
            Feedback(
                ContactStatus.BOUNCED.value,
                str(r["emailAddress"]).strip().lower(),
                campaign_id,
                message_id,
                suppress,
                {
                    k: v
                    for k, v in {
                        "bounce_type": bounce.get("bounceType"),
                        "bounce_subtype": bounce.get("bounceSubType"),
                        "status": r.get("status"),
                        "diagnostic": r.get("diagnosticCode"),
                        "feedback_id": bounce.get("feedbackId"),
                        "timestamp": bounce.get("timestamp"),
                    }.items()
                    if v
                },
            )
            for r in bounce.get("bouncedRecipients") or []
            if r.get("emailAddress")
        ]
    if kind == "Complaint":
        complaint = ses_event.get("complaint") or {}
        return [
            Feedback(
                ContactStatus.COMPLAINED.value,
                str(r["emailAddress"]).strip().lower(),
                campaign_id,
                message_id,
                True,
                {
                    k: v
                    for k, v in {
                        "feedback_type": complaint.get("complaintFeedbackType"),
                        "feedback_id": complaint.get("feedbackId"),
                        "timestamp": complaint.get("timestamp"),
                    }.items()
                    if v
                },
            )
            for r in complaint.get("complainedRecipients") or []
            if r.get("emailAddress")
        ]
    return []
