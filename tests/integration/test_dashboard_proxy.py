"""`bulkmail dashboard --stack`: the proxy signs each API call with SigV4 and forwards it unchanged.

No AWS account here, so the "deployed API" is a loopback HTTP server that records what arrives and
checks the signature the way API Gateway does, with the algorithm written out independently of
botocore (which signs). What this cannot show: that a real API Gateway accepts it.
"""

import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest
from moto import mock_aws

from bulkmail_local.client import stack_api_url
from bulkmail_local.dashboard import DashboardProxy

KEY_ID, SECRET, REGION = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


def expected_signature(method, target, headers, body, signed, date, region, service, secret):
    """SigV4 as AWS documents it: canonical request → string to sign → HMAC chain."""
    parts = urlsplit(target)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True))
    )
    lowered = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    names = signed.split(";")
    canonical = "\n".join(
        [
            method,
            quote(parts.path, safe="/-_.~"),
            query,
            "".join(f"{n}:{lowered[n]}\n" for n in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", lowered["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def upstream():
    """A stand-in for the deployed management API: records each request, answers a 400 naming a field."""
    received = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(
                {"method": self.command, "target": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            answer = json.dumps({"errors": [{"field": "subject", "message": "is required"}]}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


def call(url, data=None, headers=None, method=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def test_api_calls_arrive_signed_with_sigv4_and_answers_come_back_unchanged(upstream, credentials):
    api_url, received = upstream
    body = json.dumps({"campaign_name": "X"}).encode()
    with DashboardProxy(f"{api_url}/v1", port=0) as proxy:
        status, headers, answer = call(
            f"{proxy.url}/campaigns?limit=5&status=queued",
            body,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "k-1", "Cookie": "session=secret"},
        )
    assert status == 400 and json.loads(answer) == {"errors": [{"field": "subject", "message": "is required"}]}
    assert headers["Content-Type"] == "application/json"

    [request] = received
    assert (request["method"], request["target"], request["body"]) == (
        "POST",
        "/v1/campaigns?limit=5&status=queued",
        body,
    )
    sent = {k.lower(): v for k, v in request["headers"].items()}
    assert "cookie" not in sent and sent["idempotency-key"] == "k-1"
    assert_signed(request)


def assert_signed(request):
    """What API Gateway checks: the key, scope and signature of the request as it arrived."""
    sent = {k.lower(): v for k, v in request["headers"].items()}
    auth = AUTHORIZATION.match(sent["authorization"])
    assert auth, sent["authorization"]
    assert (auth["key"], auth["region"], auth["service"]) == (KEY_ID, REGION, "execute-api")
    assert {"host", "x-amz-date"} <= set(auth["signed"].split(";"))
    assert sent["x-amz-date"].startswith(auth["date"])
    assert auth["signature"] == expected_signature(
        request["method"],
        request["target"],
        request["headers"],
        request["body"],
        auth["signed"],
        auth["date"],
        REGION,
        "execute-api",
        SECRET,
    )


def test_requests_from_other_sites_are_refused_unsigned(upstream, credentials):
    api_url, received = upstream
    with DashboardProxy(api_url, port=0) as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        status, _, answer = call(
            f"{proxy.url}/campaigns",
            b"{}",
            method="POST",
            headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
        )
        assert status == 403 and json.loads(answer)["errors"][0]["field"] == "Origin"
        status, _, answer = call(f"{proxy.url}/campaigns", headers={"Host": f"rebound.example:{port}"})
        assert status == 403 and json.loads(answer)["errors"][0]["field"] == "Host"
        assert received == []
        status, _, answer = call(f"{proxy.url}/campaigns", b"{}", method="POST", headers={"Content-Type": "text/plain"})
        assert status == 415 and json.loads(answer)["errors"][0]["field"] == "Content-Type"  # what no-cors can send
        assert received == []
        status, _, _ = call(
            f"http://localhost:{port}/campaigns",
            b"{}",
            method="POST",
            headers={"Origin": f"http://localhost:{port}", "Content-Type": "application/json"},
        )
        assert status == 400 and len(received) == 1  # the page's own origin goes through


def test_the_signing_region_is_the_apis_own(credentials):
    from bulkmail_local.client import sigv4_headers

    signed = sigv4_headers("GET", "https://abc123.execute-api.ap-southeast-2.amazonaws.com/v1/campaigns", None, {})
    assert "/ap-southeast-2/execute-api/aws4_request" in signed["Authorization"]


def test_the_proxy_serves_the_dashboard_itself_and_only_its_files(upstream, credentials):
    api_url, received = upstream
    with DashboardProxy(api_url, port=0) as proxy:
        status, headers, page = call(f"{proxy.url}/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b'src="/dashboard/app.js"' in page and "default-src 'self'" in headers["Content-Security-Policy"]
        status, headers, _ = call(f"{proxy.url}/dashboard/app.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        status, _, _ = call(f"{proxy.url}/dashboard/..%2F__init__.py")
        assert status == 404
    assert received == []  # none of that went to the API


@mock_aws
def test_stack_api_url_reads_the_stacks_output():
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(
        StackName="bulkmail",
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ApiUrl": {"Value": "https://abc123.execute-api.us-east-1.amazonaws.com/v1"}},
            }
        ),
    )
    assert stack_api_url("bulkmail", cfn) == "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
    cfn.create_stack(StackName="other", TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}))
    with pytest.raises(RuntimeError, match="stack other has no ApiUrl output"):
        stack_api_url("other", cfn)


def test_the_dashboard_command_serves_until_ctrl_c(upstream, credentials):
    api_url, received = upstream
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkmail_local.cli", "dashboard", "--api-url", api_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(proc.stdout.readline())  # the first stdout line, once it listens
        assert started["api_url"] == api_url
        status, _, page = call(started["dashboard_url"] + "/")
        assert status == 200 and b"<title>bulkmail</title>" in page
        status, _, _ = call(started["dashboard_url"] + "/contacts/someone%40example.org")
        assert status == 400 and received[-1]["target"] == "/contacts/someone%40example.org"
        assert_signed(received[-1])  # an encoded path segment: AWS canonicalises it encoded once more
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_the_dashboard_command_names_a_stack_it_cannot_find(credentials, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")  # nothing listens: no AWS reached
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    done = subprocess.run(
        [sys.executable, "-m", "bulkmail_local.cli", "dashboard", "--stack", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "cannot find the API of stack nope" in done.stderr
