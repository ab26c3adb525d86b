"""`bulkmail serve` answers its own page and local programs only: a page of another origin (a second
loopback server on another port, in a real chromium) cannot create or change anything through the API
or the AWS endpoint; foreign Hosts (DNS rebinding) and malformed lengths are refused over plain HTTP."""

import json
import re
import socket
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from playwright.sync_api import expect

from tests.e2e.test_dashboard import TIMEOUT_MS, browser  # noqa: F401 - the fixture
from tests.e2e.test_serve import http, serve_process

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("only_its_own_page")

CAMPAIGN = {"campaign_name": "From elsewhere", "subject": "Hi", "body": "Hello", "from_email": "news@example.com"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with serve_process(tmp_path_factory.mktemp("guard")) as served:
        status, _ = http(
            "POST",
            f"{served['api']}/contacts",
            json.dumps({"contacts": [{"email": f"g{i}@example.org", "lists": ["news"]} for i in range(3)]}).encode(),
            JSON,
        )
        assert status == 200
        yield served


@pytest.fixture
def other_origin():
    """Another site on loopback: a blank page on its own port."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>elsewhere</title><p>another site</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# Each attempt reports what the page could see: a status (readable only when CORS allows), an opaque
# answer ("opaque": sent, unreadable) or the browser's refusal ("blocked").
ATTEMPTS = """async ([api, aws, campaign, scheduled]) => {
  const tryFetch = async (url, init) => {
    try { const r = await fetch(url, init); return r.type === "opaque" ? "opaque" : r.status; }
    catch (e) { return "blocked"; }
  };
  const json = JSON.stringify(campaign);
  const form = (fields) => new URLSearchParams(fields).toString();
  return {
    no_cors_text_plain_campaign: await tryFetch(api + "/campaigns", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: json}),
    cors_json_campaign: await tryFetch(api + "/campaigns", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: json}),
    no_cors_contacts: await tryFetch(api + "/contacts", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({contacts: [{email: "planted@evil.example"}]})}),
    no_cors_cancel: await tryFetch(api + "/campaigns/" + scheduled + "/cancel", {method: "POST", mode: "no-cors"}),
    no_cors_delete: await tryFetch(api + "/contacts/g0%40example.org", {method: "DELETE", mode: "no-cors"}),
    read_contacts: await tryFetch(api + "/contacts/g1%40example.org", {}),
    sqs_create_queue: await tryFetch(aws + "/", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: form({Action: "CreateQueue", QueueName: "planted", Version: "2012-11-05"})}),
    secrets: await tryFetch(aws + "/", {method: "POST", headers: {"Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "secretsmanager.ListSecrets"}, body: "{}"}),
  };
}"""


def test_a_page_of_another_origin_cannot_create_or_change_anything(browser, stack, other_origin):  # noqa: F811
    api, aws = stack["api"], stack["aws"]
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    status, scheduled = http("POST", f"{api}/campaigns", json.dumps({**CAMPAIGN, "send_at": later}).encode(), JSON)
    assert status == 202
    sqs = boto3.client(
        "sqs", endpoint_url=aws, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    queues_before = sqs.list_queues().get("QueueUrls", [])

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(other_origin + "/")
        seen = page.evaluate(ATTEMPTS, [api, aws, CAMPAIGN, scheduled["campaign_id"]])
        # A form posted by the page (a navigation: no CORS at all), in a frame of its own.
        page.set_content(f"""<iframe name="sink"></iframe>
            <form id="f" method="POST" action="{api}/contacts/import" enctype="text/plain" target="sink">
            <input name="email,first_name&#10;planted2@evil.example,X&#10;x" value="y"></form>""")
        with page.expect_response(f"{api}/contacts/import") as posted:
            page.evaluate("document.getElementById('f').submit()")
        form_status = posted.value.status
    finally:
        context.close()

    # The browser could read nothing: every readable answer is a refusal.
    assert seen["cors_json_campaign"] == "blocked" and seen["read_contacts"] == "blocked"
    assert seen["secrets"] == "blocked"
    assert form_status == 403
    # And nothing changed: campaigns, contacts, queues.
    status, listing = http("GET", f"{api}/campaigns?limit=100")
    assert [(c["campaign_id"], c["status"]) for c in listing["campaigns"]] == [(scheduled["campaign_id"], "scheduled")]
    for planted in ("planted@evil.example", "planted2@evil.example"):
        assert http("GET", f"{api}/contacts/{planted.replace('@', '%40')}")[0] == 404
    assert http("GET", f"{api}/contacts/g0%40example.org")[0] == 200
    assert sqs.list_queues().get("QueueUrls", []) == queues_before


def raw(port, request: bytes, timeout=5.0) -> bytes:
    """One request as bytes on a socket; the answer as bytes (the server closes, or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_foreign_hosts_origins_and_body_types_are_refused_over_http(stack):
    api, aws = stack["api"], stack["aws"]
    api_port, aws_port = int(api.rsplit(":", 1)[1]), int(aws.rsplit(":", 1)[1])
    body = json.dumps(CAMPAIGN).encode()

    status, answer = http("GET", f"{api}/campaigns", headers={"Host": f"rebound.example:{api_port}"})
    assert status == 403 and answer["errors"][0]["field"] == "Host"
    status, answer = http("GET", f"{api}/", headers={"Host": f"rebound.example:{api_port}"})  # the page too
    assert status == 403
    status, answer = http("POST", f"{api}/campaigns", body, {**JSON, "Origin": "http://127.0.0.1:1"})
    assert status == 403 and answer["errors"][0]["field"] == "Origin"
    status, answer = http("POST", f"{api}/campaigns", body, {"Content-Type": "text/plain"})
    assert status == 415 and answer["errors"][0]["field"] == "Content-Type"
    status, answer = http("POST", f"{api}/campaigns/nope/pause")  # no body, no type
    assert status == 415
    status, answer = http(
        "GET", f"{api}/campaigns", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
    )
    assert status == 403 and answer["errors"][0]["field"] == "Sec-Fetch-Site"
    link = urllib.request.Request(f"{api}/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    with urllib.request.urlopen(link, timeout=10) as page:  # a link to the dashboard
        assert page.status == 200
    status, listing = http("GET", f"{api}/campaigns?limit=100")
    assert all(
        c["campaign_name"] != CAMPAIGN["campaign_name"] or c["status"] == "scheduled" for c in listing["campaigns"]
    )

    started = time.monotonic()
    answer = raw(
        api_port,
        b"POST /campaigns HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: -1\r\n\r\n{}" % api_port,
    )
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length" in answer and time.monotonic() - started < 4
    answer = raw(
        api_port,
        b"POST /campaigns HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" % api_port,
    )
    assert answer.startswith(b"HTTP/1.1 411")

    # The AWS endpoint: local programs (no Origin) yes; a foreign Host or another site's page no.
    status, answer = http(
        "POST",
        f"{aws}/",
        b"{}",
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.ListSecrets",
            "Origin": "http://127.0.0.1:1",
        },
    )
    assert status == 403 and answer["errors"][0]["field"] == "Origin"
    status, answer = http(
        "POST",
        f"{aws}/",
        b"{}",
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.ListSecrets",
            "Host": f"rebound.example:{aws_port}",
        },
    )
    assert status == 403 and answer["errors"][0]["field"] == "Host"
    status, answer = http(
        "OPTIONS", f"{aws}/", headers={"Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "POST"}
    )
    assert status == 403
    secrets = boto3.client(
        "secretsmanager", endpoint_url=aws, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    assert secrets.list_secrets()["SecretList"]  # the SDK still works


def test_the_dashboard_has_a_favicon(stack):
    with urllib.request.urlopen(f"{stack['api']}/favicon.ico", timeout=10) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == "image/svg+xml"
        assert answer.read().startswith(b"<svg")


def test_the_note_of_an_action_goes_once_the_campaign_moves_on(browser, stack):  # noqa: F811
    status, started = http(
        "POST", f"{stack['api']}/campaigns", json.dumps({**CAMPAIGN, "list": "news", "max_send_rate": 1}).encode(), JSON
    )
    assert status == 202
    context = browser.new_context(base_url=stack["api"])
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"/#/campaigns/{started['campaign_id']}")
        note = page.locator(".action-status")
        page.get_by_role("button", name="Pause").click()
        expect(note).to_have_text(re.compile(r"→ paused$"))
        page.get_by_role("button", name="Resume").click()
        expect(note).to_have_text(re.compile(r"^paused → "))
        expect(page.locator(".page-head .badge")).to_have_text("completed")
        expect(note).to_have_text("")
    finally:
        context.close()


def test_the_form_names_a_list_gone_since_it_loaded_beside_its_field(browser, stack):  # noqa: F811
    """The form offers the lists that exist; one deleted after the page loaded is refused beside the field."""
    api, json_type = stack["api"], {"Content-Type": "application/json"}
    assert http("POST", f"{api}/lists", json.dumps({"list_id": "gone"}).encode(), json_type)[0] == 201
    context = browser.new_context(base_url=api)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto("/#/new")
        page.get_by_label("Name").fill("Stale")
        page.get_by_label("From address").fill("news@example.com")
        page.get_by_label("Subject").fill("Hi")
        page.get_by_label("Text body").fill("Hello")
        expect(page.locator("option[value='list:gone']")).to_have_count(1)
        page.get_by_label("Audience").select_option("list:gone")
        assert http("DELETE", f"{api}/lists/gone", headers=json_type)[0] == 204
        page.get_by_role("button", name="Start campaign").click()
        expect(page.locator("[data-error-for=list]")).to_have_text(
            re.compile("there is no list 'gone': the known lists are")
        )
        assert page.url.endswith("#/new")  # nothing started
    finally:
        context.close()
