"""Contacts browsed, edited and exported (issue 15); a person's data (GDPR). Routes call bulkmail.audience_admin.

The contact routes that existed before (add, import, get, delete) live in bulkmail.http.contacts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail import audience_admin
from bulkmail.adapters.dynamo import encode_cursor
from bulkmail.adapters.wiring import stores
from bulkmail.clock import now_iso
from bulkmail.http.request import csv_download, json_body, page_args, path_email, responses

router = Router()


@router.get(
    "/contacts",
    summary="Contacts, a page at a time: ?list=L&status=S&field=F&value=V&limit=N&next_token=T",
    tags=["contacts"],
    responses=responses(400, 404),
)
def browse_contacts() -> dict[str, Any]:
    event = router.current_event
    limit, cursor = page_args(event)
    contacts, next_cursor = audience_admin.browse(
        stores().contacts,
        list_name=event.get_query_string_value("list", None),
        status=event.get_query_string_value("status", None),
        field=event.get_query_string_value("field", None),
        value=event.get_query_string_value("value", None),
        cursor=cursor,
        limit=limit,
    )
    return {"contacts": contacts, "next_token": encode_cursor(next_cursor)}


@router.get(
    "/contacts/export",
    summary="Every contact (of ?list=L) as CSV: its fields, then a column per custom field",
    tags=["contacts"],
    responses=responses(404, 413),
)
def export_contacts() -> Response[str]:
    text = audience_admin.export_csv(stores().contacts, router.current_event.get_query_string_value("list", None))
    return csv_download(text, "contacts.csv")


@router.patch(
    "/contacts/<email>",
    summary="Change a contact: names, attributes (merged; null removes one), lists, status",
    tags=["contacts"],
    responses=responses(400, 404, 409),
)
def patch_contact(email: str) -> dict[str, Any]:
    return audience_admin.patch(stores().contacts, path_email(email), json_body(router.current_event), now_iso())


@router.get(
    "/contacts/<email>/export",
    summary="Everything held about an address (GDPR): the contact, its consent, its deliveries",
    tags=["contacts"],
    responses=responses(404),
)
def export_contact(email: str) -> dict[str, Any]:
    s = stores()
    return audience_admin.personal_export(s.contacts, s.settings.deliveries_table, path_email(email))
