"""`bulkmail chaos`: whole campaigns on the embedded runtime under injected faults, then an audit.

The audit compares three independent records: the `.eml` files SES accepted (what people received),
the delivery ledger, and the campaign's counters.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections import Counter
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.dynamo import plain
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


def _bounce_event(campaign_id: str, email: str, message_id: str) -> dict[str, Any]:
    event = json.loads((PROJECT_ROOT / "events" / "feedback.json").read_text())
    mail = event["detail"]["mail"]
    mail["messageId"], mail["destination"] = message_id, [email]
    mail["headers"] = [h for h in mail["headers"] if h["name"] != "X-Bulkmail-Campaign"]
    mail["headers"].append({"name": "X-Bulkmail-Campaign", "value": campaign_id})
    event["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = email
    return event


def _deliver_bounces(rt, campaign_id: str, rows: list[dict[str, Any]], rng: random.Random, injected) -> None:
    """Bounces for some sent recipients, each delivered twice (EventBridge is at-least-once), each
    delivery retried as EventBridge retries a failed asynchronous invocation."""
    feedback = next(f for f in rt.functions.values() if f.logical_id == "FeedbackFunction")
    for row in rows:
        if row["status"] != "sent" or rng.random() >= BOUNCE_SHARE:
            continue
        event = _bounce_event(campaign_id, row["email"], row.get("message_id", ""))
        for _ in range(2):
            for attempt in range(EVENTBRIDGE_ATTEMPTS):
                try:
                    feedback.invoke(event)
                    break
                except Exception:
                    injected["feedback_invocation_retried"] += 1
                    if attempt == EVENTBRIDGE_ATTEMPTS - 1:
                        raise
        injected["bounce_delivered_twice"] += 1


def run_chaos(
    *, contacts: int, seed: int, outbox: Path, rates: FaultRates | None = None, timeout: float = 600
) -> dict[str, Any]:
    rates = rates or FaultRates()
    rng = random.Random(seed)
    campaign_id = f"chaos_{seed}"
    shutil.rmtree(outbox / campaign_id, ignore_errors=True)  # the audit reads this folder: only this run's mail
    scenario = rng.choice(["pause_resume", "edit", "cancel", "pause_resume_edit"])
    parameters = {"RecipientsPerMessage": 10, "FanoutPageSize": 100, "BacklogSeconds": 1}
    with EmbeddedRuntime(outbox=outbox, parameters=parameters, **FAST_RECOVERY) as rt:
        campaigns = CampaignStore(rt.physical["CampaignsTable"])
        ledger = Ledger(rt.physical["DeliveriesTable"], rt.physical["BatchesTable"], rt.physical["CampaignsTable"])
        # The operator's actions go through the management API function, as they would on AWS.
        api = ApiGateway(next(f for f in rt.functions.values() if f.logical_id == "ApiFunction"))

        def operate(method: str, path: str, body: dict[str, Any] | None = None) -> None:
            response = api.request(method, f"/campaigns/{campaign_id}{path}", json_body=body)
            if response.status not in (200, 409):  # 409: the campaign ended in between
                raise RuntimeError(f"{method} {path}: {response.status} {response.body[:300]!r}")

        items, _ = normalise_contacts(generated_contacts(contacts))
        ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"]).put_many(items)
        audience = {i["email"] for i in items}

        faults = ChaosFaults(
            seed,
            batches_table=rt.physical["BatchesTable"],
            deliveries_table=rt.physical["DeliveriesTable"],
            rates=rates,
        )
        faults.attach_queue(rt.client("sqs"), rt.physical["SendQueue"])
        rt.faults = faults
        arn = rt.start_campaign({**CAMPAIGN, "campaign_id": campaign_id, "max_send_rate": 10000})
        injected = faults.injected
        steps = {"edit": 0.3, "pause": 0.5, "cancel": 0.6}
        done_steps: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and rt.describe_execution(arn)["status"] == "RUNNING":
            time.sleep(0.1)
            try:
                record = campaigns.get(campaign_id)
            except CampaignNotFound:  # not persisted yet
                continue
            progress = record["processed_count"] / max(1, record["total_contacts"])
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
        if rt.describe_execution(arn)["status"] != "RUNNING":
            _deliver_bounces(rt, campaign_id, ledger.deliveries_for(campaign_id), rng, injected)
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
    )
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


def audit(*, seed, contacts, scenario, execution, final, rows, audience, folder, faults) -> dict[str, Any]:
    received: Counter[str] = Counter()
    for path in folder.glob("*.eml") if folder.exists() else []:
        received[parseaddr(message_from_bytes(path.read_bytes()).get("To", ""))[1].lower()] += 1
    twice = {r for r, n in received.items() if n > 1}
    by_status = Counter(r["status"] for r in rows)
    ledger_emails = {r["email"] for r in rows}
    counters = {
        "sent_count": by_status["sent"],
        "failed_count": by_status["failed"],
        "skipped_count": by_status["skipped"],
        "processed_count": len(rows),
    }
    counters["bounced_count"] = sum(1 for r in rows if r.get("feedback") == "bounced")
    mismatches = {
        k: {"counter": final.get(k) or 0, "ledger": v} for k, v in counters.items() if (final.get(k) or 0) != v
    }
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
            and not mismatches
            and sent_rows <= set(received)
            and unrecorded <= faults.crash_window
            and final.get("status") in ("completed", "cancelled")
        ),
    }
