"""The public archive's routes (no credentials: the "view in browser" link in every archived email).

GET /archive/{campaign_id}           the campaign as a web page, without personal data
GET /archive/lists/{list_name}       the list's newest archived campaigns
GET /archive/lists/{list_name}/feed  the same as an Atom feed
An unknown campaign, one not archived and one not yet sending are all the same 404.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail.adapters.wiring import archive_reader
from bulkmail.archive import INDEX_LIMIT, atom_feed, index_page, is_published, page
from bulkmail.clock import SYSTEM_CLOCK

router = Router()

_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # The campaign's own HTML: inline styles and https images, nothing that runs.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
}
_HTML = "text/html; charset=utf-8"


def _not_found() -> Response[str]:
    return Response(
        status_code=404,
        content_type=_HTML,
        headers={**_HEADERS, "Cache-Control": "no-store"},
        body='<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>'
        '<body style="font-family:sans-serif;max-width:32em;margin:3em auto"><h1>This page is not in the archive'
        "</h1></body></html>",
    )


# What the schema allows (campaign_id, list): anything else cannot be in the archive, and is not sent
# to DynamoDB (whose key limits would answer a long one with an error).
_CAMPAIGN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_LIST_CHARS = 100


@router.get("/archive/<campaign_id>")
def archived_campaign(campaign_id: str) -> Response[str]:
    campaign_id = unquote(campaign_id)
    record = archive_reader().campaign(campaign_id) if _CAMPAIGN_ID.fullmatch(campaign_id) else None
    if record is None or not is_published(record):
        return _not_found()
    return Response(status_code=200, content_type=_HTML, headers=_HEADERS, body=page(record))


@router.get("/archive/lists/<list_name>")
def list_archive(list_name: str) -> Response[str]:
    name = unquote(list_name)
    if len(name) > MAX_LIST_CHARS:
        return _not_found()
    return Response(
        status_code=200,
        content_type=_HTML,
        headers=_HEADERS,
        body=index_page(name, archive_reader().newest(name, INDEX_LIMIT)),
    )


@router.get("/archive/lists/<list_name>/feed")
def list_feed(list_name: str) -> Response[str]:
    name = unquote(list_name)
    if len(name) > MAX_LIST_CHARS:
        return _not_found()
    feed = atom_feed(name, archive_reader().newest(name, INDEX_LIMIT), SYSTEM_CLOCK.now())
    return Response(status_code=200, content_type="application/atom+xml; charset=utf-8", headers=_HEADERS, body=feed)
