"""What every email carries besides its content: SES message tags, List-Id, custom headers, and
whether its opens and clicks are tracked (docs/engagement.md).

SES does the tracking itself: a campaign that tracks anything is sent with the tracked configuration
set (tracking options + an event destination for OPEN and CLICK), which adds the open pixel and wraps
every link not marked `ses:no-track`. Its events come back through EventBridge with the message tags
set here, which is how FeedbackFunction attributes them to a campaign without reading it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Message tags (names and values: ASCII letters, digits, '_' and '-'; SES refuses others).
TAG_CAMPAIGN = "campaign_id"
TAG_TRACKING = "bulkmail-tracking"  # "opens", "clicks" or "opens-clicks": what this campaign counts
TAG_PRIVACY = "bulkmail-privacy"  # "true": count, but tie no event to a person
# Gmail's feedback loop: SES turns these two tags into the Feedback-ID header (campaign, sender).
TAG_FEEDBACK_A = "ses:feedback-id-a"
TAG_FEEDBACK_B = "ses:feedback-id-b"
# SES leaves a link with this attribute alone (and removes the attribute).
NO_TRACK = "ses:no-track"

_TAG_VALUE = re.compile(r"[^A-Za-z0-9_-]")
_ANCHOR = re.compile(r"<a(?=[\s>])", re.IGNORECASE)
_TRUE = {"true", "1", "yes"}
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")

# Headers a campaign may not set: the ones bulkmail writes, the MIME structure, SES's own.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "sender",
        "reply-to",
        "date",
        "message-id",
        "return-path",
        "mime-version",
        "feedback-id",
        "received",
        "dkim-signature",
    }
)
RESERVED_PREFIXES = ("list-", "content-", "x-bulkmail-", "x-ses-")


@dataclass(frozen=True)
class Tracking:
    opens: bool = False
    clicks: bool = False
    privacy: bool = False

    @property
    def tracked(self) -> bool:
        return self.opens or self.clicks

    @property
    def tag(self) -> str:
        return "-".join(kind for kind, on in (("opens", self.opens), ("clicks", self.clicks)) if on)


def flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def tracking_of(campaign: Mapping[str, Any], defaults: Tracking) -> Tracking:
    """The campaign's own choice where it made one, the deployment's defaults (stack parameters) elsewhere."""
    return Tracking(
        opens=bool(campaign.get("track_opens", defaults.opens)),
        clicks=bool(campaign.get("track_clicks", defaults.clicks)),
        privacy=bool(campaign.get("privacy_mode", defaults.privacy)),
    )


def tag_value(text: str) -> str:
    """A value SES accepts as a message tag (≤ 255 characters of its alphabet)."""
    return _TAG_VALUE.sub("_", text)[:255] or "_"


def message_tags(campaign: Mapping[str, Any], tracking: Tracking, feedback_id: str) -> dict[str, str]:
    """The SES message tags of the campaign's emails."""
    tags = {
        TAG_CAMPAIGN: tag_value(str(campaign["campaign_id"])),
        TAG_FEEDBACK_A: tag_value(str(campaign["campaign_id"])),
        TAG_FEEDBACK_B: tag_value(feedback_id or "bulkmail"),
    }
    if tracking.tracked:
        tags[TAG_TRACKING] = tracking.tag
        if tracking.privacy:
            tags[TAG_PRIVACY] = "true"
    return tags


def tracking_from_tags(tags: Mapping[str, list[str]]) -> Tracking:
    """What the campaign that sent an email counts, read from the event's mail.tags."""
    kinds = set((tags.get(TAG_TRACKING) or [""])[0].split("-"))
    return Tracking("opens" in kinds, "clicks" in kinds, flag((tags.get(TAG_PRIVACY) or [""])[0]))


def untracked_links(html: str) -> str:
    """Every link marked so that SES does not wrap it (a campaign that tracks opens but not clicks)."""
    return _ANCHOR.sub(f"<a {NO_TRACK}", html)


def header_problems(headers: Any) -> list[dict[str, str]]:
    """A campaign's custom headers: names RFC 5322 allows, no line breaks, none bulkmail or MIME owns."""
    if not isinstance(headers, dict):
        return []  # the schema says so
    problems = []
    for name, value in headers.items():
        field = f"headers.{name}"
        lower = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            problems.append({"field": field, "message": "a header name is 1-76 printable ASCII characters, no ':'"})
        elif lower in RESERVED_HEADERS or lower.startswith(RESERVED_PREFIXES):
            problems.append({"field": field, "message": f"{name} is set by bulkmail and cannot be overridden"})
        elif isinstance(value, str) and ("\r" in value or "\n" in value):
            problems.append({"field": field, "message": "must not contain line breaks"})
    return problems


def list_id(campaign: Mapping[str, Any]) -> str:
    """RFC 2919 List-Id: the list's name, and an id under the sender's domain."""
    name = str(campaign.get("list") or "all contacts")
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:60] or "list"
    domain = str(campaign["from_email"]).rpartition("@")[2] or "localhost"
    label = name.replace("\\", "").replace('"', "")
    return f'"{label}" <{slug}.{domain}>'


def contact_events(settings: Any) -> bool:
    """Whether contact-level events go on the campaign bus (stack parameter ContactEvents)."""
    return flag(getattr(settings, "contact_events", "false")) and bool(getattr(settings, "event_bus_name", ""))
