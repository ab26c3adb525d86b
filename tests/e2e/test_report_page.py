"""The campaign report in a real browser: a tracked campaign's open and click, as a recipient made them,
reach the report page linked from the campaign page (Debian's chromium, driven by Playwright)."""

import json

from playwright.sync_api import expect

from tests.e2e.test_dashboard import browser, page, shot, stack  # noqa: F401 — fixtures
from tests.e2e.test_serve import http
from tests.e2e.test_tracking import POST_URL, RECIPIENTS, _html_of, _open_and_click, _send


def test_the_report_page_shows_opens_clicks_and_links(page, stack):  # noqa: F811 — fixtures
    api, workdir = stack["api"], stack["dir"]
    contacts = [{"email": e, "first_name": "Reader"} for e in RECIPIENTS]
    body = json.dumps({"contacts": contacts}).encode()
    assert http("POST", f"{api}/contacts", body, {"Content-Type": "application/json"})[0] == 200
    campaign_id = _send(api, workdir, "Reported", track_opens=True, track_clicks=True)
    _open_and_click(api, _html_of(workdir, campaign_id, RECIPIENTS[0]))

    page.goto(f"/#/campaigns/{campaign_id}")
    page.get_by_role("link", name="Opens, clicks and links: the report →").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Report: Reported")
    for key, value in {"sent": "2", "opens_unique": "1", "opens": "2", "clicks_unique": "1", "clicks": "2"}.items():
        expect(page.locator(f'[data-report="{key}"]')).to_have_text(value)
    expect(page.locator('[data-report="delivered"]')).to_have_text("2")
    links = page.get_by_role("table", name="Clicks per link")
    expect(links.get_by_role("row").nth(1)).to_contain_text(POST_URL)
    expect(links.get_by_role("row").nth(1)).to_contain_text("1")
    expect(page.get_by_text("open rate 50.0 %")).to_be_visible()
    csv = page.get_by_role("link", name="Download CSV")
    expect(csv).to_have_attribute("href", f"/campaigns/{campaign_id}/report?format=csv")
    shot(page, "report")

    page.goto("/#/campaigns/no-such-campaign/report")
    expect(page.get_by_role("alert")).to_contain_text("not found")
