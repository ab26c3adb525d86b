"""The public archive through the real public API function (UnsubscribeFunction): an archived
campaign's page without personal data, the "view in browser" link in its emails, a list's index and
its Atom feed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bulkmail_local.runtime.apigw import ApiGateway
from bulkmail_local.runtime.stack import LOCAL_PUBLIC_URL
from tests.conftest import people

ATOM = "{http://www.w3.org/2005/Atom}"
ARCHIVED = {
    "campaign_name": "Spring news",
    "subject": "Spring news for {{first_name | default('our readers')}}",
    "body_html": "<html><body><p>Hello {{first_name | default('reader')}} ({{email}}), "
    "spring is here at {{company}}.</p></body></html>",
    "body": "Hello {{first_name | default('reader')}} ({{email}}), spring is here.",
    "archive": True,
    "list": "news",
}


@pytest.fixture
def public(harness):
    return ApiGateway(next(f for f in harness.rt.functions.values() if f.logical_id == "UnsubscribeFunction"))


def send(harness, campaign_id, **campaign):
    recipients = [p["email"] for p in people(2, lists=["news"])]
    harness.add_campaign(len(recipients), campaign_id=campaign_id, **campaign)
    harness.enqueue(campaign_id, "b1", recipients)
    harness.drain()


def test_an_archived_campaign_is_a_public_page_without_personal_data(harness, public):
    harness.add_contacts(people(2, lists=["news"]))
    assert public.request("GET", "/archive/spring").status == 404  # not yet: nothing stored
    harness.add_campaign(2, campaign_id="spring", **ARCHIVED)
    assert public.request("GET", "/archive/spring").status == 404  # queued, not sending yet: not public
    harness.enqueue("spring", "b1", [p["email"] for p in people(2)])
    harness.drain()

    r = public.request("GET", "/archive/spring")
    assert r.status == 200, r.body
    page = r.body.decode()
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Hello reader ()" in page and "spring is here at ." in page
    for personal in ("person0", "First0", "Smith", "/unsubscribe/", "View this email in your browser"):
        assert personal not in page, personal

    # Its emails link to that page, in both parts; they are the recipient's own, as before.
    url = f"{LOCAL_PUBLIC_URL}/archive/spring"
    for message in harness.sent_messages("spring"):
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert f'href="{url}"' in html and "View this email in your browser" in html
        assert text.startswith(f"View this email in your browser: {url}")
        assert "Hello First" in text


def test_a_campaign_not_archived_is_not_public_and_its_emails_have_no_link(harness, public):
    harness.add_contacts(people(2, lists=["news"]))
    send(harness, "private", **{**ARCHIVED, "archive": False})
    assert public.request("GET", "/archive/private").status == 404
    assert public.request("GET", "/archive/absent").status == 404
    # Ids no campaign can have, however long: a 404, never an error from DynamoDB's key limits.
    for path in (
        "/archive/" + "x" * 3000,
        "/archive/a%20b",
        "/archive/lists/" + "n" * 3000,
        "/archive/lists/" + "n" * 3000 + "/feed",
    ):
        assert public.request("GET", path).status == 404, path[:40]
    for message in harness.sent_messages("private"):
        assert "/archive/" not in message.get_body(("plain",)).get_content()


def test_a_list_has_an_index_and_an_atom_feed_of_its_archived_campaigns(harness, public):
    harness.add_contacts(people(2, lists=["news"]))
    send(harness, "first", **ARCHIVED)
    send(harness, "second", **{**ARCHIVED, "campaign_name": "Summer news"})
    send(harness, "elsewhere", **{**ARCHIVED, "list": "other"})
    send(harness, "unlisted", **{**ARCHIVED, "archive": False})
    harness.add_campaign(2, campaign_id="scheduled_later", **ARCHIVED)  # queued: not on the index yet

    index = public.request("GET", "/archive/lists/news")
    assert index.status == 200, index.body
    html = index.body.decode()
    assert 'href="../first"' in html and 'href="../second"' in html
    assert ">Spring news<" in html and ">Summer news<" in html, html  # by name (the subject is per recipient)
    for absent in ("elsewhere", "unlisted", "scheduled_later"):
        assert absent not in html

    feed = public.request("GET", "/archive/lists/news/feed")
    assert feed.status == 200 and feed.headers["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.body)
    assert root.tag == f"{ATOM}feed" and root.find(f"{ATOM}id").text == "urn:bulkmail:archive:news"
    entries = root.findall(f"{ATOM}entry")
    assert {e.find(f"{ATOM}id").text for e in entries} == {
        "urn:bulkmail:campaign:first",
        "urn:bulkmail:campaign:second",
    }
    assert all(e.find(f"{ATOM}link").get("href").startswith("../../") for e in entries)
    assert all(e.find(f"{ATOM}updated").text for e in entries)

    empty = public.request("GET", "/archive/lists/nobody")
    assert empty.status == 200 and "Nothing published yet" in empty.body.decode()
