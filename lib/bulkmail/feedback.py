"""Bounces and complaints from SES event publishing, read into plain records.

SES publishes through the configuration set's event destination: to EventBridge ("Email Bounced",
"Email Complaint Received", the SES event in `detail`) or to SNS (the same SES event as the
message). Each bounced or complained recipient becomes one Feedback. The campaign comes from the
X-Bulkmail-Campaign header SES includes with the event.

Permanent (hard) and undetermined bounces and every complaint suppress the contact; a transient
bounce (SES gave up after retrying) is recorded and counted but leaves the contact subscribed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bulkmail.models import ContactStatus
from bulkmail.tracking import tracking_from_tags

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
        return [
            Feedback(
                ContactStatus.BOUNCED.value,
                email,
                campaign_id,
                message_id,
                bounce.get("bounceType") != "Transient",
                _present(
                    bounce_type=bounce.get("bounceType"),
                    bounce_subtype=bounce.get("bounceSubType"),
                    status=r.get("status"),
                    diagnostic=r.get("diagnosticCode"),
                    feedback_id=bounce.get("feedbackId"),
                    timestamp=bounce.get("timestamp"),
                ),
            )
            for r, email in _addressed(bounce.get("bouncedRecipients"))
        ]
    if kind == "Complaint":
        complaint = ses_event.get("complaint") or {}
        detail = _present(
            feedback_type=complaint.get("complaintFeedbackType"),
            feedback_id=complaint.get("feedbackId"),
            timestamp=complaint.get("timestamp"),
        )
        return [
            Feedback(ContactStatus.COMPLAINED.value, email, campaign_id, message_id, True, dict(detail))
            for _, email in _addressed(complaint.get("complainedRecipients"))
        ]
    return []


def _addressed(recipients: list[dict[str, Any]] | None) -> list[tuple[dict[str, Any], str]]:
    """The recipients SES names with an address, each with its address as contacts are keyed."""
    return [(r, str(r["emailAddress"]).strip().lower()) for r in recipients or [] if r.get("emailAddress")]


def _present(**detail: Any) -> dict[str, Any]:
    """The details SES gave (it leaves some out, or empty)."""
    return {k: v for k, v in detail.items() if v}


# --- engagement and delivery events (the tracked configuration set) ---------------------------------

# EventBridge detail-type → SES eventType → the kind bulkmail counts.
ENGAGEMENT_DETAIL_TYPES = {
    "Email Opened": "Open",
    "Email Clicked": "Click",
    "Email Delivered": "Delivery",
    "Email Delivery Delayed": "DeliveryDelay",
    "Email Rejected": "Reject",
    "Email Rendering Failed": "Rendering Failure",
}
ENGAGEMENT_KINDS = {
    "Open": "open",
    "Click": "click",
    "Delivery": "delivered",
    "DeliveryDelay": "delivery_delayed",
    "Reject": "rejected",
    "Rendering Failure": "rendering_failed",
}
# The SES event's own object, where its timestamp is.
_EVENT_OBJECT = {
    "Open": "open",
    "Click": "click",
    "Delivery": "delivery",
    "DeliveryDelay": "deliveryDelay",
    "Reject": "reject",
    "Rendering Failure": "failure",
}


@dataclass(frozen=True)
class Engagement:
    """One open, click or delivery outcome of one email, attributed by its message tags."""

    kind: str  # a value of ENGAGEMENT_KINDS, or "unsubscribed"
    campaign_id: str
    message_id: str
    email: str  # "" in privacy mode: the event is counted, never tied to a person
    at: str  # ISO 8601, when it happened (SES's timestamp)
    fingerprint: str  # the same for every delivery of the same event: a repeat counts once
    link: str = ""  # the original URL of a click

    @property
    def private(self) -> bool:
        return not self.email


def engagement_events(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The SES engagement and delivery events inside a Lambda event from EventBridge or SNS."""
    if "detail" in event and event.get("source") == "aws.ses":
        return [event["detail"]] if event.get("detail-type") in ENGAGEMENT_DETAIL_TYPES else []
    records = event.get("Records") or []
    found = [json.loads(r["Sns"]["Message"]) for r in records if "Sns" in r]
    return [e for e in found if (e.get("eventType") or e.get("notificationType")) in ENGAGEMENT_KINDS]


def parse_engagement(ses_event: dict[str, Any]) -> Engagement | None:
    """The event as bulkmail counts it; None for mail no campaign sent, or a kind its campaign does not
    count (an open of a campaign that tracks clicks only: SES's pixel is per configuration set)."""
    kind = ses_event.get("eventType") or ses_event.get("notificationType") or ""
    mail = ses_event.get("mail") or {}
    campaign_id = _campaign_id(mail)
    if kind not in ENGAGEMENT_KINDS or not campaign_id:
        return None
    tracking = tracking_from_tags(mail.get("tags") or {})
    if (kind == "Open" and not tracking.opens) or (kind == "Click" and not tracking.clicks):
        return None
    detail = ses_event.get(_EVENT_OBJECT[kind]) or {}
    destination = mail.get("destination") or [""]
    fingerprint = hashlib.sha256(json.dumps(ses_event, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return Engagement(
        kind=ENGAGEMENT_KINDS[kind],
        campaign_id=campaign_id,
        message_id=str(mail.get("messageId", "")),
        email="" if tracking.privacy else str(destination[0]).strip().lower(),
        at=str(detail.get("timestamp") or mail.get("timestamp") or ""),
        fingerprint=fingerprint,
        link=str(detail.get("link", "")) if kind == "Click" else "",
    )


def unsubscribed(campaign_id: str, email: str, at: str) -> Engagement:
    """A one-click unsubscribe from one of the campaign's emails: counted once per recipient, tied to
    nobody (the contact's own record says who unsubscribed)."""
    key = hashlib.sha256(f"{campaign_id}:{email}".encode()).hexdigest()[:32]
    return Engagement("unsubscribed", campaign_id, message_id=key, email="", at=at, fingerprint=f"unsubscribe-{key}")
