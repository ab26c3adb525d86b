"""Open and click tracking on `bulkmail serve`, as a recipient meets it: the email's link and pixel point
at the tracking URLs the embedded SES wrote; following them answers as SES's tracking domain does and
publishes the events that FeedbackFunction counts (EventBridge's path); the report shows them once."""

from __future__ import annotations

import email
import email.policy
import json
import re
import urllib.parse
import urllib.request
from http.client import HTTPConnection
from typing import Any

from tests.e2e.test_serve import http, serve_process
from tests.waiting import eventually

POST_URL = "https://example.org/post?id=1&x=2"
BODY_HTML = (
    "<html><body><p>Hello {{first_name}}, read "
    '<a href="https://example.org/post?id=1&amp;x=2">the post</a>.</p></body></html>'
)
RECIPIENTS = ["ada@example.org", "bob@example.org"]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET, redirects not followed (a mail client's browser would follow the 302)."""
    parts = urllib.parse.urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _send(api: str, workdir, name: str, **tracking: Any) -> str:
    campaign = {
        "campaign_name": name,
        "subject": "News for {{first_name}}",
        "from_email": "news@example.com",
        "body_html": BODY_HTML,
        **tracking,
    }
    status, created = http(
        "POST", f"{api}/campaigns", json.dumps(campaign).encode(), {"Content-Type": "application/json"}
    )
    assert status in (200, 201, 202), created
    campaign_id = created["campaign_id"]
    eventually(
        lambda: http("GET", f"{api}/campaigns/{campaign_id}", timeout=60)[1].get("status") == "completed",
        f"campaign {name} completed",
        timeout=90,
        every=0.2,
    )
    return campaign_id


def _html_of(workdir, campaign_id: str, recipient: str) -> str:
    eml = eventually(
        lambda: next((workdir / "outbox" / campaign_id).glob(f"{recipient}.*.eml"), None),
        "the .eml",
        timeout=90,
        every=0.2,
    )
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.strict)
    assert message["List-Id"], "every email carries a List-Id"
    return message.get_body(("html",)).get_content()


def _report(api: str, campaign_id: str) -> dict[str, Any]:
    status, report = http("GET", f"{api}/campaigns/{campaign_id}/report")
    assert status == 200, report
    return report


def _counted(api: str, campaign_id: str, **expected: int) -> dict[str, Any]:
    """The report once it counts `expected`: SES's events reach FeedbackFunction asynchronously."""

    def counted() -> dict[str, Any] | None:
        report = _report(api, campaign_id)
        return report if all(report[k] >= n for k, n in expected.items()) else None

    return eventually(counted, f"{expected} counted", timeout=90, every=0.2)


def _first_engagement(api: str, campaign_id: str) -> dict[str, dict[str, Any]]:
    rows = http("GET", f"{api}/campaigns/{campaign_id}/deliveries")[1]["deliveries"]
    return {r["email"]: {k: v for k, v in r.items() if k.startswith("first_")} for r in rows}


def _open_and_click(api: str, html: str) -> tuple[str, str]:
    click = re.search(r'<a href="([^"]+)">the post</a>', html).group(1).replace("&amp;", "&")
    pixel = re.search(r'<img alt="" src="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert click.startswith(f"{api}/track/click/") and pixel.startswith(f"{api}/track/open/")
    for _ in range(2):  # the second open and click count in the totals, not in the uniques
        status, headers, body = _get(click, {"User-Agent": "test-mail-client"})
        assert (status, headers["location"]) == (302, POST_URL)
        status, headers, body = _get(pixel)
        assert status == 200 and headers["content-type"] == "image/gif" and body.startswith(b"GIF89a")
    return click, pixel


def test_tracking_on_serve_from_the_email_to_the_report(tmp_path):
    with serve_process(tmp_path) as served:
        api = served["api"]
        contacts = [{"email": e, "first_name": e.split("@")[0].title()} for e in RECIPIENTS]
        body = json.dumps({"contacts": contacts}).encode()
        assert http("POST", f"{api}/contacts", body, {"Content-Type": "application/json"})[0] == 200

        # Tracking on: the link goes through the tracking URL and the email carries the pixel.
        tracked = _send(api, tmp_path, "Tracked", track_opens=True, track_clicks=True)
        html = _html_of(tmp_path, tracked, "ada@example.org")
        assert POST_URL not in html and "https://example.org/post?id=1&amp;x=2" not in html
        assert "ses:no-track" not in html  # SES removes its mark
        unsubscribe = re.search(r'<a href="([^"]+)">unsubscribe</a>', html).group(1)
        assert unsubscribe.startswith(f"{api}/unsubscribe/")  # never wrapped: the token is the recipient's
        _open_and_click(api, html)
        report = _counted(api, tracked, delivered=2, opens=2, clicks=2)
        assert (report["opens_unique"], report["opens"], report["clicks_unique"], report["clicks"]) == (1, 2, 1, 2)
        assert report["links"] == [{"url": POST_URL, "clicks_unique": 1, "clicks": 2}]
        assert report["sent"] == 2 and report["open_rate"] == 0.5
        assert sum(p.get("opens", 0) for p in report["curves"]) == 2
        first = _first_engagement(api, tracked)
        assert set(first["ada@example.org"]) == {"first_open_at", "first_click_at"}
        assert first["bob@example.org"] == {}
        status, headers, csv_body = _get(f"{api}/campaigns/{tracked}/report?format=csv")
        assert status == 200 and headers["content-type"].startswith("text/csv")
        assert "opens_unique,1\r\n" in csv_body.decode() and f"{POST_URL},1,2" in csv_body.decode()
        assert http("GET", f"{api}/campaigns/{tracked}/report?format=xml") == (
            400,
            {"errors": [{"field": "format", "message": "must be json or csv"}]},
        )

        # Privacy mode: counted the same, tied to nobody.
        private = _send(api, tmp_path, "Private", track_opens=True, track_clicks=True, privacy_mode=True)
        _open_and_click(api, _html_of(tmp_path, private, "bob@example.org"))
        report = _counted(api, private, delivered=2, opens=2, clicks=2)
        assert (report["opens_unique"], report["opens"], report["clicks_unique"], report["clicks"]) == (1, 2, 1, 2)
        assert _first_engagement(api, private) == {e: {} for e in RECIPIENTS}

        # Tracking off: links left alone, no pixel.
        plain = _send(api, tmp_path, "Plain", track_opens=False, track_clicks=False)
        html = _html_of(tmp_path, plain, "ada@example.org")
        assert 'href="https://example.org/post?id=1&amp;x=2"' in html
        assert "/track/" not in html and "<img" not in html
        report = _report(api, plain)
        assert (report["opens"], report["clicks"], report["delivered"], report["sent"]) == (0, 0, 0, 2)

        # Not a tracking link: 404, nothing counted.
        assert _get(f"{api}/track/click/not-a-token")[0] == 404


def test_an_unsubscribe_counts_in_the_campaign_report_once(tmp_path):
    with serve_process(tmp_path) as served:
        api = served["api"]
        body = json.dumps({"contacts": [{"email": RECIPIENTS[0]}]}).encode()
        assert http("POST", f"{api}/contacts", body, {"Content-Type": "application/json"})[0] == 200
        campaign_id = _send(api, tmp_path, "Unsubscribed")
        html = _html_of(tmp_path, campaign_id, RECIPIENTS[0])
        url = re.search(r'<a href="([^"]+)">unsubscribe</a>', html).group(1).replace("&amp;", "&")
        for _ in range(2):  # a second click changes nothing
            one_click = urllib.request.Request(
                url,
                data=b"List-Unsubscribe=One-Click",
                method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            with urllib.request.urlopen(one_click, timeout=10) as answer:
                assert answer.status == 200
        assert _counted(api, campaign_id, unsubscribes=1)["unsubscribes"] == 1
