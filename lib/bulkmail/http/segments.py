"""Segments: contacts of some lists matching conditions. Routes call bulkmail.audience_admin."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail import audience_admin
from bulkmail.adapters.wiring import stores
from bulkmail.http.request import json_body, no_content, responses

router = Router()


@router.post(
    "/segments",
    summary="Create a segment: {segment_id, lists, match: [{field, op, value}]} (conditions ANDed)",
    tags=["segments"],
    status_code=201,
    responses=responses(400, 409, 422),
)
def create_segment() -> dict[str, Any]:
    return audience_admin.create_segment(stores().contacts, json_body(router.current_event))


@router.get("/segments", summary="Every segment", tags=["segments"])
def all_segments() -> dict[str, Any]:
    contacts = stores().contacts
    return {"segments": audience_admin.all_segments(contacts)}


@router.get("/segments/<segment_id>", summary="One segment", tags=["segments"], responses=responses(404))
def get_segment(segment_id: str) -> dict[str, Any]:
    return audience_admin.get_segment(stores().contacts, unquote(segment_id))


@router.get(
    "/segments/<segment_id>/count",
    summary="How many subscribed contacts the segment matches now, and the read units counting them took",
    tags=["segments"],
    responses=responses(404),
)
def count_segment(segment_id: str) -> dict[str, Any]:
    return audience_admin.count_segment(stores().contacts, unquote(segment_id))


@router.delete(
    "/segments/<segment_id>",
    summary="Delete a segment (campaigns started from it keep their audience)",
    tags=["segments"],
    status_code=204,
    responses=responses(404, ok=204),
)
def delete_segment(segment_id: str) -> Response[str]:
    audience_admin.delete_segment(stores().contacts, unquote(segment_id))
    return no_content()
