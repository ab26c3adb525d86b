"""The one-click unsubscribe leaves the campaign's list or all lists, as the campaign says (issue 15)."""

import pytest

from tests.conftest import people
from tests.integration.test_unsubscribe import api_event, unsubscribe_fn


def token_for(h, campaign_id, address):
    message = next(m for m in h.sent_messages(campaign_id) if m["To"].addresses[0].addr_spec == address)
    return str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]


def members(h, name):
    rows = h.rt.table("AudienceTable").query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"list#{name}"}
    )["Items"]
    return sorted(r["sk"] for r in rows)


@pytest.mark.parametrize(
    ("scope", "lists", "status", "left"),
    [
        ("list", ["news", "beta"], "subscribed", ["beta"]),  # leaves news, stays on beta
        ("all", ["news", "beta"], "unsubscribed", ["beta", "news"]),
        ("list", ["news"], "unsubscribed", ["news"]),  # no other list would remain: unsubscribed
    ],
)
def test_scope_decides_what_the_link_leaves(harness, scope, lists, status, left):
    h = harness
    h.add_contacts(people(1, lists=lists))
    c = h.add_campaign(total=1, list="news", unsubscribe_scope=scope)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org"])
    h.drain()
    token = token_for(h, c["campaign_id"], "person0@example.org")
    for _ in range(2):  # a second click changes nothing more
        response = unsubscribe_fn(h).invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))
        assert response["statusCode"] == 200
    contact = h.contacts.get("person0@example.org")
    assert (contact.status, list(contact.lists)) == (status, left)
    assert members(h, "news") == ([] if scope == "list" and len(lists) > 1 else ["person0@example.org"])
