"""The contacts routes: add or update contacts (JSON or CSV), read one, delete one."""

from __future__ import annotations

import csv
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail import audience_admin
from bulkmail.adapters.wiring import stores
from bulkmail.clock import SYSTEM_CLOCK
from bulkmail.contact_import import normalise_contacts, parse_contacts_csv
from bulkmail.http.request import ApiError, json_body, no_content, path_email, raw_body, responses

MAX_CONTACTS_PER_REQUEST = 1_000
MAX_CSV_BYTES = 5 * 1024 * 1024  # under Lambda's 6 MB synchronous payload

router = Router()


@router.post(
    "/contacts",
    summary="Add or update up to 1,000 contacts: all of them, or none (400 naming each one at fault)",
    tags=["contacts"],
    responses=responses(400, 413),
)
def post_contacts() -> dict[str, Any]:
    document = json_body(router.current_event, MAX_CSV_BYTES)
    contacts = document.get("contacts")
    if not isinstance(contacts, list):
        raise ApiError(400, "contacts", "is required and must be an array of contacts")
    if len(contacts) > MAX_CONTACTS_PER_REQUEST:
        raise ApiError(413, "contacts", f"{len(contacts)} contacts; at most {MAX_CONTACTS_PER_REQUEST} per request")
    items, rejected = normalise_contacts(contacts)
    if rejected:  # nothing is stored: the request is the unit
        raise ApiError(
            400,
            "contacts",
            "",
            errors=[
                {"field": f"contacts[{r['index']}].{r['field']}".replace(".$", ""), "message": r["error"]}
                for r in rejected
            ],
        )
    return {"imported": stores().contacts.put_many(items), "rejected": []}


@router.post(
    "/contacts/import",
    summary="Import contacts from CSV (email, first_name, last_name, company, lists, status, opted_in_at; "
    "every other column a custom field, typed by a header such as seats:number or vip:boolean)",
    tags=["contacts"],
    responses=responses(400, 413, 415),
)
def import_contacts() -> dict[str, Any]:
    content_type = (router.current_event.headers.get("content-type", "") or "").lower()
    if content_type.split(";")[0].strip() not in ("text/csv", "application/csv"):
        raise ApiError(415, "Content-Type", f"must be text/csv, not {content_type or 'absent'!r}")
    text = raw_body(router.current_event, MAX_CSV_BYTES)
    try:
        rows, lines, problems = parse_contacts_csv(text)
    except csv.Error as exc:
        raise ApiError(400, "$", f"the CSV cannot be read: {exc}") from None
    well_formed = [i for i in range(len(rows)) if i not in problems]
    items, rejected = normalise_contacts(
        [rows[i] for i in well_formed], label=lambda index: f"line {lines[well_formed[index]]}"
    )
    report = [{"line": lines[i], "email": rows[i].get("email"), "field": "$", "error": problems[i]} for i in problems]
    report += [
        {"line": lines[well_formed[r["index"]]], "email": r["email"], "field": r["field"], "error": r["error"]}
        for r in rejected
    ]
    imported = stores().contacts.put_many(items)
    return {"imported": imported, "rejected": sorted(report, key=lambda r: r["line"])}


@router.get("/contacts/<email>", summary="One contact", tags=["contacts"], responses=responses(404))
def get_contact(email: str) -> dict[str, Any]:
    email = path_email(email)
    item = stores().contacts.get_item(email)
    if item is None:
        raise ApiError(404, "email", f"Contact {email} not found")
    return item


@router.delete(
    "/contacts/<email>",
    summary="Delete a contact (a suppressed address stays suppressed); ?erase=true: erase everything held "
    "about the address (GDPR), keeping only a hashed suppression",
    tags=["contacts"],
    status_code=204,
    responses=responses(404, ok=204),
)
def delete_contact(email: str) -> Response[str]:
    email = path_email(email)
    now = SYSTEM_CLOCK.now().isoformat(timespec="seconds")
    # ---- audience (issue 15): ?erase=true removes personal data everywhere (GDPR) ----
    erase = router.current_event.get_query_string_value("erase", "false")
    if erase not in ("true", "false"):
        raise ApiError(400, "erase", "must be true or false")
    if erase == "true":
        s = stores()
        audience_admin.erase(s.contacts, s.settings.deliveries_table, email, now)  # idempotent: 204 again
        return no_content()
    # ---- end audience ----
    if not stores().contacts.delete(email, now):
        raise ApiError(404, "email", f"Contact {email} not found")
    return no_content()
