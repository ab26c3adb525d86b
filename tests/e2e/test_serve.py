"""`bulkmail serve` as a user runs it: a real process, real HTTP on loopback, the AWS endpoint, the CLI."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest

CLI = [sys.executable, "-m", "bulkmail_local.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@contextlib.contextmanager
def serve_process(workdir):
    """A real `bulkmail serve` on free ports in `workdir`, up and answering; killed on the way out."""
    api_port, aws_port = free_port(), free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--api-port", str(api_port), "--aws-port", str(aws_port), "--outbox", str(workdir / "outbox")],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 120  # a start-up is seconds; a machine shared by parallel suites is slow
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited early: {proc.stderr.read()[-2000:]}")
        try:
            if http("GET", f"{api}/campaigns", timeout=2)[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("serve did not answer within 120 s")
    env = {**os.environ, "BULKMAIL_API_URL": api, "BULKMAIL_AWS_URL": f"http://127.0.0.1:{aws_port}"}
    try:
        yield {"api": api, "aws": f"http://127.0.0.1:{aws_port}", "proc": proc, "env": env, "dir": workdir}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def served(tmp_path):
    with serve_process(tmp_path) as stack:
        yield stack


def send_args(*options: str, name: str = "N", subject: str = "S", body: object = "body.txt") -> list[str]:
    """`campaigns send` with a name, a subject and a body file, then `options` (--from, --list, --json, …)."""
    return ["campaigns", "send", "--name", name, "--subject", subject, "--body-file", str(body), *options]


def send_and_watch(served, *options: str, **send: object) -> tuple[str, dict]:
    """A campaign sent with the CLI and watched to its end: its id and its final record."""
    sent = cli(served, *send_args(*options, "--json", **send))
    assert sent.returncode == 0, sent.stderr
    campaign_id = json.loads(sent.stdout)["campaign_id"]
    watched = cli(served, "campaigns", "status", campaign_id, "--watch", "--timeout", "90", "--json", timeout=120)
    assert watched.returncode == 0, watched.stderr[-2000:]
    return campaign_id, json.loads(watched.stdout)


def cli(served, *args, timeout=120):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=served["env"], cwd=served["dir"]
    )


def test_serve_runs_a_campaign_over_http_and_stops_cleanly_on_ctrl_c(served):
    api, workdir = served["api"], served["dir"]
    csv_file = workdir / "contacts.csv"
    csv_file.write_text(
        "email,first_name,last_name,company,lists\n"
        + "".join(f"p{i}@example.org,P{i},L{i},Acme,news\n" for i in range(12))
        + "broken-address,X,Y,,news\n"
    )
    imported = cli(served, "contacts", "import", str(csv_file), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["imported"] == 12
    assert json.loads(imported.stdout)["rejected"][0]["line"] == 14

    (workdir / "body.txt").write_text("Dear {{first_name}}, the news.")
    campaign_id, record = send_and_watch(
        served, "--list", "news", "--from", "news@example.com", name="News", subject="Hi {{first_name}}"
    )
    assert (record["status"], record["sent_count"], record["total_contacts"]) == ("completed", 12, 12)

    status, page = http("GET", f"{api}/campaigns/{campaign_id}/deliveries?status=sent&limit=100")
    assert status == 200 and len(page["deliveries"]) == 12
    assert len(list((workdir / "outbox" / campaign_id).glob("*.eml"))) == 12

    traced = cli(served, "trace", campaign_id)
    assert traced.returncode == 0, traced.stderr
    for state in ("ValidateCampaign", "PersistCampaign", "AdvanceCampaign", "MarkCompleted"):
        assert state in traced.stdout

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=served["aws"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    tables = ddb.list_tables()["TableNames"]
    assert any("CampaignsTable" in t for t in tables) and any("ContactsTable" in t for t in tables)
    if shutil.which("aws"):
        out = subprocess.run(
            ["aws", "--endpoint-url", served["aws"], "dynamodb", "list-tables"],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **served["env"],
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
        assert out.returncode == 0, out.stderr
        assert sorted(json.loads(out.stdout)["TableNames"]) == sorted(tables)

    proc = served["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in proc.stderr.read()


def test_cli_and_http_errors_against_serve(served):
    api = served["api"]
    status, _ = http(
        "POST",
        f"{api}/contacts",
        json.dumps({"contacts": [{"email": "a@example.org"}]}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200
    (served["dir"] / "body.txt").write_text("Hello")
    missing = cli(served, "campaigns", "pause", "no_such_campaign")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    bad = cli(
        served, *send_args("--from", "a@example.com", subject="Hi {{frist_name}}", body=served["dir"] / "body.txt")
    )
    assert bad.returncode == 1 and "unknown placeholder" in bad.stderr
    status, listing = http("GET", f"{api}/campaigns")
    assert listing["campaigns"] == []
    good = cli(
        served,
        "campaigns",
        "send",
        "--name",
        "X",
        "--subject",
        "Hi",
        "--body-file",
        str(served["dir"] / "body.txt"),
        "--from",
        "a@example.com",
        "--json",
    )
    campaign_id = json.loads(good.stdout)["campaign_id"]
    assert cli(served, "campaigns", "status", campaign_id, "--watch", "--timeout", "60").returncode == 0
    late = cli(served, "campaigns", "cancel", campaign_id)
    assert late.returncode == 1 and "HTTP 409" in late.stderr and "completed" in late.stderr
    status, _ = http("GET", f"{api}/no/such/route")
    assert status == 404
    status, _body = http("POST", f"{api}/campaigns", b"x" * (11 * 1024 * 1024), {"Content-Type": "application/json"})
    assert status == 413


def test_the_unsubscribe_link_of_a_sent_email_works_on_serve(served):
    import email
    import email.policy
    import re
    import urllib.parse

    api, workdir = served["api"], served["dir"]
    status, _ = http(
        "POST",
        f"{api}/contacts",
        json.dumps({"contacts": [{"email": f"u{i}@example.org", "first_name": f"U{i}"} for i in range(3)]}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200

    def send_and_wait():
        (workdir / "body.txt").write_text("Hello {{first_name}}")
        return send_and_watch(served, "--from", "n@example.com", subject="Hi", body=workdir / "body.txt")

    first, record = send_and_wait()
    assert record["sent_count"] == 3
    eml = next((workdir / "outbox" / first).glob("u1@example.org.*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.strict)
    url = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"]).group(1)
    assert url.startswith(api + "/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    with urllib.request.urlopen(url, timeout=10) as page:  # a mail scanner's GET changes nothing
        assert page.status == 200 and b"<form" in page.read()
    assert http("GET", f"{api}/contacts/u1%40example.org")[1]["status"] == "subscribed"
    one_click = urllib.request.Request(
        url,
        data=urllib.parse.urlencode({"List-Unsubscribe": "One-Click"}).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(one_click, timeout=10) as answer:
        assert answer.status == 200
    assert http("GET", f"{api}/contacts/u1%40example.org")[1]["status"] == "unsubscribed"
    tampered = urllib.request.Request(url[:-3] + "AAA", data=b"List-Unsubscribe=One-Click", method="POST")
    try:
        urllib.request.urlopen(tampered, timeout=10)
        raise AssertionError("a tampered token was accepted")
    except urllib.error.HTTPError as exc:
        assert 400 <= exc.code < 500

    second, record = send_and_wait()
    assert record["sent_count"] == 2  # u1 is no longer in the audience
    assert not list((workdir / "outbox" / second).glob("u1@example.org.*.eml"))
