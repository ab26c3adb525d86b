"""Contacts as users send them (API, CSV, CLI), checked against the contact schema."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bulkmail.errors import InputInvalid
from bulkmail.models import DYNAMODB_ITEM_BYTES, ContactStatus, dynamodb_item_size
from bulkmail.validation import email_problem, load_schema, parse_timestamp, schema_errors

# Room a stored contact keeps for what bulkmail adds later: its suppression (status, date, the bounce
# or complaint's details) and a lifted one. It also keeps contacts under moto's stricter count (405,000).
SUPPRESSION_ROOM_BYTES = 8 * 1024
# The largest contact an import stores: DynamoDB's item limit, less that room.
MAX_CONTACT_BYTES = DYNAMODB_ITEM_BYTES - SUPPRESSION_ROOM_BYTES


def normalise_contacts(
    documents: Iterable[Any],
    *,
    now: datetime | None = None,
    label: Callable[[int], str] = lambda i: f"contacts[{i}]",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items to store, rejected). Each rejected one has its index, email, the first field at fault
    and the reason (`error`: "field: problem; ..."). A later contact with an address already given
    is rejected as a duplicate (`label` names the earlier one), so each address is stored once."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    items, rejected = [], []
    first_index: dict[str, int] = {}
    for index, doc in enumerate(documents):
        email = doc.get("email") if isinstance(doc, dict) else None
        errors = _problems(doc)
        key = email.strip().lower() if isinstance(email, str) else ""
        if not errors and key in first_index:
            errors = [{"field": "email", "message": f"is a duplicate of {label(first_index[key])}"}]
        item: dict[str, Any] = {}
        if not errors:
            item = {k: v for k, v in doc.items() if v not in ("", None, [], {})}
            item["email"] = key
            item.setdefault("status", "subscribed")
            item["created_at"] = stamp
            size = dynamodb_item_size(item)
            if size > MAX_CONTACT_BYTES:
                errors = [
                    {
                        "field": _largest_field(item),
                        "message": f"the contact is {size} bytes as DynamoDB counts it; at most {MAX_CONTACT_BYTES}",
                    }
                ]
        if errors:
            rejected.append(
                {
                    "index": index,
                    "email": email if isinstance(email, str) else None,
                    "field": errors[0]["field"],
                    "error": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                }
            )
            continue
        first_index[key] = index
        items.append(item)
    return items, rejected


def _problems(doc: Any) -> list[dict[str, str]]:
    if not isinstance(doc, dict):
        return [{"field": "$", "message": "a contact must be a JSON object"}]
    errors = schema_errors(doc, "contact")
    if errors:
        return errors
    problem = email_problem(doc["email"])
    if problem:
        return [{"field": "email", "message": problem}]
    if "opted_in_at" in doc and parse_timestamp(doc["opted_in_at"]) is None:
        return [{"field": "opted_in_at", "message": "must be an RFC 3339 date-time with a UTC offset"}]
    return []


def _largest_field(item: dict[str, Any]) -> str:
    """The (nested) field that takes the most room, to name in a too-large error."""
    sizes = {k: dynamodb_item_size({k: v}) for k, v in item.items() if k != "attributes"}
    sizes.update({f"attributes.{k}": dynamodb_item_size({k: v}) for k, v in item.get("attributes", {}).items()})
    return max(sizes, key=sizes.__getitem__)


# A CSV's own columns; every other column is a custom field (an attribute), kept as text unless its
# header declares a type: "age:number", "vip:boolean".
CSV_COLUMNS = ("email", "first_name", "last_name", "company", "lists", "status", "opted_in_at")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CSV_TYPES = ("text", "number", "boolean")
EXPORT_ONLY_COLUMNS = ("created_at", "updated_at")  # in an export; an import sets them itself


def parse_contacts_csv(text: str) -> tuple[list[dict[str, Any]], list[int], dict[int, str]]:
    """Rows as contact documents, the line each started on (the header is line 1), and row problems
    (by row index). A header problem raises InputInvalid naming the column; csv.Error propagates."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # spreadsheets often start with a BOM
    header = [h.strip() for h in (reader.fieldnames or [])]
    columns: list[tuple[str, str]] = []  # (name, type) per column
    for raw in header:
        name, _, kind = raw.partition(":")
        name, kind = name.strip(), (kind.strip().lower() or "text")
        if name.lower() in CSV_COLUMNS + EXPORT_ONLY_COLUMNS:
            name = name.lower()
        elif not ATTRIBUTE_NAME.match(name):
            raise InputInvalid(
                [{"field": raw or "$", "message": "a custom column is named with letters, digits and '_' (at most 64)"}]
            )
        if kind not in CSV_TYPES or (kind != "text" and name in CSV_COLUMNS + EXPORT_ONLY_COLUMNS):
            raise InputInvalid([{"field": raw, "message": f"a custom column's type is one of {', '.join(CSV_TYPES)}"}])
        columns.append((name, kind))
    names = [n for n, _ in columns]
    if "email" not in names:
        raise InputInvalid([{"field": "email", "message": "the CSV header row must name an email column"}])
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputInvalid(
            [{"field": repeated[0], "message": f"the CSV header names column(s) {', '.join(repeated)} more than once"}]
        )
    custom = [n for n in names if n not in CSV_COLUMNS + EXPORT_ONLY_COLUMNS]
    most = load_schema("contact")["properties"]["attributes"]["maxProperties"]
    if len(custom) > most:
        raise InputInvalid([{"field": custom[most], "message": f"{len(custom)} custom columns; at most {most}"}])
    reader.fieldnames = names
    kinds = dict(columns)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: dict[int, str] = {}
    line = reader.line_num + 1
    for row in reader:
        if row.pop(None, None):
            problems[len(rows)] = f"$: the row has more cells than the header's {len(header)}"
        doc: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for key, value in row.items():
            value = (value or "").strip()
            if not value:
                continue
            if key in EXPORT_ONLY_COLUMNS:
                continue
            if key not in kinds or key in CSV_COLUMNS:
                doc[key] = value
                continue
            typed = _typed(value, kinds[key])
            if typed is None:
                problems.setdefault(len(rows), f"{key}: {value[:40]!r} is not a {kinds[key]}")
            attributes[key] = typed
        if "lists" in doc:
            doc["lists"] = sorted({p.strip() for p in doc["lists"].split(";") if p.strip()})
        if attributes:
            doc["attributes"] = attributes
        rows.append(doc)
        lines.append(line)
        line = reader.line_num + 1
    return rows, lines, problems


def _typed(value: str, kind: str) -> Any:
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "boolean":
        return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(value.lower())
    return value


# What PATCH /contacts/{email} may change.
PATCHABLE = ("first_name", "last_name", "company", "attributes", "lists", "status")


def patch_problems(document: Any) -> list[dict[str, str]]:
    """Why a PATCH document cannot be applied, as {"field", "message"} (the contact schema's rules)."""
    if not isinstance(document, dict) or not document:
        return [{"field": "$", "message": f"must be a JSON object with some of {', '.join(PATCHABLE)}"}]
    problems = [{"field": k, "message": "cannot be changed here"} for k in sorted(set(document) - set(PATCHABLE))]
    if problems:
        return problems
    status = document.get("status")
    if status is not None and status not in (ContactStatus.SUBSCRIBED.value, ContactStatus.UNSUBSCRIBED.value):
        return [{"field": "status", "message": "must be 'subscribed' or 'unsubscribed'"}]
    attributes = document.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        return [{"field": "attributes", "message": "must be an object of custom fields"}]
    # The schema checks the rest: a null attribute (removed) is checked as a placeholder string.
    sample = {k: v for k, v in document.items() if k != "status" and v is not None}
    if attributes:
        sample["attributes"] = {k: ("x" if v is None else v) for k, v in attributes.items()}
    for name in ("first_name", "last_name", "company"):
        if sample.get(name) == "":
            sample.pop(name)
    return schema_errors({"email": "a@b.c", **sample}, "contact")
