"""Signup with double opt-in on a real `bulkmail serve`: the public routes over HTTP, the confirmation
email in the outbox, only confirmed contacts mailed, a burst limited, preferences from the unsubscribe link."""

import email
import email.policy
import json
import re
import urllib.request
from urllib.parse import urlencode

import pytest

from tests.e2e.test_serve import serve_process
from tests.waiting import eventually

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("signup")

FORM = "application/x-www-form-urlencoded"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/subscribe/confirm/\S+")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve_process(tmp_path_factory.mktemp("signup")) as stack:
        yield stack


def call(method, url, body=None, content_type="application/json"):
    """(status, headers, text) of a request; a dict body is sent as JSON or as a form."""
    data = None
    if isinstance(body, dict):
        data = json.dumps(body).encode() if content_type == "application/json" else urlencode(body, doseq=True).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def contact(served, address):
    status, _, text = call("GET", f"{served['api']}/contacts/{address}")
    assert status == 200, text
    return json.loads(text)


def mail_to(served, address, folder="no-campaign"):
    files = sorted((served["dir"] / "outbox" / folder).glob(f"{address}.*.eml"), key=lambda p: p.stat().st_mtime)
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def send_campaign(served, name):
    document = {
        "campaign_name": name,
        "from_email": "news@example.com",
        "subject": "Hello {{first_name}}",
        "body": "The news. {{unsubscribe_url}}",
        "list": "news",
    }
    status, _, text = call("POST", f"{served['api']}/campaigns", document)
    assert status in (200, 201, 202), text
    campaign_id = json.loads(text)["campaign_id"]

    def finished():
        record = json.loads(call("GET", f"{served['api']}/campaigns/{campaign_id}")[2])
        return record if record["status"] in ("completed", "failed", "cancelled") else None

    # A real campaign on a real serve: nothing to inject a clock into.
    return eventually(finished, f"campaign {campaign_id} finished", timeout=120, every=0.5)


def test_signup_confirms_only_with_the_button_and_the_next_campaign_includes_the_contact(served):
    api = served["api"]
    status, _, text = call("POST", f"{api}/contacts", {"contacts": [{"email": "old@example.org", "lists": ["news"]}]})
    assert status == 200, text

    refused = call("POST", f"{api}/subscribe", {"email": "new@example.org", "list": "news"})
    assert refused[0] == 400 and json.loads(refused[2])["errors"][0]["field"] == "consent"
    assert call("GET", f"{api}/contacts/new@example.org")[0] == 404  # nothing stored
    unknown = call("POST", f"{api}/subscribe", {"email": "new@example.org", "list": "nope", "consent": True})
    assert unknown[0] == 400 and json.loads(unknown[2])["errors"][0]["field"] == "list"

    status, _, text = call(
        "POST", f"{api}/subscribe", {"email": "new@example.org", "list": "news", "consent": True, "first_name": "Nia"}
    )
    assert status == 202 and json.loads(text)["status"] == "pending", text
    assert contact(served, "new@example.org")["status"] == "pending"
    [confirmation] = mail_to(served, "new@example.org")
    link = LINK.search(confirmation.get_body(("plain",)).get_content()).group(0)

    # a campaign now: the pending contact is not mailed
    before = send_campaign(served, "Before the confirmation")
    assert (before["status"], before["sent_count"]) == ("completed", 1)
    assert mail_to(served, "new@example.org", before["campaign_id"]) == []

    status, headers, page = call("GET", link)  # what a mail scanner does: nothing changes
    assert status == 200 and "<button" in page and "new@example.org" in page and headers["Cache-Control"] == "no-store"
    assert contact(served, "new@example.org")["status"] == "pending"

    tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    assert call("GET", tampered)[0] == 400 and call("POST", tampered, {"confirm": "yes"}, FORM)[0] == 400
    assert contact(served, "new@example.org")["status"] == "pending"

    status, _, page = call("POST", link, {"confirm": "yes"}, content_type="application/x-www-form-urlencoded")
    assert status == 200 and "You are subscribed" in page
    confirmed = contact(served, "new@example.org")
    assert confirmed["status"] == "subscribed" and confirmed["lists"] == ["news"]
    consent = confirmed["consent"]["news"]
    assert consent["ip"] == "127.0.0.1" and consent["source"] == "api" and "news" in consent["text"]
    assert consent["requested_at"] < consent["confirmed_at"]
    again = call("POST", link, {"confirm": "yes"}, content_type="application/x-www-form-urlencoded")
    assert again[0] == 200  # a second press changes nothing

    after = send_campaign(served, "After the confirmation")
    assert (after["status"], after["sent_count"]) == ("completed", 2)
    [newsletter] = mail_to(served, "new@example.org", after["campaign_id"])
    assert newsletter["Subject"] == "Hello Nia"

    # preferences from the unsubscribe link: the page lists the contact's lists; keeping none unsubscribes
    unsubscribe = re.search(r"http://127\.0\.0\.1:\d+/unsubscribe/\S+", newsletter.get_body(("plain",)).get_content())
    status, _, page = call("GET", unsubscribe.group(0))
    assert status == 200 and 'name="lists" value="news"' in page
    assert contact(served, "new@example.org")["status"] == "subscribed"
    status, _, page = call(
        "POST", f"{unsubscribe.group(0)}/preferences", {"preferences": "save"}, "application/x-www-form-urlencoded"
    )
    assert status == 200, page
    left = contact(served, "new@example.org")
    assert left["status"] == "unsubscribed" and not left.get("lists")


def test_the_embeddable_form_posts_a_signup_and_a_burst_from_one_client_gets_429(served):
    api = served["api"]
    call("POST", f"{api}/contacts", {"contacts": [{"email": "first@example.org", "lists": ["offers"]}]})
    status, headers, page = call("GET", f"{api}/subscribe/form/offers")
    assert status == 200 and f'action="{api}/subscribe"' in page and 'name="consent"' in page
    assert f"form-action {api}/subscribe" in headers["Content-Security-Policy"]  # other sites may frame it
    assert call("GET", f"{api}/subscribe/form/nope")[0] == 404

    unticked = call("POST", f"{api}/subscribe", {"email": "form@example.org", "list": "offers"}, FORM)
    assert unticked[0] == 400 and unticked[1]["Content-Type"].startswith("text/html") and "consent" in unticked[2]
    assert call("POST", f"{api}/subscribe", None, "text/plain")[0] == 415
    form = {"email": "form@example.org", "list": "offers", "consent": "true"}
    answers = [call("POST", f"{api}/subscribe", form, FORM)]
    assert answers[0][0] == 202 and "Check your inbox" in answers[0][2]
    # one address gets a few confirmation emails an hour, whoever asks
    again = [call("POST", f"{api}/subscribe", form, FORM) for _ in range(3)]
    assert [a[0] for a in again] == [202, 202, 429] and len(mail_to(served, "form@example.org")) == 3
    assert "email: too many signups for this address" in again[2][2] and again[2][1]["Retry-After"]
    answers = []
    for n in range(15):
        answers.append(
            call("POST", f"{api}/subscribe", {"email": f"b{n}@example.org", "list": "offers", "consent": True})
        )
    codes = [a[0] for a in answers]
    limited = [a for a in answers if a[0] == 429]
    assert limited, codes
    # at most 10 a minute from one client (two windows if the minute turned during the burst)
    assert set(codes) <= {202, 429} and codes.count(202) <= 2 * 10
    assert {e["field"] for a in limited for e in json.loads(a[2])["errors"]} == {"$"}
    assert all(1 <= int(a[1]["Retry-After"]) <= 60 for a in limited)
    refused = [f"b{n}@example.org" for n, a in enumerate(answers) if a[0] == 429]
    assert call("GET", f"{api}/contacts/{refused[0]}")[0] == 404 and mail_to(served, refused[0]) == []
