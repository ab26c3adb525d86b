"""Lists: create, describe (with member counts), list, delete. Routes call bulkmail.audience_admin."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail import audience_admin
from bulkmail.adapters.wiring import stores
from bulkmail.clock import now_iso
from bulkmail.http.request import json_body, no_content, responses

router = Router()


@router.post("/lists", summary="Create a list", tags=["lists"], status_code=201, responses=responses(400, 409))
def create_list() -> dict[str, Any]:
    return audience_admin.create_list(stores().contacts, json_body(router.current_event))


@router.get("/lists", summary="Every list, with its member and subscribed counts", tags=["lists"])
def all_lists() -> dict[str, Any]:
    return {"lists": audience_admin.all_lists(stores().contacts)}


@router.get("/lists/<list_id>", summary="One list, with its counts", tags=["lists"], responses=responses(404))
def get_list(list_id: str) -> dict[str, Any]:
    return audience_admin.describe_list(stores().contacts, unquote(list_id))


@router.delete(
    "/lists/<list_id>",
    summary="Delete a list: its members leave it (their other lists and the contacts stay)",
    tags=["lists"],
    status_code=204,
    responses=responses(404, ok=204),
)
def delete_list(list_id: str) -> Response[str]:
    audience_admin.delete_list(stores().contacts, unquote(list_id), now_iso())
    return no_content()
