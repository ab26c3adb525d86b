"""`bulkmail chaos`: whole campaigns on the embedded runtime under injected faults, then an audit.

The audit compares three independent records: the `.eml` files SES accepted (what people received),
the delivery ledger, and the campaign's counters.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from email import message_from_bytes
from email import policy as email_policy
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.dynamo import plain
from bulkmail.adapters.engagement import EngagementStore
from bulkmail.adapters.ledger import Ledger
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import CampaignNotFound
from bulkmail_local.demo import generated_contacts
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.apigw import ApiGateway
from bulkmail_local.runtime.faults import ChaosFaults, FaultRates
from bulkmail_local.runtime.stack import PROJECT_ROOT

CAMPAIGN = {
    "campaign_name": "Chaos Newsletter",
    "subject": "Hello {{ first_name | default('there') }}!",
    "body": "Dear {{first_name}} {{last_name}}, welcome to {{company}}",
    "from_email": "noreply@example.com",
}
# Crashed workers must come back in seconds: a 6 s worker timeout, an 8 s claim lease (longer than
# the timeout, as on AWS), a 10 s visibility timeout (for messages of crashed invocations).
FAST_RECOVERY: dict[str, Any] = {
    "environment": {"LEASE_SECONDS": "8"},
    "function_timeouts": {"SendEmailsFunction": 6},
    "visibility_timeout": 10,
}
BOUNCE_SHARE = 0.03  # of the sent recipients, a bounce comes back through FeedbackFunction
EVENTBRIDGE_ATTEMPTS = 3  # an asynchronous invocation: the first try and EventBridge's two retries
CLIENT_ATTEMPTS = 6  # a client of the API retries a 5xx, a bounded number of times
IMPORT_CHUNK = 150  # contacts per POST /contacts: two transactions of 100 and 50 each
# For part of every run the campaign goes slower than a worker may wait for its next send slot
# (WorkerMaxConcurrency / rate > Pacer.MAX_SLEEP_SECONDS): workers hand their batches back to the queue
# with a delay (PacingDeferred), then the rate is restored.
SLOW_RATE, SLOW_SECONDS, SLOW_FROM = 0.5, 4.0, 0.15


def _bounce_event(campaign_id: str, email: str, message_id: str) -> dict[str, Any]:
    event = json.loads((PROJECT_ROOT / "events" / "feedback.json").read_text())
    mail = event["detail"]["mail"]
    mail["messageId"], mail["destination"] = message_id, [email]
    mail["headers"] = [h for h in mail["headers"] if h["name"] != "X-Bulkmail-Campaign"]
    mail["headers"].append({"name": "X-Bulkmail-Campaign", "value": campaign_id})
    event["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = email
    return event


def _deliver_bounces(rt, campaign_id: str, rows: list[dict[str, Any]], rng: random.Random, injected) -> None:
    """Bounces for some sent recipients, each delivered as EventBridge would (`_deliver_twice`)."""
    feedback = next(f for f in rt.functions.values() if f.logical_id == "FeedbackFunction")
    for row in rows:
        if row["status"] != "sent" or rng.random() >= BOUNCE_SHARE:
            continue
        _deliver_twice(feedback, _bounce_event(campaign_id, row["email"], row.get("message_id", "")), injected)
        injected["bounce_delivered_twice"] += 1


def _deliver_twice(feedback, event: dict[str, Any], injected) -> None:
    """An event delivered twice (EventBridge is at-least-once), each delivery retried as EventBridge
    retries a failed asynchronous invocation."""
    for _ in range(2):
        for attempt in range(EVENTBRIDGE_ATTEMPTS):
            try:
                feedback.invoke(event)
                break
            except Exception:
                injected["feedback_invocation_retried"] += 1
                if attempt == EVENTBRIDGE_ATTEMPTS - 1:
                    raise


# --- engagement (opens and clicks): a write path of its own, audited for uniques counted once -----
OPEN_SHARE, REOPEN_SHARE, CLICK_SHARE = 0.3, 0.3, 0.1  # of the sent recipients; REOPEN of the openers
LINKS = ("https://example.org/a", "https://example.org/b")


def _deliver_engagement(rt, campaign_id: str, rows: list[dict[str, Any]], rng: random.Random, injected) -> dict:
    """Opens and clicks of some sent recipients, as the tracked configuration set publishes them; each
    event delivered as EventBridge would (`_deliver_twice`). Returns what the counters must then say."""
    feedback = next(f for f in rt.functions.values() if f.logical_id == "FeedbackFunction")
    tags = {"campaign_id": campaign_id, "bulkmail-tracking": "opens-clicks"}
    events: list[dict[str, Any]] = []
    expected: dict[str, Any] = {"open": [0, 0], "click": [0, 0], "links": {url: [0, 0] for url in LINKS}, "first": {}}
    for row in rows:
        if row["status"] != "sent":
            continue
        mail = {"m": row.get("message_id", ""), "s": CAMPAIGN["from_email"], "d": [row["email"]], "c": "", "t": tags}
        mail["c"] = rt.physical["TrackedConfigurationSet"]
        opens = (1 + (rng.random() < REOPEN_SHARE)) if rng.random() < OPEN_SHARE else 0
        for n in range(opens):  # a reopen is an event of its own (another time): counted, not unique
            detail = {"timestamp": f"2026-12-01T09:0{n}:00.000Z", "ipAddress": f"192.0.2.{n}"}
            events.append(rt.ses_events.event("open", mail, detail))
        if opens:
            expected["open"][0] += 1
            expected["first"][row["email"]] = {"first_open_at"}
        expected["open"][1] += opens
        clicked = [url for url in LINKS if rng.random() < CLICK_SHARE]
        for url in clicked:
            click = {"timestamp": "2026-12-01T10:00:00.000Z", "link": url, "linkTags": {}, "ipAddress": "192.0.2.9"}
            events.append(rt.ses_events.event("click", mail, click))
            expected["links"][url][0] += 1
            expected["links"][url][1] += 1
        if clicked:
            expected["click"][0] += 1
            expected["first"].setdefault(row["email"], set()).add("first_click_at")
        expected["click"][1] += len(clicked)
    for event in events:
        _deliver_twice(feedback, event, injected)
        injected["engagement_delivered_twice"] += 1
    return expected


def audit_engagement(expected: dict[str, Any], totals: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The counters say each event once and each recipient's first once; the ledger rows agree."""
    kinds = totals["kinds"]
    found: dict[str, Any] = {
        "open": [kinds.get("open", {}).get("u", 0), kinds.get("open", {}).get("n", 0)],
        "click": [kinds.get("click", {}).get("u", 0), kinds.get("click", {}).get("n", 0)],
        "links": {url: [0, 0] for url in LINKS},
        "first": {
            r["email"]: {k for k in r if k.startswith("first_")} for r in rows if any(k.startswith("first_") for k in r)
        },
    }
    for link in totals["links"]:
        found["links"][link["url"]] = [link["u"], link["n"]]
    wrong = {
        k: {"expected": expected[k], "counted": found[k]} for k in ("open", "click", "links") if expected[k] != found[k]
    }
    if expected["first"] != found["first"]:
        wrong["ledger_first"] = {"expected": len(expected["first"]), "counted": len(found["first"])}
    return {
        "opens_unique": found["open"][0],
        "opens": found["open"][1],
        "clicks_unique": found["click"][0],
        "clicks": found["click"][1],
        "mismatches": wrong,
        "ok": not wrong,
    }


def _request(api: ApiGateway, injected, method: str, path: str, body: dict[str, Any] | None = None):
    """A request as a real client makes it: a 5xx is retried with backoff, a bounded number of times."""
    for attempt in range(CLIENT_ATTEMPTS):
        response = api.request(method, path, json_body=body)
        if response.status < 500:
            return response
        injected["api_5xx_retried"] += 1
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError(f"{method} {path}: {response.status} after {CLIENT_ATTEMPTS} attempts {response.body[:300]!r}")


# --- signup (issue 15): a confirmation is a write that makes a recipient -------------------------------
SIGNUPS_BEFORE, SIGNUPS_DURING, SIGNUPS_PENDING = 3, 3, 2  # confirmed before / while it sends / never
SIGNUP_FROM = 0.4  # progress at which the second group confirms
CONFIRM_LINK = re.compile(r"/subscribe/confirm/\S+")


def _sign_up(rt, public: ApiGateway, injected, outbox: Path, address: str) -> str:
    """POST /subscribe as a client does (a 5xx retried); returns the path of the emailed confirmation link."""
    response = _request(
        public, injected, "POST", "/subscribe", {"email": address, "list": "newsletter", "consent": True}
    )
    if response.status != 202:
        raise RuntimeError(f"POST /subscribe: {response.status} {response.body[:300]!r}")
    rt.outbox.flush()
    latest = max((outbox / "no-campaign").glob(f"{address}.*.eml"), key=lambda p: p.stat().st_mtime)
    message = message_from_bytes(latest.read_bytes(), policy=email_policy.default)
    link = CONFIRM_LINK.search(str(message.get_content()))
    if link is None:
        raise RuntimeError(f"the confirmation email to {address} has no link")
    return link.group(0)


def _confirm(public: ApiGateway, injected, link: str) -> None:
    for attempt in range(CLIENT_ATTEMPTS):  # the button, pressed again after a 5xx
        response = public.request(
            "POST", link, body="confirm=yes", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        if response.status < 500:
            if response.status != 200:
                raise RuntimeError(f"POST {link[:40]}…: {response.status} {response.body[:300]!r}")
            injected["signup_confirmed"] += 1
            return
        injected["signup_confirm_5xx_retried"] += 1
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError(f"confirming a signup: 5xx after {CLIENT_ATTEMPTS} attempts")


def audit_signups(*, received: Counter[str], rows, before: list[str], during: list[str], pending: list[str]):
    """Confirmed before the campaign: in it, mailed once. Confirmed while it sends: mailed at most once
    (the fan-out may have passed them). Never confirmed: never mailed."""
    in_ledger = {r["email"] for r in rows}
    result = {
        "confirmed_before_missing": sorted(set(before) - in_ledger),
        "confirmed_during_mailed": sum(1 for a in during if received[a]),
        "mailed_twice": sorted(a for a in [*before, *during] if received[a] > 1),
        "pending_mailed": sorted(a for a in pending if received[a] or a in in_ledger),
    }
    result["ok"] = not (result["confirmed_before_missing"] or result["mailed_twice"] or result["pending_mailed"])
    return result


# --- end signup ---------------------------------------------------------------------------------------


def _set_rate(rt, campaign_id: str, rate: float) -> None:
    """The campaign's rate, changed in its record (no API edits it); retried through injected faults."""
    for attempt in range(CLIENT_ATTEMPTS):
        try:
            rt.table("CampaignsTable").update_item(
                Key={"campaign_id": campaign_id},
                UpdateExpression="SET max_send_rate = :r",
                ExpressionAttributeValues={":r": Decimal(str(rate))},
            )
            return
        except ClientError:
            if attempt == CLIENT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def _wait(rt, arn: str, deadline: float) -> None:
    while time.monotonic() < deadline and rt.describe_execution(arn)["status"] == "RUNNING":
        time.sleep(0.1)


def run_chaos(
    *, contacts: int, seed: int, outbox: Path, rates: FaultRates | None = None, timeout: float = 600
) -> dict[str, Any]:
    rates = rates or FaultRates()
    rng = random.Random(seed)
    campaign_id = f"chaos_{seed}"
    for folder in [outbox / campaign_id, *outbox.glob(f"{campaign_id}_resend_*")]:
        shutil.rmtree(folder, ignore_errors=True)  # the audit reads these folders: only this run's mail
    scenario = rng.choice(["pause_resume", "edit", "cancel", "pause_resume_edit"])
    parameters = {"RecipientsPerMessage": 10, "FanoutPageSize": 100, "BacklogSeconds": 1}
    parameters["SignupsPerClientPerMinute"] = 1000  # one client signs everyone up, and retries 5xx
    with EmbeddedRuntime(outbox=outbox, parameters=parameters, **FAST_RECOVERY) as rt:
        campaigns = CampaignStore(rt.physical["CampaignsTable"])
        ledger = Ledger(rt.physical["DeliveriesTable"], rt.physical["BatchesTable"], rt.physical["CampaignsTable"])
        # The operator's actions go through the management API function, as they would on AWS.
        api = ApiGateway(next(f for f in rt.functions.values() if f.logical_id == "ApiFunction"))

        faults = ChaosFaults(
            seed,
            batches_table=rt.physical["BatchesTable"],
            deliveries_table=rt.physical["DeliveriesTable"],
            rates=rates,
        )
        faults.attach_queue(rt.client("sqs"), rt.physical["SendQueue"])
        rt.faults = faults
        injected = faults.injected

        def operate(method: str, path: str, body: dict[str, Any] | None = None):
            response = _request(api, injected, method, f"/campaigns/{campaign_id}{path}", body)
            if response.status not in (200, 202, 409):  # 409: the campaign ended in between
                raise RuntimeError(f"{method} {path}: {response.status} {response.body[:300]!r}")
            return response

        # The contacts are imported through the API, under DynamoDB's faults.
        documents = chaos_contacts(contacts)
        for start in range(0, len(documents), IMPORT_CHUNK):
            response = _request(
                api, injected, "POST", "/contacts", {"contacts": documents[start : start + IMPORT_CHUNK]}
            )
            if response.status != 200:
                raise RuntimeError(f"POST /contacts: {response.status} {response.body[:300]!r}")
        # The campaign goes to a segment of two lists (the fan-out reads the membership index; a
        # contact on both is sent once) less the contacts its condition leaves out.
        audience = {i["email"] for i in normalise_contacts(documents)[0] if i["attributes"]["plan"] != "excluded"}
        # Signups through the public function under the same faults, on "newsletter" (signup block).
        public = ApiGateway(next(f for f in rt.functions.values() if f.logical_id == "UnsubscribeFunction"))
        signed = {
            group: [f"signup-{group}-{n}-{seed}@example.org" for n in range(count)]
            for group, count in (("before", SIGNUPS_BEFORE), ("during", SIGNUPS_DURING), ("pending", SIGNUPS_PENDING))
        }
        links = {a: _sign_up(rt, public, injected, outbox, a) for addresses in signed.values() for a in addresses}
        for address in signed["before"]:
            _confirm(public, injected, links[address])
        audience |= set(signed["before"])  # no plan: the segment's `neq` keeps them
        arn = rt.start_campaign(
            {**CAMPAIGN, "campaign_id": campaign_id, "max_send_rate": 10000, "audience": CHAOS_AUDIENCE}
        )
        steps = {"edit": 0.3, "pause": 0.5, "cancel": 0.6}
        done_steps: set[str] = set()
        slow_until = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and rt.describe_execution(arn)["status"] == "RUNNING":
            time.sleep(0.1)
            try:
                record = campaigns.get(campaign_id)
            except CampaignNotFound:  # not persisted yet
                continue
            progress = record["processed_count"] / max(1, record["total_contacts"])
            if slow_until is None and progress >= SLOW_FROM:
                _set_rate(rt, campaign_id, SLOW_RATE)
                slow_until = time.monotonic() + SLOW_SECONDS
            elif slow_until and time.monotonic() >= slow_until:
                _set_rate(rt, campaign_id, 10000)
                slow_until = 0
            if "signup" not in done_steps and progress >= SIGNUP_FROM:  # confirmed while it sends
                for address in signed["during"]:
                    _confirm(public, injected, links[address])
                done_steps.add("signup")
            if "edit" in scenario and "edit" not in done_steps and progress >= steps["edit"]:
                operate("PATCH", "", {"subject": "Edited: hello {{ first_name | default('there') }}"})
                injected["campaign_edit"] += 1
                done_steps.add("edit")
            if "pause" in scenario and "pause" not in done_steps and progress >= steps["pause"]:
                operate("POST", "/pause")
                time.sleep(1.0)
                operate("POST", "/resume")
                injected["pause_resume"] += 1
                done_steps.add("pause")
            if scenario == "cancel" and "cancel" not in done_steps and progress >= steps["cancel"]:
                operate("POST", "/cancel")
                injected["cancel"] += 1
                done_steps.add("cancel")
        if slow_until:  # ended while slow: the re-send copies the rate
            _set_rate(rt, campaign_id, 10000)
        resend, engagement = None, None
        if rt.describe_execution(arn)["status"] != "RUNNING":
            _deliver_bounces(rt, campaign_id, ledger.deliveries_for(campaign_id), rng, injected)
            engagement = _deliver_engagement(rt, campaign_id, ledger.deliveries_for(campaign_id), rng, injected)
            resend = _resend_failed(rt, operate, campaigns, ledger, campaign_id, deadline, injected)
        faults.enabled = False
        execution = rt.describe_execution(arn)  # still RUNNING here means the campaign never finished
        open_batches = [plain(b) for b in rt.table("BatchesTable").scan()["Items"] if b["status"] != "done"]
        depth = {
            q: rt.client("sqs").get_queue_attributes(QueueUrl=rt.physical[q], AttributeNames=["All"])["Attributes"]
            for q in ("SendQueue", "SendDeadLetterQueue")
        }
        rt.outbox.flush()
        final = plain(campaigns.get(campaign_id))
        rows = ledger.deliveries_for(campaign_id)
        counted = EngagementStore(rt.physical["EngagementTable"], rt.physical["DeliveriesTable"]).totals(campaign_id)
        stored_contacts = {c["email"] for c in plain_scan(rt, "ContactsTable")}
        stored_lists = {item["list_name"] for item in plain_scan(rt, "ListsTable")}
        memberships = {(str(m["pk"]).removeprefix("list#"), m["sk"]) for m in plain_scan(rt, "AudienceTable")}
        on_lists = {(name, c["email"]) for c in plain_scan(rt, "ContactsTable") for name in c.get("lists", ())}
        if resend:
            resend.update(
                execution=rt.describe_execution(resend["execution_arn"]),
                final=plain(campaigns.get(resend["campaign_id"])),
                rows=ledger.deliveries_for(resend["campaign_id"]),
            )

    result = audit(
        seed=seed,
        contacts=contacts,
        scenario=scenario,
        execution=execution,
        final=final,
        rows=rows,
        audience=audience,
        folder=outbox / campaign_id,
        faults=faults,
        maybe=set(signed["during"]),  # confirmed while it sent (signup block)
    )
    # Imported through the API under faults: every contact stored (the table is keyed by email:
    # once), nobody else, and its list registered.
    signed_up = {a for addresses in signed.values() for a in addresses}
    result["contacts_stored"] = len(stored_contacts)
    # ... and the membership index holds every contact's every list (imports write it first).
    result["memberships_missing"] = len(on_lists - memberships)
    result["contacts_import_ok"] = (
        stored_contacts == {d["email"] for d in documents} | signed_up and {"newsletter", "vip"} <= stored_lists
    ) and not result["memberships_missing"]
    result["signup"] = audit_signups(received=_received(outbox / campaign_id), rows=rows, **signed)
    result["ok"] = result["ok"] and result["signup"]["ok"]
    result["ok"] = result["ok"] and result["contacts_import_ok"]
    if engagement is not None:
        result["engagement"] = audit_engagement(engagement, counted, rows)
        result["ok"] = result["ok"] and result["engagement"]["ok"]
    if resend:
        result["resend"] = audit_family(
            original_rows=rows,
            original_folder=outbox / campaign_id,
            resend=resend,
            folder=outbox / resend["campaign_id"],
            faults=faults,
        )
        result["ok"] = result["ok"] and result["resend"]["ok"]
    if execution["status"] == "RUNNING":
        result["stuck"] = {
            "open_batches": [
                {k: b.get(k) for k in ("batch_id", "status", "attempts", "lease_until")} for b in open_batches
            ],
            "queues": {
                q: {k: d[k] for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")}
                for q, d in depth.items()
            },
        }
    return result


CHAOS_AUDIENCE = {"lists": ["vip", "newsletter"], "match": [{"field": "plan", "op": "neq", "value": "excluded"}]}


def chaos_contacts(n: int) -> list[dict[str, Any]]:
    """The generated contacts; every 3rd also on "vip", every 10th left out by the segment's condition."""
    return [
        {
            **c,
            "lists": ["newsletter", "vip"] if i % 3 == 0 else ["newsletter"],
            "attributes": {"plan": "excluded" if i % 10 == 0 else "pro"},
        }
        for i, c in enumerate(generated_contacts(n))
    ]


def plain_scan(rt, table: str) -> list[dict[str, Any]]:
    deserialize = TypeDeserializer().deserialize
    pages = rt.client("dynamodb").get_paginator("scan").paginate(TableName=rt.physical[table])
    return [{k: deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]


def _resend_failed(rt, operate, campaigns, ledger, campaign_id: str, deadline: float, injected) -> dict | None:
    """The operator re-sends to the failed recipients with a double click (two requests at once),
    under faults; both must answer with the same re-send, which then runs to its end."""
    if not any(r["status"] == "failed" for r in ledger.deliveries_for(campaign_id)):
        return None
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: operate("POST", "/resend-failed"), range(2)))
    bodies = [json.loads(a.body) for a in answers]
    # 202 for the call that started it, 200 or 202 for the repeat: the same re-send either way.
    if not all(a.status in (200, 202) for a in answers) or len({b["campaign_id"] for b in bodies}) != 1:
        raise RuntimeError(f"resend-failed double click: {[(a.status, a.body[:200]) for a in answers]!r}")
    injected["resend_double_click"] += 1
    resend_id = bodies[0]["campaign_id"]
    arn = campaigns.get(resend_id)["execution_arn"]
    _wait(rt, arn, deadline)
    return {"campaign_id": resend_id, "execution_arn": arn}


def _received(folder: Path) -> Counter[str]:
    received: Counter[str] = Counter()
    for path in folder.glob("*.eml") if folder.exists() else []:
        received[parseaddr(message_from_bytes(path.read_bytes()).get("To", ""))[1].lower()] += 1
    return received


def _counter_mismatches(final: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_status = Counter(r["status"] for r in rows)
    counters = {
        "sent_count": by_status["sent"],
        "failed_count": by_status["failed"],
        "skipped_count": by_status["skipped"],
        "processed_count": len(rows),
    }
    counters["bounced_count"] = sum(1 for r in rows if r.get("feedback") == "bounced")
    return {k: {"counter": final.get(k) or 0, "ledger": v} for k, v in counters.items() if (final.get(k) or 0) != v}


def audit_family(*, original_rows, original_folder, resend, folder, faults) -> dict[str, Any]:
    """A campaign and its re-send: nobody receives two emails across both (outside the crash window),
    the re-send's counters equal its ledger, and its recipients are exactly the original's failed ones."""
    family = _received(original_folder) + _received(folder)
    twice = {r for r, n in family.items() if n > 1}
    failed = {r["email"] for r in original_rows if r["status"] == "failed"}
    rows = resend["rows"]
    recipients = {r["email"] for r in rows}
    mismatches = _counter_mismatches(resend["final"], rows)
    received = _received(folder)
    sent_rows = {r["email"] for r in rows if r["status"] == "sent"}
    return {
        "campaign_id": resend["campaign_id"],
        "execution_status": resend["execution"]["status"],
        "final": {
            k: resend["final"].get(k)
            for k in ("status", "total_contacts", "sent_count", "failed_count", "skipped_count", "processed_count")
        },
        "original_failed": len(failed),
        "family_duplicates": len(twice - faults.crash_window),
        "family_crash_window_duplicates": len(twice & faults.crash_window),
        "lost": len(failed - recipients),
        "not_failed_in_original": len(recipients - failed),
        "counter_mismatches": len(mismatches),
        "counter_mismatch_detail": mismatches,
        "ok": (
            resend["execution"]["status"] == "SUCCEEDED"
            and resend["final"].get("status") == "completed"
            and not (twice - faults.crash_window)
            and recipients == failed
            and not mismatches
            and resend["final"].get("total_contacts") == len(failed)
            and sent_rows <= set(received)
            and set(received) - sent_rows <= faults.crash_window
        ),
    }


def audit(
    *, seed, contacts, scenario, execution, final, rows, audience, folder, faults, maybe=frozenset()
) -> dict[str, Any]:
    """`maybe`: recipients that joined while the campaign sent (signups confirmed then): in it or not."""
    received = _received(folder)
    twice = {r for r, n in received.items() if n > 1}
    ledger_emails = {r["email"] for r in rows}
    mismatches = _counter_mismatches(final, rows)
    sent_rows = {r["email"] for r in rows if r["status"] == "sent"}
    # A worker that died after SES accepted an email and before the ledger write leaves that email's
    # fate unknown: the next attempt sends it again (a crash-window duplicate) or, once the campaign
    # is cancelled, records it as skipped. Both are counted, apart from real disagreements.
    unrecorded = set(received) - sent_rows
    return {
        "seed": seed,
        "contacts": contacts,
        "scenario": scenario,
        "execution_status": execution["status"],
        "faults_injected": dict(sorted(faults.injected.items())),
        "final": {
            k: final.get(k)
            for k in (
                "campaign_id",
                "status",
                "total_contacts",
                "queued_count",
                "sent_count",
                "failed_count",
                "skipped_count",
                "processed_count",
                "bounced_count",
            )
        },
        "duplicates": len(twice - faults.crash_window),
        "crash_window_duplicates": len(twice & faults.crash_window),
        "lost": len(audience - ledger_emails),
        "lost_sample": sorted(audience - ledger_emails)[:5],
        # recipients the segment leaves out, in the ledger or the outbox (issue 15)
        "outside_audience": len((ledger_emails | set(received)) - audience - maybe),
        "counter_mismatches": len(mismatches),
        "counter_mismatch_detail": mismatches,
        "eml_recipients": len(received),
        "crash_window_unrecorded": len(unrecorded & faults.crash_window),
        "eml_agrees_with_record": (
            sent_rows <= set(received)
            and unrecorded <= faults.crash_window
            and len(sent_rows) == final.get("sent_count")
        ),
        "ok": (
            execution["status"] == "SUCCEEDED"
            and not (twice - faults.crash_window)
            and not (audience - ledger_emails)
            and not ((ledger_emails | set(received)) - audience - maybe)
            and not mismatches
            and sent_rows <= set(received)
            and unrecorded <= faults.crash_window
            and final.get("status") in ("completed", "cancelled")
        ),
    }
