"""The public archive: an archived campaign (`"archive": true`) as a web page, and per list an index
of them with an Atom feed. Rendered for nobody: no contact's values, so each placeholder shows its
template's default (`{{first_name | default("there")}}`) or nothing; no unsubscribe link or token.

A campaign is published once it sends (processing, paused, completed): a scheduled one is not public
before its time.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from bulkmail.models import CampaignStatus, Contact
from bulkmail.rendering import RenderedEmail, render

PUBLISHED = frozenset({CampaignStatus.PROCESSING.value, CampaignStatus.PAUSED.value, CampaignStatus.COMPLETED.value})
INDEX_LIMIT = 50  # newest campaigns on a list's index and in its feed
NOBODY = Contact(email="")
# The attribute the campaigns table's sparse ArchiveIndex is keyed on: set only on archived campaigns
# sent to a list (a campaign to every contact is published, but on no list's index).
ARCHIVE_KEY = "archive_list"


def archive_key(campaign: dict[str, Any]) -> str | None:
    return str(campaign["list"]) if campaign.get("archive") and campaign.get("list") else None


def is_published(record: dict[str, Any]) -> bool:
    return bool(record.get("archive")) and record.get("status") in PUBLISHED


def for_nobody(record: dict[str, Any]) -> RenderedEmail:
    """The campaign as the archive shows it: no recipient, no unsubscribe link, no tracking."""
    return render(record, NOBODY)


def page(record: dict[str, Any]) -> str:
    """The archived campaign's page: its HTML as sent (or its text, when it has no HTML)."""
    rendered = for_nobody(record)
    if rendered.html is not None:
        return rendered.html
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>{escape(rendered.subject)}</title></head>'
        f'<body style="font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em">'
        f'<h1 style="font-size:1.3em">{escape(rendered.subject)}</h1>'
        f'<pre style="white-space:pre-wrap;font-family:inherit">{escape(rendered.text)}</pre></body></html>'
    )


def _entries(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "campaign_id": r["campaign_id"],
            "title": str(r.get("campaign_name") or r["campaign_id"]),
            "created_at": str(r.get("created_at", "")),
        }
        for r in records
    ]


def index_page(list_name: str, records: list[dict[str, Any]]) -> str:
    """A list's archive: its newest published campaigns, linked (relative: the page is at
    /archive/lists/{list}, a campaign at /archive/{campaign_id})."""
    items = "".join(
        f'<li><a href="../{escape(e["campaign_id"])}">{escape(e["title"])}</a> '
        f'<small style="color:#666">{escape(e["created_at"][:10])}</small></li>'
        for e in _entries(records)
    )
    name, slug = escape(list_name), quote(list_name, safe="")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>Archive: {name}</title>'
        f'<link rel="alternate" type="application/atom+xml" title="{name}" href="{slug}/feed"></head>'
        f'<body style="font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em">'
        f"<h1>Archive: {name}</h1><ul>{items or '<li>Nothing published yet.</li>'}</ul>"
        f'<p><a href="{slug}/feed">Atom feed</a></p></body></html>'
    )


def atom_feed(list_name: str, records: list[dict[str, Any]], now: datetime) -> str:
    """RFC 4287 feed of a list's archive. Ids are URNs (stable wherever the API is deployed); links are
    relative to the feed at /archive/lists/{list}/feed."""
    entries, slug = _entries(records), quote(list_name, safe="")
    updated = max((e["created_at"] for e in entries), default=now.isoformat(timespec="seconds"))
    body = "".join(
        f"<entry><id>urn:bulkmail:campaign:{xml_escape(e['campaign_id'])}</id>"
        f"<title>{xml_escape(e['title'])}</title>"
        f'<link rel="alternate" type="text/html" href="../../{xml_escape(e["campaign_id"])}"/>'
        f"<updated>{xml_escape(e['created_at'])}</updated></entry>"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:bulkmail:archive:{xml_escape(list_name)}</id><title>{xml_escape(list_name)}</title>"
        f"<updated>{xml_escape(updated)}</updated><author><name>{xml_escape(list_name)}</name></author>"
        f'<link rel="self" href="feed"/><link rel="alternate" type="text/html" href="../{slug}"/>'
        f"{body}</feed>"
    )
