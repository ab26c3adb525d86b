"""Who a new campaign would reach, checked before it starts: never a silent campaign to nobody."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulkmail.adapters.contacts import ContactStore
from bulkmail.errors import ConfigurationError

NAMED_LISTS = 20  # in the answer to a misspelt list: enough to spot the right one


def audience_problems(campaign: Mapping[str, Any], contacts: ContactStore) -> list[dict[str, str]]:
    """Why `campaign` would reach nobody (each problem as {"field", "message"}), or [] when someone is there.

    A list is known from the registry (one GetItem); whether anyone subscribed is on it is a scan that
    stops at the first recipient: a page for any real audience, the whole table only when it is empty.
    """
    if contacts.lists is None:
        raise ConfigurationError("environment variable LISTS_TABLE is required to check a campaign's list")
    name = campaign.get("list")
    if name is not None and not contacts.lists.exists(name):
        known, more = contacts.lists.names(NAMED_LISTS)
        hint = (
            f"the known lists are {', '.join(known)}{', …' if more else ''}"
            if known
            else "no contact is on any list yet (import contacts with a lists column)"
        )
        return [{"field": "list", "message": f"there is no list {name!r}: {hint}"}]
    if contacts.has_recipient(name):
        return []
    if name is not None:
        return [
            {
                "field": "list",
                "message": f"list {name!r} has no subscribed contact (each one unsubscribed, "
                f"bounced, complained or was deleted): the campaign would reach nobody",
            }
        ]
    return [
        {
            "field": "list",
            "message": "there is no subscribed contact: import contacts first "
            "(POST /contacts/import, or bulkmail contacts import FILE)",
        }
    ]
