"""`bulkmail serve --state-dir`: a campaign survives `kill -9` (or Ctrl-C) of the whole stack and a restart.

A real serve process, 1,000 contacts, a campaign at 50 emails/s, SIGKILL at about a third, the same
command again: the campaign completes, and the audit of the `.eml` files against the ledger finds no
one lost and second copies only for recipients inside the crash window — those whose email SES had
accepted (an `.eml` on disk) while no ledger row recorded it when the process died. Contacts, a
suppression, a schedule and an unsubscribe link made before the kill all work after the restart.
"""

import contextlib
import email
import email.policy
import json
import re
import signal
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

import pytest

from tests.e2e.test_serve import CLI, free_port, http
from tests.waiting import eventually

CONTACTS = 1000
RATE = 50
# The send worker's timeout: a batch held by the killed worker is sent again once its claim
# lapses (1.5 × this), instead of the template's 180 s.
WORKER_TIMEOUT = 20
JSON = {"Content-Type": "application/json"}


@contextlib.contextmanager
def serve(workdir, api_port, aws_port, *extra):
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--api-port",
            str(api_port),
            "--aws-port",
            str(aws_port),
            "--outbox",
            str(workdir / "outbox"),
            "--state-dir",
            str(workdir / "state"),
            "--worker-timeout",
            str(WORKER_TIMEOUT),
            *extra,
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = f"http://127.0.0.1:{api_port}"
    started = time.monotonic()
    while time.monotonic() - started < 90:
        if proc.poll() is not None:
            pytest.fail(f"serve exited early: {proc.stderr.read()[-3000:]}")
        try:
            if http("GET", f"{api}/campaigns", timeout=2)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("serve did not answer within 90 s")
    try:
        yield proc, time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def mail(folder) -> Counter:
    received = Counter()
    for path in folder.glob("*.eml"):
        received[parseaddr(email.message_from_bytes(path.read_bytes()).get("To", ""))[1].lower()] += 1
    return received


def unsubscribe_url(folder, recipient) -> str:
    eml = next(folder.glob(f"{recipient}.*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    return re.search(r"<(http[^>]+)>", message["List-Unsubscribe"]).group(1)


def one_click(url) -> int:
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode({"List-Unsubscribe": "One-Click"}).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def recorded_at_kill(state_file, campaign_id) -> set[str]:
    """The ledger as the killed process left it on disk: recipients with an outcome."""
    with contextlib.closing(sqlite3.connect(state_file)) as db:
        rows = db.execute("SELECT item FROM items WHERE table_name LIKE '%DeliveriesTable%'").fetchall()
    items = [json.loads(r[0]) for r in rows]
    return {i["email"]["S"] for i in items if i["campaign_id"]["S"] == campaign_id}


def wait_for(api, campaign_id, statuses, timeout):
    def reached():
        record = http("GET", f"{api}/campaigns/{campaign_id}")[1]
        return record if record.get("status") in statuses else None

    return eventually(reached, f"{campaign_id} {statuses}", timeout, every=0.25)


@pytest.mark.longest
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_campaign_survives_a_stop_and_a_restart(tmp_path, stop):
    """SIGKILL may leave a crash window; Ctrl-C lets the workers finish their batches: none at all."""
    api_port, aws_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    contacts = [
        {"email": f"p{i}@example.org", "first_name": f"P{i}", "lists": ["news"] + (["later"] if i < 5 else [])}
        for i in range(CONTACTS)
    ]
    campaign = {
        "campaign_name": "Durable",
        "subject": "Hi {{first_name}}",
        "body": "Dear {{first_name}}, news.",
        "from_email": "noreply@example.com",
        "list": "news",
        "unsubscribe_scope": "all",  # its one-click link unsubscribes the address, not only from "news"
        "max_send_rate": RATE,
    }
    figures = {}

    with serve(tmp_path, api_port, aws_port) as (proc, _):
        assert http("POST", f"{api}/contacts", json.dumps({"contacts": contacts}).encode(), JSON)[0] == 200
        send_at = (datetime.now(UTC) + timedelta(seconds=45)).isoformat(timespec="seconds")
        status, scheduled = http(
            "POST",
            f"{api}/campaigns",
            json.dumps({**campaign, "campaign_name": "Later", "list": "later", "send_at": send_at}).encode(),
            JSON,
        )
        assert status == 202 and scheduled["status"] == "scheduled", scheduled
        status, started = http("POST", f"{api}/campaigns", json.dumps(campaign).encode(), JSON)
        assert status == 202, started
        campaign_id = started["campaign_id"]
        folder = tmp_path / "outbox" / campaign_id
        wait_for(api, campaign_id, ("queued", "processing"), 30)
        deadline = time.monotonic() + 60
        while len(mail(folder)) < CONTACTS // 3 and time.monotonic() < deadline:  # by what SES accepted, so that
            time.sleep(0.05)  # the kill lands mid-batch
        sent_before = sorted(mail(folder))
        suppressed, clicked_later = sent_before[0], sent_before[1]
        assert one_click(unsubscribe_url(folder, suppressed)) == 200
        proc.send_signal(stop)
        assert proc.wait(timeout=60) in (0, -signal.SIGKILL)

    received_at_kill = set(mail(folder))
    crash_window = received_at_kill - recorded_at_kill(tmp_path / "state" / "state.sqlite3", campaign_id)
    processed_at_kill = len(received_at_kill)

    with serve(tmp_path, api_port, aws_port) as (proc, up_seconds):
        restarted = time.monotonic() - up_seconds
        while len(mail(folder)) <= processed_at_kill and time.monotonic() - restarted < 60:
            time.sleep(0.05)
        figures["resume_seconds"] = round(time.monotonic() - restarted, 2)  # restart → first new email
        figures["api_up_seconds"] = round(up_seconds, 2)
        final = wait_for(api, campaign_id, ("completed", "failed", "cancelled"), 180)
        figures["complete_after_restart_seconds"] = round(time.monotonic() - restarted, 1)

        # Contacts, the suppression and an old unsubscribe link, after the restart.
        assert http("GET", f"{api}/contacts/p999%40example.org")[1]["lists"] == ["news"]
        assert http("GET", f"{api}/contacts/{urllib.parse.quote(suppressed)}")[1]["status"] == "unsubscribed"
        assert one_click(unsubscribe_url(folder, clicked_later)) == 200
        assert http("GET", f"{api}/contacts/{urllib.parse.quote(clicked_later)}")[1]["status"] == "unsubscribed"
        # The schedule made before the kill fires after it.
        later = wait_for(api, scheduled["campaign_id"], ("completed", "failed", "cancelled"), 120)
        later_mail = mail(tmp_path / "outbox" / scheduled["campaign_id"])
        status, deliveries = http("GET", f"{api}/campaigns/{campaign_id}/deliveries?limit=500")
        rows, token = deliveries["deliveries"], deliveries.get("next_token")
        while token:
            page = http("GET", f"{api}/campaigns/{campaign_id}/deliveries?limit=500&next_token={token}")[1]
            rows, token = rows + page["deliveries"], page.get("next_token")
        figures["state_bytes"] = sum(p.stat().st_size for p in (tmp_path / "state").glob("state.sqlite3*"))

    received = mail(folder)
    twice = {r for r, n in received.items() if n > 1}
    ledger = {r["email"]: r["status"] for r in rows}
    audience = {c["email"] for c in contacts}
    figures.update(
        duplicates=len(twice),
        duplicates_outside_crash_window=len(twice - crash_window),
        crash_window=len(crash_window),
        lost=len(audience - set(ledger)),
        processed_at_kill=processed_at_kill,
    )
    print(f"durable state figures ({signal.Signals(stop).name}):", json.dumps(figures))

    assert final["status"] == "completed", final
    assert figures["lost"] == 0
    assert twice <= crash_window, f"sent twice outside the crash window: {sorted(twice - crash_window)[:5]}"
    if stop == signal.SIGINT:
        assert crash_window == set() and twice == set()
    assert len(rows) == CONTACTS and final["processed_count"] == CONTACTS
    sent = {e for e, s in ledger.items() if s == "sent"}
    assert final["sent_count"] == len(sent) and sent <= set(received) and set(received) <= sent
    assert later["status"] == "completed"
    assert set(later_mail) == {f"p{i}@example.org" for i in range(5)} - {suppressed, clicked_later}


def test_a_second_serve_on_the_same_state_is_refused_in_one_line(tmp_path):
    with serve(tmp_path, free_port(), free_port()):
        second = subprocess.run(
            [
                *CLI,
                "serve",
                "--api-port",
                str(free_port()),
                "--aws-port",
                str(free_port()),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert second.returncode == 1
    said = " ".join(second.stderr.split())  # rich wraps at the terminal's width
    assert "state is in use by another bulkmail serve: stop it, or give another --state-dir" in said
    assert "Traceback" not in said
