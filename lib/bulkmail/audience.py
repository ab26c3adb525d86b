"""Who a new campaign would reach, checked before it starts: never a silent campaign to nobody.

A campaign names a list, a segment, or neither (every subscribed contact). A segment is resolved when
the campaign is created: its lists and conditions are copied into the campaign as `audience`, so the
campaign sends to what the segment said when it was started, even if the segment changes later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulkmail.adapters.contacts import ContactStore, suppress_contact
from bulkmail.errors import CampaignNotFound, ConfigurationError, InputInvalid
from bulkmail.models import Campaign, ContactStatus
from bulkmail.ports import Campaigns
from bulkmail.segments import campaign_audience

NAMED_LISTS = 20  # in the answer to a misspelt list: enough to spot the right one


def with_segment(campaign: Campaign, contacts: ContactStore) -> Campaign:
    """The campaign with its segment's audience copied in (unchanged without a segment); InputInvalid
    (400 a list and a segment, 422 an unknown segment) otherwise."""
    segment_id = campaign.get("segment")
    if segment_id is None:
        return campaign
    if campaign.get("list") is not None:
        raise InputInvalid([{"field": "segment", "message": "a campaign names a list or a segment, not both"}])
    if contacts.index is None:
        raise ConfigurationError("environment variable AUDIENCE_TABLE is required to read a segment")
    segment = contacts.index.segment(segment_id)
    if segment is None:
        known = [s["segment_id"] for s in contacts.index.segments()][:NAMED_LISTS]
        hint = f"the segments are {', '.join(known)}" if known else "no segment exists yet (POST /segments)"
        raise InputInvalid([{"field": "segment", "message": f"there is no segment {segment_id!r}: {hint}"}], status=422)
    return {**campaign, "audience": {"lists": segment["lists"], "match": segment.get("match", [])}}


def audience_problems(campaign: Mapping[str, Any], contacts: ContactStore) -> list[dict[str, str]]:
    """Why `campaign` would reach nobody (each problem as {"field", "message"}), or [] when someone is there.

    A list is known from the registry (one GetItem); whether anyone subscribed is on it is read from
    the list's members by index and stops at the first recipient; every contact (no list) is a scan
    that stops at the first recipient: a page for any real audience, the whole table only when empty.
    """
    if contacts.lists is None:
        raise ConfigurationError("environment variable LISTS_TABLE is required to check a campaign's list")
    audience = campaign_audience(campaign)
    field = "segment" if campaign.get("segment") else "list"
    for name in audience["lists"] if audience else ():
        if not contacts.lists.exists(name):
            known, more = contacts.lists.names(NAMED_LISTS)
            hint = (
                f"the known lists are {', '.join(known)}{', …' if more else ''}"
                if known
                else "no contact is on any list yet (import contacts with a lists column)"
            )
            return [{"field": field, "message": f"there is no list {name!r}: {hint}"}]
    if contacts.has_recipient(audience):
        return []
    if campaign.get("segment"):
        return [
            {
                "field": "segment",
                "message": f"segment {campaign['segment']!r} matches no subscribed contact: "
                "the campaign would reach nobody",
            }
        ]
    if audience is not None:
        return [
            {
                "field": "list",
                "message": f"list {audience['lists'][0]!r} has no subscribed contact (each one unsubscribed, "
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


def one_click_unsubscribe(
    contacts: ContactStore, campaigns: Campaigns, campaign_id: str, email: str, now_iso: str
) -> str:
    """What the link in a campaign's email does: with `unsubscribe_scope` "list" (the default) the
    contact leaves the campaign's lists and stays on its others; with "all", or when no other list
    would remain (or the campaign named none), the address is unsubscribed. Returns what happened:
    "left-lists", or the address's status afterwards."""
    try:
        campaign = campaigns.head(campaign_id)  # the record: its lists (no counts, no content)
    except CampaignNotFound:
        campaign = {}
    lists = (campaign_audience(campaign) or {}).get("lists", [])
    if campaign.get("unsubscribe_scope", "list") == "list" and lists:
        item = contacts.get_item(email)
        if item is not None and item.get("status", ContactStatus.SUBSCRIBED.value) == ContactStatus.SUBSCRIBED.value:
            remaining = [name for name in item.get("lists") or () if name not in lists]
            if remaining and contacts.update(email, {"lists": remaining}, now_iso) is not None:
                return "left-lists"
    details = {"reason": "one-click unsubscribe", "campaign_id": campaign_id}
    return suppress_contact(contacts, email, ContactStatus.UNSUBSCRIBED.value, now_iso, details)
