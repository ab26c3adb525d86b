"""The templates pages and the public archive in a real browser against a real `bulkmail serve`:
a starter saved and edited into versions (errors beside their fields), previewed for a contact, a
campaign started from it, and that campaign's archive page, its list's index and feed."""

import json
import re

from playwright.sync_api import expect

from tests.e2e.test_dashboard import browser, page, shot, stack  # noqa: F401 — the same fixtures
from tests.e2e.test_serve import http


def api(served, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    return http(method, f"{served['api']}{path}", data, {"Content-Type": "application/json"})


def test_a_starter_saved_edited_into_versions_previewed_and_a_campaign_started_from_it(page, stack):  # noqa: F811
    contacts = [{"email": f"t{i}@example.org", "first_name": f"T{i}", "lists": ["tpl"]} for i in range(3)]
    assert api(stack, "POST", "/contacts", {"contacts": contacts})[0] == 200

    page.goto("/#/templates")
    expect(page.get_by_text("No stored templates yet.")).to_be_visible()
    starter = page.locator("[data-starter=newsletter]")
    expect(starter).to_contain_text("Newsletter")
    shot(page, "templates")
    starter.get_by_role("button", name="Save as template").click()
    page.wait_for_url("**/#/templates/newsletter")
    expect(page.locator("[data-version]")).to_have_count(1)

    page.get_by_label("Subject").fill("News for {{frist_name}}")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#field-subject-error")).to_contain_text("unknown placeholder {{frist_name}}")
    expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Subject").fill("News for {{first_name}}")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Saved version 2.")).to_be_visible()
    expect(page.locator("[data-version]")).to_have_count(2)
    expect(page.locator("[data-version='2']")).to_contain_text("News for {{first_name}}")

    page.get_by_label("Preview for").fill("t1@example.org")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("[data-preview=subject]")).to_have_text("News for T1")
    expect(page.locator("[data-preview=text]")).to_contain_text("Hi T1,")
    shot(page, "template-editor")

    page.get_by_role("link", name="Templates", exact=True).click()
    row = page.locator("tr[data-template=newsletter]")
    expect(row).to_contain_text("v2")
    row.get_by_role("link", name="New campaign").click()
    page.wait_for_url("**/#/new/from/newsletter")
    expect(page.get_by_label("Subject")).to_have_value("News for {{first_name}}")
    expect(page.get_by_label("HTML body (optional)")).to_have_value(re.compile('role="presentation"'))
    page.get_by_label("Name", exact=True).fill("From the newsletter template")
    page.get_by_label("From address").fill("news@example.com")
    expect(page.locator("option[value='list:tpl']")).to_have_count(1)  # the lists load after the form
    page.get_by_label("Audience").select_option("list:tpl")
    page.get_by_label("Publish in the public archive").check()
    expect(page.locator("[data-preview=subject]")).to_have_text("News for Alex")
    shot(page, "new-campaign-from-template")
    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/#/campaigns/campaign_*")
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    campaign_id = page.url.rsplit("/", 1)[-1]
    record = api(stack, "GET", f"/campaigns/{campaign_id}")[1]
    assert (record["template_id"], record["template_version"]) == ("newsletter", 2)
    assert record["archive"] is True
    # Archived: each email links to its page, which shows the template's fallbacks, not the recipient.
    emails = list((stack["dir"] / "outbox" / campaign_id).glob("*.eml"))
    assert len(emails) == 3 and all(f"/archive/{campaign_id}".encode() in e.read_bytes() for e in emails)
    page.goto(f"/archive/{campaign_id}")
    expect(page.get_by_text("Hi there,")).to_be_visible()
    assert "T1" not in page.content()


def test_the_archive_pages_of_an_archived_campaign_and_its_list(page, stack):  # noqa: F811
    contacts = [{"email": f"a{i}@example.org", "first_name": f"Reader{i}", "lists": ["weekly"]} for i in range(2)]
    assert api(stack, "POST", "/contacts", {"contacts": contacts})[0] == 200
    campaign = {
        "campaign_id": "weekly_1",
        "campaign_name": "Weekly one",
        "subject": "Weekly for {{first_name | default('all of you')}}",
        "body_html": "<html><body><h1>Weekly</h1><p>Hello {{first_name | default('reader')}}.</p></body></html>",
        "from_email": "news@example.com",
        "list": "weekly",
        "archive": True,
    }
    assert api(stack, "POST", "/campaigns", campaign)[0] == 202
    page.goto("/#/campaigns/weekly_1")
    expect(page.locator(".page-head .badge")).to_have_text("completed")

    page.goto("/archive/lists/weekly")
    expect(page.get_by_role("heading", name="Archive: weekly")).to_be_visible()
    link = page.get_by_role("link", name="Weekly one")
    expect(link).to_be_visible()
    shot(page, "archive-index")
    link.click()
    page.wait_for_url("**/archive/weekly_1")
    expect(page.get_by_role("heading", name="Weekly")).to_be_visible()
    expect(page.get_by_text("Hello reader.")).to_be_visible()
    assert "Reader0" not in page.content() and "unsubscribe" not in page.content().lower()
    shot(page, "archive-campaign")

    feed = page.request.get("/archive/lists/weekly/feed")
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
    assert "urn:bulkmail:campaign:weekly_1" in feed.text()
    assert page.request.get("/archive/not_there").status == 404
