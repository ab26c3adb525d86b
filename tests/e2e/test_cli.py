"""The `bulkmail` command as a user meets it, run as a real process: each error is one line that says what
to do (never a traceback), Ctrl-C says where things stand, tables for people and --json for programs."""

import json
import os
import signal
import subprocess
import time
from datetime import UTC

import pytest

from tests.e2e.test_serve import CLI, http, send_args, serve_process

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("cli")

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with serve_process(tmp_path_factory.mktemp("cli")) as served:
        status, _ = http(
            "POST",
            f"{served['api']}/contacts",
            json.dumps(
                {
                    "contacts": [
                        {"email": f"c{i}@example.org", "first_name": f"C{i}", "lists": ["news"]} for i in range(4)
                    ]
                }
            ).encode(),
            JSON,
        )
        assert status == 200
        (served["dir"] / "body.txt").write_text("Hello {{first_name}}")
        yield served


def run(*args, env=None, cwd=None, timeout=120):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy(), cwd=cwd
    )


def one_line_error(done, code=1):
    """The error as the user sees it: one line, a non-zero status, no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    return lines[0]


def in_stack(stack, *args, **kw):
    return run(*args, env=stack["env"], cwd=stack["dir"], **kw)


def test_a_missing_file_is_one_line(stack, tmp_path):
    line = one_line_error(in_stack(stack, "contacts", "import", str(tmp_path / "nope.csv")))
    assert "cannot read the CSV file" in line and "nope.csv" in line and "No such file" in line
    line = one_line_error(in_stack(stack, *send_args("--from", "a@example.com", body=tmp_path / "body.txt")))
    assert "cannot read the body file" in line


def test_an_unreachable_api_names_the_url_it_tried(tmp_path):
    line = one_line_error(run("campaigns", "status", "x", "--api-url", "http://127.0.0.1:9"))
    assert "http://127.0.0.1:9/campaigns/x" in line and "bulkmail serve" in line


def test_dlq_redrive_without_credentials_or_region_says_what_to_set(tmp_path):
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    bare.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    line = one_line_error(
        run("dlq", "redrive", "--queue-url", "http://127.0.0.1:9/q", "--dlq-url", "http://127.0.0.1:9/d", env=bare)
    )
    assert "no AWS region set" in line and "AWS_DEFAULT_REGION" in line
    line = one_line_error(
        run(
            "dlq",
            "redrive",
            "--queue-url",
            "http://127.0.0.1:9/q",
            "--dlq-url",
            "http://127.0.0.1:9/d",
            env={**bare, "AWS_DEFAULT_REGION": "us-east-1"},
        )
    )
    assert "no AWS credentials found" in line and "aws configure" in line
    line = one_line_error(run("dlq", "redrive"), code=2)
    assert "--stack NAME" in line


def test_usage_errors_and_a_missing_sender_are_one_line(stack):
    assert "--help" in one_line_error(in_stack(stack, "campaigns", "sned"), code=2)
    env = {k: v for k, v in stack["env"].items() if k != "BULKMAIL_FROM"}
    line = one_line_error(
        run(*send_args(body=stack["dir"] / "body.txt"), env=env, cwd=stack["dir"]),
        code=2,
    )
    assert line.startswith("bulkmail: --from is required")
    shown = " ".join(in_stack(stack, "campaigns", "send", "--help").stdout.split())
    assert f"(default: {stack['api']})" in shown and "(default: now)" in shown


def test_a_misspelt_list_and_an_unknown_campaign_are_refused_in_one_line(stack):
    line = one_line_error(in_stack(stack, *send_args("--from", "a@example.com", "--list", "nwes")))
    assert line == "bulkmail: HTTP 422: list: there is no list 'nwes': the known lists are news"
    assert "HTTP 404" in one_line_error(in_stack(stack, "campaigns", "pause", "no_such_campaign"))


def test_a_campaign_from_name_and_address_then_its_deliveries_contacts_and_trace(stack):
    sent = in_stack(
        stack,
        *send_args("--from", "Acme News <news@example.com>", "--list", "news", "--json", name="Named", subject="Hi"),
    )
    assert sent.returncode == 0, sent.stderr
    campaign_id = json.loads(sent.stdout)["campaign_id"]
    watched = in_stack(stack, "campaigns", "status", campaign_id, "--watch", "--timeout", "90", "--json")
    record = json.loads(watched.stdout)
    assert (record["status"], record["from_name"], record["from_email"]) == (
        "completed",
        "Acme News",
        "news@example.com",
    )

    table = in_stack(stack, "campaigns", "status", campaign_id)  # for people: a table
    assert table.returncode == 0 and "Acme News" in table.stdout and not table.stdout.lstrip().startswith("{")
    rows = in_stack(stack, "deliveries", campaign_id, "--status", "sent", "--limit", "2", "--all", "--json")
    assert sorted(d["email"] for d in json.loads(rows.stdout)["deliveries"]) == [f"c{i}@example.org" for i in range(4)]
    first = in_stack(stack, "deliveries", campaign_id, "--limit", "2")
    assert "c0@example.org" in first.stdout and "more: --all, or --next-token" in first.stdout
    contact = in_stack(stack, "contacts", "get", "C2@example.org")
    assert contact.returncode == 0 and "c2@example.org" in contact.stdout and "subscribed" in contact.stdout
    assert json.loads(in_stack(stack, "contacts", "get", "c2@example.org", "--json").stdout)["first_name"] == "C2"
    assert "Contact nobody@example.org not found" in one_line_error(
        in_stack(stack, "contacts", "get", "nobody@example.org")
    )
    traced = in_stack(stack, "trace", campaign_id)
    assert traced.returncode == 0 and traced.stdout.count(campaign_id) == 1, traced.stdout
    twice = in_stack(stack, *send_args("--from", "Acme <a@example.com>", "--from-name", "Other"))
    assert "two sender names" in one_line_error(twice, code=2)


def test_ctrl_c_while_watching_says_the_campaign_goes_on(stack):
    from datetime import datetime, timedelta

    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    sent = in_stack(stack, *send_args("--from", "a@example.com", "--at", later, "--json", name="Later", subject="Hi"))
    campaign_id = json.loads(sent.stdout)["campaign_id"]  # scheduled: it will not end soon
    watching = subprocess.Popen(
        [*CLI, "campaigns", "status", campaign_id, "--watch", "--interval", "0.2"],
        env=stack["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # the watcher has started and polled (no clock to inject into another process)
    watching.send_signal(signal.SIGINT)
    _, err = watching.communicate(timeout=30)
    line = one_line_error(subprocess.CompletedProcess(watching.args, watching.returncode, "", err), code=130)
    assert f"stopped watching; campaign {campaign_id} scheduled" in line and "goes on" in line


@pytest.mark.longest
def test_ctrl_c_during_the_demo_stops_it_and_says_where_it_was(tmp_path):
    demo = subprocess.Popen(
        [*CLI, "demo", "--contacts", "3000", "--outbox", str(tmp_path / "outbox")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "outbox").glob("*/*.eml")) and time.monotonic() < deadline and demo.poll() is None:
        time.sleep(0.2)  # until the first emails are out
    demo.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = demo.communicate(timeout=60)
    stopped_after = time.monotonic() - started
    assert demo.returncode == 130, err
    assert "Traceback" not in err
    folder = next(p for p in (tmp_path / "outbox").iterdir() if p.is_dir())
    written = len(list(folder.glob("*.eml")))
    [line] = [line for line in err.splitlines() if line.startswith("bulkmail: ")]
    assert f"interrupted: the demo stopped, nothing more is sent; {written} emails are in {folder}/" in line
    assert "last seen: campaign demo_" in line
    assert written < 3000 and stopped_after < 30  # it did not send on to the end


@pytest.mark.parametrize("which", ["--api-port", "--aws-port"])
def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path, which):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        other = "--aws-port" if which == "--api-port" else "--api-port"
        line = one_line_error(
            run("serve", which, str(port), other, "0", "--outbox", str(tmp_path / "outbox"), cwd=tmp_path, timeout=90)
        )
    assert "Address already in use" in line and str(port) in line and "is another bulkmail serve running" in line
