"""The contacts routes: add or update contacts (JSON or CSV), read one, delete one."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail.adapters.wiring import stores
from bulkmail.clock import SYSTEM_CLOCK
from bulkmail.contact_import import normalise_contacts
from bulkmail.http.request import ApiError, json_body, raw_body, responses

MAX_CONTACTS_PER_REQUEST = 1_000
MAX_CSV_BYTES = 5 * 1024 * 1024  # under Lambda's 6 MB synchronous payload
CSV_COLUMNS = ("email", "first_name", "last_name", "company", "lists", "opted_in_at")

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


def parse_csv(text: str) -> tuple[list[dict[str, Any]], list[int], dict[int, str]]:
    """Rows as contact documents, the line each started on (the header is line 1), and row problems."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # spreadsheets often start with a BOM
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "email" not in header:
        raise ApiError(400, "email", "the CSV header row must name an email column")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise ApiError(
            400,
            unknown[0] or "$",
            f"unknown CSV column(s) {', '.join(map(repr, unknown))} (known: {', '.join(CSV_COLUMNS)})",
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ApiError(400, repeated[0], f"the CSV header names column(s) {', '.join(repeated)} more than once")
    reader.fieldnames = header
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: dict[int, str] = {}
    line = reader.line_num + 1
    for row in reader:
        if row.pop(None, None):
            problems[len(rows)] = f"$: the row has more cells than the header's {len(header)}"
        doc: dict[str, Any] = {k: (v or "").strip() for k, v in row.items() if (v or "").strip()}
        if "lists" in doc:
            doc["lists"] = sorted({p.strip() for p in doc["lists"].split(";") if p.strip()})
        rows.append(doc)
        lines.append(line)
        line = reader.line_num + 1
    return rows, lines, problems


@router.post(
    "/contacts/import",
    summary="Import contacts from CSV (email, first_name, last_name, company, lists)",
    tags=["contacts"],
    responses=responses(400, 413, 415),
)
def import_contacts() -> dict[str, Any]:
    content_type = (router.current_event.headers.get("content-type", "") or "").lower()
    if content_type.split(";")[0].strip() not in ("text/csv", "application/csv"):
        raise ApiError(415, "Content-Type", f"must be text/csv, not {content_type or 'absent'!r}")
    text = raw_body(router.current_event, MAX_CSV_BYTES)
    try:
        rows, lines, problems = parse_csv(text)
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
    email = unquote(email).strip().lower()
    item = stores().contacts.get_item(email)
    if item is None:
        raise ApiError(404, "email", f"Contact {email} not found")
    return item


@router.delete(
    "/contacts/<email>",
    summary="Delete a contact (a suppressed address stays suppressed)",
    tags=["contacts"],
    status_code=204,
    responses=responses(404, ok=204),
)
def delete_contact(email: str) -> Response[str]:
    email = unquote(email).strip().lower()
    if not stores().contacts.delete(email, SYSTEM_CLOCK.now().isoformat(timespec="seconds")):
        raise ApiError(404, "email", f"Contact {email} not found")
    return Response(status_code=204, content_type="application/json", body="")
