"""Templates and the archive's rendering, on an in-memory template store: the core's decisions."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from bulkmail.archive import archive_key, atom_feed, for_nobody, index_page, is_published, page
from bulkmail.errors import CampaignInvalid, TemplateNotFound
from bulkmail.templates import apply_template, starter_templates, validate_template
from bulkmail.validation import validate_campaign


class FakeTemplates:
    def __init__(self, *versions):
        self.items = {(v["template_id"], v["version"]): v for v in versions}

    def get(self, template_id, version=None):
        found = [v for (t, n), v in self.items.items() if t == template_id and (version is None or n == version)]
        if not found:
            raise TemplateNotFound(template_id, version)
        return max(found, key=lambda v: v["version"])


V1 = {"template_id": "t", "version": 1, "subject": "One", "body_html": "<p>one</p>", "body": "one"}
V2 = {"template_id": "t", "version": 2, "subject": "Two", "body_html": "<p>two</p>"}
STORE = FakeTemplates(V1, V2)
BASE = {"campaign_name": "c", "from_email": "a@example.org"}


def test_the_newest_version_fills_a_campaign_and_is_recorded():
    doc = apply_template({**BASE, "template_id": "t"}, STORE)
    assert (doc["subject"], doc["body_html"], doc["template_version"]) == ("Two", "<p>two</p>", 2)
    assert "body" not in doc
    validate_campaign(doc)  # a valid campaign


def test_a_named_version_and_overrides():
    doc = apply_template({**BASE, "template_id": "t", "template_version": 1, "subject": "Mine"}, STORE)
    assert (doc["subject"], doc["body"], doc["template_version"]) == ("Mine", "one", 1)
    own_html = apply_template({**BASE, "template_id": "t", "template_version": 1, "body_html": "<p>x</p>"}, STORE)
    assert own_html["body_html"] == "<p>x</p>" and "body" not in own_html  # no text describing other HTML


def test_no_template_leaves_the_document_alone():
    assert apply_template(dict(BASE), STORE) == BASE


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"template_id": "absent"}, "template_id"),
        ({"template_id": "t", "template_version": 9}, "template_version"),
        ({"template_id": "t", "template_version": 0}, "template_version"),
        ({"template_id": "t", "template_version": True}, "template_version"),
        ({"template_id": 5}, "template_id"),
        ({"template_version": 1}, "template_version"),
    ],
)
def test_bad_references_name_their_field(doc, field):
    with pytest.raises(CampaignInvalid) as caught:
        apply_template({**BASE, **doc}, STORE)
    assert [e["field"] for e in caught.value.errors] == [field]


def test_a_template_is_validated_as_a_campaign_s_content_is():
    with pytest.raises(CampaignInvalid) as caught:
        validate_template({"template_id": "x", "subject": "{{nope}}", "body_html": "<p>{{ first_name }}</p>"})
    assert [e["field"] for e in caught.value.errors] == ["subject"]
    with pytest.raises(CampaignInvalid) as caught:
        validate_template({"template_id": "x", "subject": "s"})
    assert [e["field"] for e in caught.value.errors] == ["body_html"]


def test_every_starter_is_a_valid_template_with_a_text_part_and_fallbacks():
    starters = starter_templates()
    assert [s["template_id"] for s in starters] == ["newsletter", "announcement", "plain"]
    for starter in starters:
        assert validate_template(starter)["body"].strip()
        rendered = for_nobody({"campaign_name": "News", **starter})
        assert "Hi there," in rendered.text and "Hi there," in (rendered.html or "")
        assert 'role="presentation"' in (rendered.html or "")


ARCHIVED = {
    "campaign_id": "c1",
    "campaign_name": "News",
    "subject": "For {{first_name | default('everyone')}}",
    "body": "Hello {{first_name}}!",
    "archive": True,
    "list": "news",
    "status": "completed",
    "created_at": "2026-12-02T08:00:00+00:00",
}


def test_published_only_when_archived_and_sending():
    assert is_published(ARCHIVED)
    assert not is_published({**ARCHIVED, "archive": False})
    assert not any(is_published({**ARCHIVED, "status": s}) for s in ("scheduled", "queued", "cancelled", "failed"))
    assert archive_key(ARCHIVED) == "news" and archive_key({**ARCHIVED, "list": None}) is None


def test_the_archive_page_has_no_personal_data_and_falls_back_to_defaults():
    html = page(ARCHIVED)  # a text-only campaign: its text, escaped, in a page of its own
    assert "<title>For everyone</title>" in html and "Hello !" in html


def test_index_and_feed_link_each_campaign_relatively():
    html = index_page("a list/with spaces", [ARCHIVED])
    assert 'href="../c1"' in html and 'href="a%20list%2Fwith%20spaces/feed"' in html
    root = ET.fromstring(atom_feed("news", [ARCHIVED], datetime(2026, 12, 2, tzinfo=UTC)))
    atom = "{http://www.w3.org/2005/Atom}"
    entry = root.find(f"{atom}entry")
    assert entry.find(f"{atom}title").text == "News"
    assert entry.find(f"{atom}link").get("href") == "../../c1"
    assert root.find(f"{atom}updated").text == ARCHIVED["created_at"]


def test_an_archived_email_links_to_its_page_and_the_link_follows_the_campaign_s_click_tracking():
    from bulkmail.models import Contact
    from bulkmail.rendering import render
    from bulkmail.tracking import NO_TRACK, Tracking

    campaign = {**ARCHIVED, "body_html": "<html><body><p>Hi</p></body></html>"}
    contact = Contact(email="a@example.org", first_name="Ada")
    url = "https://public.example/v1/archive/c1"
    opens_only = render(campaign, contact, "https://u.example/x", archive_url=url, tracking=Tracking(opens=True))
    body = opens_only.html.split("<body>", 1)[1]  # first in the body, marked so that SES does not wrap it
    assert body.startswith("<p ") and f'<a {NO_TRACK} href="{url}"' in body.split("</p>", 1)[0]
    assert opens_only.text.startswith(f"View this email in your browser: {url}\n\n")
    not_archived = render({**campaign, "archive": False}, contact, "https://u.example/x", archive_url=url)
    assert url not in not_archived.html and url not in not_archived.text
