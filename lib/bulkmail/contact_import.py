"""Contacts as users send them (API, CSV, CLI), checked against the contact schema."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from bulkmail.validation import is_email, schema_errors


def normalise_contacts(documents: Iterable[Any], *, now: datetime | None = None
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items to store, rejected) — every rejected one with its index, email and the reason."""
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    items, rejected = [], []
    for index, doc in enumerate(documents):
        errors = schema_errors(doc, "contact") if isinstance(doc, dict) else [
            {"field": "$", "message": "a contact must be a JSON object"}]
        email = doc.get("email") if isinstance(doc, dict) else None
        if not errors and not is_email(email):
            errors = [{"field": "email", "message": f"{email!r} is not a valid email address"}]
        if errors:
            rejected.append({"index": index, "email": email if isinstance(email, str) else None,
                             "error": "; ".join(f"{e['field']}: {e['message']}" for e in errors)})
            continue
        item = {k: v for k, v in doc.items() if v not in ("", None, [], {})}
        item["email"] = email.strip().lower()
        item.setdefault("status", "subscribed")
        item["created_at"] = stamp
        items.append(item)
    return items, rejected
