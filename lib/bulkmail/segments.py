"""Segments: contacts of some lists that match every condition, checked and evaluated here.

A segment is `{"segment_id", "lists": [...], "match": [{"field", "op", "value"}, ...]}`; conditions are
ANDed. A field is a contact's own (`status`, `email`, `first_name`, ...) or a custom attribute, by its
name (`plan`) or as `attributes.plan`. Values compare by what the condition's value is: a number
compares numerically (a CSV's text "42" counts as 42), an ISO date or date-time as a date, anything
else as text. A value that cannot be read that way does not match (never an error at send time).

A campaign's audience is the same shape without the id: `{"lists": [...], "match": [...]}` (a campaign
to one list is `{"lists": [name], "match": []}`); the fan-out reads the lists' members by index and
keeps those that match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from bulkmail.validation import parse_timestamp

OPS = ("eq", "neq", "in", "contains", "exists", "lt", "gt")
CONTACT_FIELDS = (
    "email",
    "status",
    "first_name",
    "last_name",
    "company",
    "created_at",
    "updated_at",
    "opted_in_at",
)
MAX_LISTS = 10
MAX_CONDITIONS = 20
MAX_IN_VALUES = 100
SEGMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_LIST_NAME_BAD = re.compile(r"[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]")

Audience = dict[str, Any]  # {"lists": [...], "match": [...]}


def segment_problems(document: Any, *, with_id: bool = True) -> list[dict[str, str]]:
    """Why `document` is not a segment (or, without the id, a campaign audience), as {"field", "message"}."""
    if not isinstance(document, dict):
        return [{"field": "$", "message": "a segment must be a JSON object"}]
    problems: list[dict[str, str]] = []
    known = {"segment_id", "lists", "match", "description"} if with_id else {"lists", "match"}
    problems += [{"field": k, "message": "is not a known field"} for k in sorted(set(document) - known)]
    if with_id:
        sid = document.get("segment_id")
        if not isinstance(sid, str) or not SEGMENT_ID.match(sid):
            problems.append({"field": "segment_id", "message": "is required: 1-64 letters, digits, '_' or '-'"})
        if not isinstance(document.get("description", ""), str) or len(document.get("description", "")) > 500:
            problems.append({"field": "description", "message": "must be text of at most 500 characters"})
    lists = document.get("lists")
    if not isinstance(lists, list) or not lists:
        problems.append({"field": "lists", "message": f"is required: 1 to {MAX_LISTS} list names"})
    elif len(lists) > MAX_LISTS:
        problems.append({"field": "lists", "message": f"{len(lists)} lists; at most {MAX_LISTS}"})
    else:
        for i, name in enumerate(lists):
            if not isinstance(name, str) or not 1 <= len(name) <= 100 or _LIST_NAME_BAD.search(name):
                problems.append({"field": f"lists[{i}]", "message": "must be a list name (1-100 characters)"})
        if len(set(map(str, lists))) != len(lists):
            problems.append({"field": "lists", "message": "names a list more than once"})
    match = document.get("match", [])
    if not isinstance(match, list):
        problems.append({"field": "match", "message": "must be an array of {field, op, value} conditions"})
    elif len(match) > MAX_CONDITIONS:
        problems.append({"field": "match", "message": f"{len(match)} conditions; at most {MAX_CONDITIONS}"})
    else:
        for i, condition in enumerate(match):
            problems += [{"field": f"match[{i}].{f}", "message": m} for f, m in _condition_problems(condition)]
    return problems


def _condition_problems(condition: Any) -> list[tuple[str, str]]:
    if not isinstance(condition, dict):
        return [("$", "must be an object {field, op, value}")]
    extra = sorted(set(condition) - {"field", "op", "value"})
    if extra:
        return [(extra[0], "is not a known field")]
    field, op = condition.get("field"), condition.get("op")
    problems = []
    if not isinstance(field, str) or not (field in CONTACT_FIELDS or ATTRIBUTE_NAME.match(_attribute(field))):
        problems.append(("field", f"must be one of {', '.join(CONTACT_FIELDS)} or a custom field's name"))
    if op not in OPS:
        problems.append(("op", f"must be one of {', '.join(OPS)}"))
        return problems
    value = condition.get("value")
    if op == "exists":
        if "value" in condition and not isinstance(value, bool):
            problems.append(("value", "must be true or false (or absent: true)"))
    elif op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES or not all(map(_scalar, value)):
            problems.append(("value", f"must be an array of 1 to {MAX_IN_VALUES} strings, numbers or booleans"))
    elif op in ("lt", "gt"):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) or _when(value) is not None):
            problems.append(("value", "must be a number or an ISO date (2026-01-31) or date-time"))
    elif "value" not in condition or not _scalar(value):
        problems.append(("value", "is required: a string, a number or a boolean"))
    return problems


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and len(value) > 1000)


def _attribute(field: str) -> str:
    return field.removeprefix("attributes.")


def field_value(contact: dict[str, Any], field: str) -> Any:
    """A contact's value of `field` (None when it has none): its own field, else a custom attribute."""
    if field in CONTACT_FIELDS:
        value = contact.get(field)
        return "subscribed" if field == "status" and value is None else value
    return (contact.get("attributes") or {}).get(_attribute(field))


def matches(contact: dict[str, Any], match: list[dict[str, Any]]) -> bool:
    """Whether a stored contact meets every condition."""
    return all(_holds(field_value(contact, c["field"]), c["op"], c.get("value", True)) for c in match)


def _holds(actual: Any, op: str, wanted: Any) -> bool:
    if op == "exists":
        return (actual is not None and actual != "") is bool(wanted)
    if actual is None:
        return op == "neq"
    if op == "in":
        return any(_same(actual, w) for w in wanted)
    if op == "eq":
        return _same(actual, wanted)
    if op == "neq":
        return not _same(actual, wanted)
    if op == "contains":
        if isinstance(actual, (list, tuple, set)):
            return any(_same(a, wanted) for a in actual)
        return str(wanted).lower() in str(actual).lower()
    left, right = _comparable(actual, wanted)
    if left is None or right is None:
        return False
    return bool(left < right if op == "lt" else left > right)


def _same(actual: Any, wanted: Any) -> bool:
    left, right = _comparable(actual, wanted)
    return left is not None and left == right


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any]:
    """Both values in the kind the condition's value is, or (None, None) when `actual` is not of it."""
    if isinstance(wanted, bool):
        if isinstance(actual, bool):
            return actual, wanted
        text = str(actual).strip().lower()
        return ({"true": True, "false": False}.get(text), wanted) if text in ("true", "false") else (None, None)
    if isinstance(wanted, (int, float)):
        try:
            return float(actual), float(wanted)
        except (TypeError, ValueError):
            return None, None
    when = _when(wanted)
    if when is not None:
        return _when(actual), when
    return str(actual), str(wanted)


def _when(value: Any) -> datetime | None:
    """An ISO date (midnight UTC) or an RFC 3339 date-time, or None."""
    if not isinstance(value, str) or not value[:4].isdigit() or len(value) < 10:
        return None
    stamp = parse_timestamp(value)
    if stamp is not None:
        return stamp
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def campaign_audience(campaign: Mapping[str, Any]) -> Audience | None:
    """Whom a campaign is for: its segment's lists and conditions, its one list, or None (every contact)."""
    if campaign.get("audience"):
        return {"lists": list(campaign["audience"]["lists"]), "match": list(campaign["audience"].get("match", []))}
    if campaign.get("list"):
        return {"lists": [campaign["list"]], "match": []}
    return None


def attribute_fields(match: list[dict[str, Any]]) -> list[str]:
    """The custom fields a segment's conditions name."""
    return sorted({_attribute(c["field"]) for c in match if c["field"] not in CONTACT_FIELDS})
