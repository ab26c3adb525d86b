"""The audience's use cases behind the HTTP routes and the CLI: lists, segments, browsing and exporting
contacts, a person's data (GDPR export and erasure).

Each raises InputInvalid (4xx naming the field) for what a user sent wrong, and returns plain data.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from bulkmail.adapters import dynamo
from bulkmail.adapters.contacts import ContactStore, erase_deliveries, personal_deliveries
from bulkmail.adapters.lists import AudienceIndex, ListRegistry
from bulkmail.contact_import import patch_problems
from bulkmail.errors import ConfigurationError, InputInvalid
from bulkmail.models import ContactStatus
from bulkmail.ports import Cursor
from bulkmail.segments import CONTACT_FIELDS, field_value, segment_problems

LIST_ID = re.compile(r"^[^\u0000-\u001f\u007f\u0085\u2028\u2029]{1,100}$")
STATUSES = tuple(s.value for s in ContactStatus)
EXPORT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "lists",
    "status",
    "opted_in_at",
    "created_at",
    "updated_at",
)
MAX_EXPORT_BYTES = 5 * 1024 * 1024  # under Lambda's 6 MB response


def _registry(contacts: ContactStore) -> ListRegistry:
    if contacts.lists is None:
        raise ConfigurationError("environment variable LISTS_TABLE is required")
    return contacts.lists


def _index(contacts: ContactStore) -> AudienceIndex:
    if contacts.index is None:
        raise ConfigurationError("environment variable AUDIENCE_TABLE is required")
    return contacts.index


# --- lists ------------------------------------------------------------------------------------------
def create_list(contacts: ContactStore, document: dict[str, Any]) -> dict[str, Any]:
    problems = [
        {"field": k, "message": "is not a known field"}
        for k in sorted(set(document) - {"list_id", "name", "description"})
    ]
    list_id = document.get("list_id")
    if not isinstance(list_id, str) or not LIST_ID.match(list_id):
        problems.append({"field": "list_id", "message": "is required: 1-100 characters, no line breaks"})
    for field, most in (("name", 200), ("description", 1000)):
        value = document.get(field, "")
        if not isinstance(value, str) or len(value) > most or ("\n" in value and field == "name"):
            problems.append({"field": field, "message": f"must be text of at most {most} characters"})
    if problems:
        raise InputInvalid(problems)
    assert isinstance(list_id, str)
    if not _registry(contacts).create(list_id, document.get("name") or list_id, document.get("description", "")):
        raise InputInvalid([{"field": "list_id", "message": f"list {list_id!r} exists"}], status=409)
    return describe_list(contacts, list_id)


def describe_list(contacts: ContactStore, list_id: str) -> dict[str, Any]:
    """A list with its member counts: members by index (a COUNT Query), subscribed by reading them."""
    item = _registry(contacts).get(list_id)
    if item is None:
        raise InputInvalid([{"field": "list_id", "message": f"there is no list {list_id!r}"}], status=404)
    return _summary(contacts, item)


def _summary(contacts: ContactStore, item: dict[str, Any]) -> dict[str, Any]:
    name = str(item["list_name"])
    return {
        "list_id": name,
        "name": item.get("name") or name,
        "description": item.get("description", ""),
        "created_at": item.get("created_at"),
        "members": _index(contacts).count_members(name),
        "subscribed": contacts.count_recipients({"lists": [name], "match": []}),
    }


def all_lists(contacts: ContactStore) -> list[dict[str, Any]]:
    return [_summary(contacts, item) for item in _registry(contacts).all()]


def delete_list(contacts: ContactStore, list_id: str, now_iso: str) -> None:
    """Take everyone off the list (their other lists stay), then forget the list."""
    registry = _registry(contacts)
    if registry.get(list_id) is None:
        raise InputInvalid([{"field": "list_id", "message": f"there is no list {list_id!r}"}], status=404)
    cursor: Cursor | None = None
    for _ in range(1_000_000):
        emails, cursor = _index(contacts).members_page(list_id, cursor, 100)
        for email in emails:
            item = contacts.get_item(email)
            if item is not None and list_id in (item.get("lists") or ()):
                contacts.update(email, {"lists": [n for n in item["lists"] if n != list_id]}, now_iso)
            else:
                _index(contacts).remove_members([(list_id, email)])
        if cursor is None:
            break
    registry.remove(list_id)


# --- segments ---------------------------------------------------------------------------------------
def create_segment(contacts: ContactStore, document: dict[str, Any]) -> dict[str, Any]:
    problems = segment_problems(document)
    if problems:
        raise InputInvalid(problems)
    unknown = [n for n in document["lists"] if not _registry(contacts).exists(n)]
    if unknown:
        raise InputInvalid([{"field": "lists", "message": f"there is no list {unknown[0]!r}"}], status=422)
    definition: dict[str, Any] = {
        k: document[k] for k in ("segment_id", "lists", "match", "description") if k in document
    }
    definition.setdefault("match", [])
    if not _index(contacts).create_segment(definition):
        raise InputInvalid([{"field": "segment_id", "message": f"segment {document['segment_id']!r} exists"}], 409)
    return get_segment(contacts, document["segment_id"])


def get_segment(contacts: ContactStore, segment_id: str) -> dict[str, Any]:
    segment = _index(contacts).segment(segment_id)
    if segment is None:
        raise InputInvalid([{"field": "segment_id", "message": f"there is no segment {segment_id!r}"}], status=404)
    return segment


def all_segments(contacts: ContactStore) -> list[dict[str, Any]]:
    return _index(contacts).segments()


def count_segment(contacts: ContactStore, segment_id: str) -> dict[str, Any]:
    """How many subscribed contacts the segment matches now, and the read units that cost."""
    segment = get_segment(contacts, segment_id)
    before = contacts.read_units
    count = contacts.count_recipients({"lists": segment["lists"], "match": segment.get("match", [])})
    return {"segment_id": segment_id, "count": count, "read_units": contacts.read_units - before}


def delete_segment(contacts: ContactStore, segment_id: str) -> None:
    if not _index(contacts).delete_segment(segment_id):
        raise InputInvalid([{"field": "segment_id", "message": f"there is no segment {segment_id!r}"}], status=404)


# --- contacts ---------------------------------------------------------------------------------------
def browse(
    contacts: ContactStore,
    *,
    list_name: str | None,
    status: str | None,
    field: str | None,
    value: str | None,
    cursor: Cursor | None,
    limit: int,
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """A page of contacts (of a list, by index), filtered by status and one field's value (as text)."""
    if status is not None and status not in STATUSES:
        raise InputInvalid([{"field": "status", "message": f"must be one of {', '.join(STATUSES)}"}])
    if (field is None) != (value is None):
        raise InputInvalid([{"field": "field" if field is None else "value", "message": "field and value go together"}])

    def keep(item: dict[str, Any]) -> bool:
        if status is not None and item.get("status", "subscribed") != status:
            return False
        return field is None or str(field_value(item, field)) == value

    if list_name is not None and not _registry(contacts).exists(list_name):
        raise InputInvalid([{"field": "list", "message": f"there is no list {list_name!r}"}], status=404)
    items, next_cursor = contacts.contacts_page(list_name, cursor, limit, keep)
    return [contact_json(i) for i in items], next_cursor


def contact_json(item: dict[str, Any]) -> dict[str, Any]:
    """A stored contact as the API shows it (the contract: lists and attributes always present)."""
    return {
        "status": "subscribed",
        **item,
        "lists": item.get("lists") or [],
        "attributes": item.get("attributes") or {},
    }


def patch(contacts: ContactStore, email: str, document: dict[str, Any], now_iso: str) -> dict[str, Any]:
    problems = patch_problems(document)
    if problems:
        raise InputInvalid(problems)
    current = contacts.get_item(email)
    if current is None:
        raise InputInvalid([{"field": "email", "message": f"Contact {email} not found"}], status=404)
    if document.get("status") == "subscribed" and current.get("status") in ("bounced", "complained"):
        raise InputInvalid(
            [
                {
                    "field": "status",
                    "message": f"the address {current['status']}: only a new opt-in (an import "
                    "with opted_in_at) subscribes it again",
                }
            ],
            status=409,
        )
    updated = contacts.update(email, document, now_iso)
    if updated is None:
        raise InputInvalid([{"field": "email", "message": f"Contact {email} not found"}], status=404)
    return contact_json(updated)


def export_csv(contacts: ContactStore, list_name: str | None) -> str:
    """Every contact (of a list) as CSV: the contact's fields, then one column per custom field."""
    if list_name is not None and not _registry(contacts).exists(list_name):
        raise InputInvalid([{"field": "list", "message": f"there is no list {list_name!r}"}], status=404)
    items: list[dict[str, Any]] = []
    cursor: Cursor | None = None
    size = 0
    for _ in range(1_000_000):
        page, cursor = contacts.contacts_page(list_name, cursor, 1000, lambda _item: True)
        items += page
        size += sum(len(str(i)) for i in page)
        if size > MAX_EXPORT_BYTES:
            raise InputInvalid(
                [
                    {
                        "field": "list",
                        "message": f"more than {MAX_EXPORT_BYTES} bytes to export: export one list at a time",
                    }
                ],
                status=413,
            )
        if cursor is None:
            break
    attributes = sorted({k for i in items for k in i.get("attributes") or {}} - set(CONTACT_FIELDS) - {"lists"})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*EXPORT_COLUMNS, *attributes])
    for item in sorted(items, key=lambda i: str(i["email"])):
        row = [";".join(item.get("lists") or ()) if c == "lists" else item.get(c, "") for c in EXPORT_COLUMNS]
        if not row[EXPORT_COLUMNS.index("status")]:
            row[EXPORT_COLUMNS.index("status")] = "subscribed"
        values = item.get("attributes") or {}
        row += [_cell(values.get(a)) for a in attributes]
        writer.writerow([_safe(str(v)) for v in row])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def personal_export(contacts: ContactStore, deliveries_table: str, email: str) -> dict[str, Any]:
    """Everything held about an address: the contact (attributes, consent), its suppression, its deliveries."""
    item = contacts.table.get_item(Key={"email": email}, ConsistentRead=True).get("Item")
    deliveries = personal_deliveries(deliveries_table, email)
    if item is None and not deliveries:
        raise InputInvalid([{"field": "email", "message": f"nothing is held about {email}"}], status=404)
    contact = dynamo.plain(item) if item else None
    return {
        "email": email,
        "contact": contact_json(contact) if contact else None,
        "consent": (contact or {}).get("consent"),
        "deliveries": deliveries,
    }


def erase(contacts: ContactStore, deliveries_table: str, email: str, now_iso: str) -> None:
    """Remove an address's personal data everywhere (contact, memberships, delivery rows, which keep
    their outcome under the address's hash) and keep only a hashed suppression. Idempotent: an address
    nothing is held about gets its hashed suppression all the same (it asked not to be mailed)."""
    contacts.erase(email, now_iso)
    erase_deliveries(deliveries_table, email)
