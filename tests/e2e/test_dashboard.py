"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a real `bulkmail serve`.

Screenshots go to outbox/screenshots/ (ignored by git) for a person to look at; docs/dashboard.png is
one of them, copied by hand.
"""

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.test_serve import serve_process

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("dashboard")

CHROMIUM = "/usr/bin/chromium"
# No sandbox (CI runs as root); nothing that reaches beyond loopback (this machine's network is closed).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "outbox" / "screenshots"
TIMEOUT_MS = 90_000  # a campaign on the embedded runtime completes in seconds; CI's 2 cores are shared
expect.set_options(timeout=TIMEOUT_MS)
RECIPIENTS, RATE = 200, 200  # four messages of 50; one worker paces them at RATE / WorkerMaxConcurrency


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with serve_process(tmp_path_factory.mktemp("dashboard")) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing browser there is a broken build, not a skip
        pytest.skip(message)
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh, empty profile (user-data-dir) of its own.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=stack["api"])
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    problems = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert problems == [], f"JavaScript errors on the page: {problems}"


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def import_csv(page, tmp_path, text):
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(text)
    page.goto("/#/contacts")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Import").click()


def fill_campaign(page, *, name, sender, subject, body):
    page.goto("/#/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("From address").fill(sender)
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Text body").fill(body)


def test_csv_upload_shows_each_rejected_row_with_its_line_and_reason(page, tmp_path):
    import_csv(
        page,
        tmp_path,
        "email,first_name,last_name,company,lists\n"
        + "".join(f"p{i}@example.org,P{i},L{i},Acme,news\n" for i in range(6))
        + "not-an-email,Bad,Row,,news\n"
        + "p6@example.org,P6,L6,Acme,news,surplus\n",
    )
    expect(page.get_by_text("Imported 6 contacts.")).to_be_visible()
    rows = page.locator("table.rejected tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td")).to_have_text(
        [
            "8",
            "not-an-email",
            "email: 'not-an-email' is not a valid email address: An email address must have an @-sign.",
        ]
    )
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("9")
    expect(rows.nth(1).locator("td").nth(2)).to_contain_text("more cells than the header")

    page.get_by_role("search").get_by_label("Email").fill("p3@example.org")
    page.get_by_role("button", name="Find contact").click()
    expect(page.locator(".contact-card")).to_contain_text("P3 L3")
    expect(page.locator(".contact-card .badge")).to_have_text("subscribed")
    shot(page, "contacts")

    page.get_by_role("search").get_by_label("Email").fill("nobody@example.org")  # the API's 404 names "email"
    page.keyboard.press("Tab")  # by keyboard, focus in sight
    assert page.evaluate("document.activeElement.textContent") == "Find contact"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.locator("#field-email-error")).to_have_text("Contact nobody@example.org not found")

    import_csv(page, tmp_path, "mail,first_name\nx@example.org,X\n")  # a 400 about the file itself
    expect(page.locator("#field-file-error")).to_contain_text("must name an email column")


def test_a_campaign_from_the_form_reaches_completed_with_field_errors_beside_their_fields(page, stack, tmp_path):
    import_csv(
        page,
        tmp_path,
        "email,first_name,last_name,company,lists\n"
        + "".join(f"n{i}@example.org,N{i},L{i},Acme,november\n" for i in range(RECIPIENTS)),
    )
    expect(page.get_by_text(f"Imported {RECIPIENTS} contacts.")).to_be_visible()

    fill_campaign(
        page,
        name="November news",
        sender="news@example.com",
        subject="Hi {{frist_name}}",
        body="Dear {{first_name}},\n\nthe November news.",
    )
    page.get_by_label("Audience").select_option("list:november")
    subject_error = page.locator("#field-subject-error")  # live preview: a 400 naming "subject"
    expect(subject_error).to_contain_text("unknown placeholder {{frist_name}}")
    expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#field-body-error")).to_be_empty()
    shot(page, "new-campaign-field-error")

    page.get_by_label("Subject").fill("Hi {{first_name}}")
    expect(subject_error).to_be_empty()
    page.get_by_label("Preview for contact").fill("n2@example.org")
    page.get_by_label("Preview for contact").press("Enter")
    expect(page.locator("[data-preview=subject]")).to_have_text("Hi N2")
    expect(page.locator("[data-preview=text]")).to_contain_text("Dear N2,")

    page.get_by_label("Send a test to").fill("me@example.com, not an address")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#field-to-error")).to_contain_text("'not an address' is not a valid email address")
    page.get_by_label("Send a test to").fill("me@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test sent to me@example.com.")).to_be_visible()
    shot(page, "new-campaign")

    past = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Send at (optional)").fill(past)
    page.get_by_role("button", name="Schedule campaign").click()
    expect(page.locator("#field-send_at-error")).to_contain_text("is in the past")
    expect(page.get_by_label("Send at (optional)")).to_be_focused()
    page.get_by_label("Send at (optional)").fill("")
    page.get_by_label("Emails per second (optional)").fill(str(RATE))  # a few seconds of sending to watch

    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/#/campaigns/campaign_*")
    campaign_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    expect(page.locator("[data-counter=sent]")).to_have_text(str(RECIPIENTS))
    expect(page.locator(".path li").last).to_contain_text("CampaignCompleted")
    expect(page.locator(".path")).to_contain_text("MarkCompleted")
    expect(page.locator("svg.chart polyline")).to_have_count(1)
    expect(page.locator("svg.chart")).to_have_attribute(
        "aria-label",
        re.compile(rf"^Recipients over time, after \d+ s: {RECIPIENTS} sent, 0 failed, 0 skipped of {RECIPIENTS}$"),
    )
    expect(page.get_by_text("None.")).to_be_visible()  # no failed deliveries
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    shot(page, "campaign")

    page.get_by_role("link", name="Campaigns", exact=True).first.click()
    row = page.locator(f"tr[data-campaign='{campaign_id}']")
    expect(row.locator(".badge")).to_have_text("completed")
    expect(row.locator(".progress-text")).to_have_text("100 %")
    expect(row.locator("td.num")).to_have_text([str(RECIPIENTS), "0", "0", str(RECIPIENTS)])
    shot(page, "campaigns")
    assert len(list((stack["dir"] / "outbox" / campaign_id).glob("*.eml"))) == RECIPIENTS


def test_failed_deliveries_show_their_reasons_and_scheduled_campaigns_cancel(page, stack, tmp_path):
    import_csv(page, tmp_path, "email,first_name,lists\nf1@example.org,F1,unverified\nf2@example.org,F2,unverified\n")
    expect(page.get_by_text("Imported 2 contacts.")).to_be_visible()
    # The stack's sender identity, not verified for a while: IAM allows the sends, SES rejects each.
    ses = boto3.client(
        "sesv2",
        endpoint_url=stack["aws"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ses.delete_email_identity(EmailIdentity="example.com")
    fill_campaign(page, name="From an unverified sender", sender="news@example.com", subject="Hi", body="Hello")
    page.get_by_label("Audience").select_option("list:unverified")
    page.get_by_role("button", name="Start campaign").click()
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    failed = page.locator("section[aria-labelledby=failed-h] tbody tr")
    expect(failed).to_have_count(2)
    expect(failed.first.locator("td.reason")).to_contain_text("MessageRejected")
    expect(page.locator("[data-counter=failed]")).to_have_text("2")
    expect(page.locator("svg.chart")).to_have_attribute(
        "aria-label", re.compile(r": 0 sent, 2 failed, 0 skipped of 2$")
    )
    expect(page.locator("svg.chart polyline[data-outcome=failed]")).to_have_count(1)  # failures are not sends
    shot(page, "campaign-failed")
    first_url = page.url
    resend_posts = []
    page.on(
        "request",
        lambda r: resend_posts.append(r.url) if r.method == "POST" and r.url.endswith("/resend-failed") else None,
    )
    page.get_by_role("button", name="Resend to failed").dblclick()  # a new campaign to those two only: one
    page.wait_for_url(lambda url: url != first_url and "#/campaigns/campaign_" in url)
    expect(page.get_by_role("link", name=first_url.rsplit("/", 1)[-1])).to_be_visible()  # "resend of …"
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    expect(page.locator("[data-counter=recipients]")).to_have_text("2")
    expect(page.locator("section[aria-labelledby=failed-h] tbody tr")).to_have_count(2)  # still unverified
    ses.create_email_identity(EmailIdentity="example.com")
    original = first_url.rsplit("/", 1)[-1]
    listed = page.evaluate("fetch('/campaigns?limit=500').then((r) => r.json())")["campaigns"]
    assert len([c for c in listed if c.get("resend_of") == original]) == 1
    assert len(resend_posts) == 1, resend_posts  # the double click sent one request

    fill_campaign(page, name="Next week", sender="news@example.com", subject="Soon", body="Hello")
    page.get_by_label("Send at (optional)").fill((datetime.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule campaign").click()
    expect(page.locator(".page-head .badge")).to_have_text("scheduled")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".action-status")).to_have_text("scheduled → cancelled")
    expect(page.locator(".page-head .badge")).to_have_text("cancelled")


def test_pause_resume_and_cancel_buttons_steer_a_running_campaign(page, tmp_path):
    import_csv(page, tmp_path, "email,lists\n" + "".join(f"s{i}@example.org,slow\n" for i in range(10)))
    expect(page.get_by_text("Imported 10 contacts.")).to_be_visible()
    # One email every few seconds per worker: the first batch outlasts the clicks below.
    fill_campaign(page, name="Slow", sender="news@example.com", subject="Hi", body="Hello")
    page.get_by_label("Audience").select_option("list:slow")
    page.get_by_label("Emails per second (optional)").fill("1")
    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/#/campaigns/campaign_*")
    status = page.locator(".action-status")
    page.get_by_role("button", name="Pause").click()
    expect(status).to_have_text(re.compile(r"^(queued|processing) → paused$"))
    expect(page.locator(".page-head .badge")).to_have_text("paused")
    expect(page.get_by_role("button", name="Resume")).to_be_enabled()
    page.get_by_role("button", name="Resume").click()
    expect(status).to_have_text(re.compile(r"^paused → (queued|processing)$"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(status).to_have_text(re.compile(r"^(queued|processing) → cancelled$"))
    expect(page.locator(".page-head .badge")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()


def test_the_same_pages_work_through_the_signing_proxy_of_bulkmail_dashboard(browser, stack, tmp_path, monkeypatch):
    """`bulkmail dashboard`'s proxy in front of a real API (serve ignores the signature; the signature
    itself is checked in tests/integration/test_dashboard_proxy.py)."""
    from bulkmail_local.dashboard import DashboardProxy

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with DashboardProxy(stack["api"], port=0) as proxy:
        context = browser.new_context(base_url=proxy.url)
        try:
            page = context.new_page()
            import_csv(page, tmp_path, "email,first_name\nproxied@example.org,Pat\n")  # a same-origin POST
            expect(page.get_by_text("Imported 1 contact.")).to_be_visible()
            page.get_by_role("search").get_by_label("Email").fill("proxied@example.org")
            page.get_by_role("button", name="Find contact").click()
            expect(page.locator(".contact-card")).to_contain_text("Pat")
            page.goto("/#/")
            expect(page.locator("main p[role=status]")).to_have_text(re.compile(r"^(No campaigns yet\.)?$"))  # loaded
            shot(page, "campaigns-through-proxy")  # after the other tests: every status they left
        finally:
            context.close()
