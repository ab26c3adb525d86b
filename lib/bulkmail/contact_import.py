"""Contacts as users send them (API, CSV, CLI), checked against the contact schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bulkmail.models import DYNAMODB_ITEM_BYTES, dynamodb_item_size
from bulkmail.validation import email_problem, parse_timestamp, schema_errors

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
