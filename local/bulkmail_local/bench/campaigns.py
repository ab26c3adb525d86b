"""`bulkmail bench`: whole campaigns on the embedded runtime at several sizes, measured.

Each size runs on a fresh runtime (tables start empty) with the template's parameters except two
local ones: the completion and back-pressure polls every second, and a backlog bound of a few
thousand recipients (the emulator's SQS slows down with queue depth, as the notes measure). The
campaign's send rate is set far above what the emulator reaches, so nothing paces it.

Figures per size: the whole run (StartExecution to the execution's end) and the send phase (first
to last SES acceptance), emails/s, AWS requests per email by service and operation as botocore sent
them, DynamoDB capacity units, Lambda invocations, Step Functions transitions and history events
(split into per page / per poll / fixed), and the projected cost per 1M emails (cost.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.contact_import import normalise_contacts
from bulkmail.models import Contact
from bulkmail.rendering import build_mime, render
from bulkmail_local.bench import SAMPLE_NEWSLETTER, load_generated_contacts
from bulkmail_local.bench.cost import Deployment, cost_per_million, load_prices
from bulkmail_local.bench.seed_design import run_seed_design
from bulkmail_local.demo import generated_contacts
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.metering import Meter
from bulkmail_local.runtime.stack import ACCOUNT, PROJECT_ROOT, REGION
from bulkmail_local.runtime.template import load_template

BENCH_PARAMETERS = {"BacklogSeconds": 3}
BENCH_RATE = 1000  # emails/s: a bound of 3 s × 1000 = 3,000 queued recipients, and no pacing here
CAMPAIGN = {
    "campaign_name": "Benchmark",
    "subject": "Hello {{ first_name | default('there') }}!",
    "from_email": "noreply@example.com",
    "max_send_rate": BENCH_RATE,
}
# DynamoDB lets one item take at most 1,000 write units a second; a campaign's busiest item may use
# this share of it (the rest is headroom for bursts, feedback and engagement): the ceiling below.
ITEM_WRITE_UNITS_PER_SECOND = 1000
HOT_ITEM_SHARE = 0.3
RENDER_SAMPLE = 200  # recipients rendered to time render + MIME
# (emails/s, WorkerMaxConcurrency, FanoutPageSize) of a campaign at 1,000 and 10,000 emails/s.
SCALED_DEPLOYMENTS = ((1000.0, 85, 1000), (10000.0, 850, 10000))


def bench_campaign(body_file: Path | None = None) -> dict[str, Any]:
    """The benchmark's campaign: the 60 KB sample newsletter, or the HTML (or text) of `body_file`."""
    path = body_file or SAMPLE_NEWSLETTER
    body = path.read_text(encoding="utf-8")
    html = path.suffix.lower() in (".html", ".htm") or body.lstrip()[:1] == "<"
    # To the list every generated contact is on: its members are found through the membership index.
    return {**CAMPAIGN, "list": "newsletter", ("body_html" if html else "body"): body}


def render_ms_per_email(campaign: dict[str, Any], n: int = RENDER_SAMPLE) -> float:
    """CPU milliseconds of render + MIME (flattened to bytes) per email, as a warm worker spends them
    (the templates compiled once per campaign version), on generated contacts."""
    record = {**campaign, "campaign_id": "render-timing"}
    contacts = [Contact.from_item(c) for c in normalise_contacts(generated_contacts(n))[0]]
    build_mime(record, contacts[0], render(record, contacts[0])).as_bytes()  # compile
    started = time.process_time()
    for c in contacts:
        rendered = render(record, c, unsubscribe_url=f"https://example.com/v1/unsubscribe/{c.email}")
        build_mime(record, c, rendered).as_bytes()
    return round((time.process_time() - started) / len(contacts) * 1000, 3)


# Each step of the workflow's loop is its task and its choice; a poll is a wait, then a step.
STEP_STATES = ("AdvanceCampaign", "NextStep")
WAIT_STATE = "WaitForProgress"


def history_by_state(rt: EmbeddedRuntime, arn: str) -> tuple[Counter, Counter, int]:
    """(times each state was entered, history events that belong to each state, all events)."""
    sfn = rt.client("stepfunctions")
    entered: Counter[str] = Counter()
    events_of: Counter[str] = Counter()
    current, total = "", 0
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        for event in page["events"]:
            total += 1
            if "stateEnteredEventDetails" in event:
                current = event["stateEnteredEventDetails"]["name"]
                entered[current] += 1
            events_of[current or "(execution)"] += 1
            if "stateExitedEventDetails" in event:
                current = ""
    return entered, events_of, total


def workflow_figures(entered: Counter, events_of: Counter, total_events: int, pages: int) -> dict[str, Any]:
    """Transitions and history events per step and per wait, and so per page (a step) and per poll
    (a wait and a step), plus the fixed rest (validation, persistence, the end)."""
    steps, waits = entered[STEP_STATES[0]], entered[WAIT_STATE]
    events_per_step = sum(events_of[s] / entered[s] for s in STEP_STATES if entered[s])
    events_per_wait = events_of[WAIT_STATE] / waits if waits else 0.0
    transitions = sum(entered.values())
    return {
        "state_transitions": transitions,
        "history_events": total_events,
        "pages": pages,
        "steps": steps,
        "polls": waits,
        "transitions_per_page": float(len(STEP_STATES)),
        "transitions_per_poll": float(len(STEP_STATES) + 1),
        "transitions_fixed": transitions - len(STEP_STATES) * steps - waits,
        "events_per_page": round(events_per_step, 2),
        "events_per_poll": round(events_per_step + events_per_wait, 2),
        "events_fixed": round(total_events - events_per_step * steps - events_per_wait * waits),
    }


def usage_per_email(
    meter: Meter, capacity: dict[str, float], invocations: Counter, workflow: dict[str, Any], sent: int
) -> dict[str, float]:
    """What one email used, as cost_per_million prices it. `capacity`: DynamoDB's read and write units in all."""
    by_service = meter.by_service()
    return {
        "ses_requests": by_service["sesv2"] / sent,
        "sqs_requests": by_service["sqs"] / sent,
        "secretsmanager_requests": by_service["secrets-manager"] / sent,
        "dynamodb_read_units": capacity["read"] / sent,
        "dynamodb_write_units": capacity["write"] / sent,
        "worker_invocations": invocations["SendEmailsFunction"] / sent,
        "transitions_per_page": workflow["transitions_per_page"],
        "transitions_per_poll": workflow["transitions_per_poll"],
    }


def bench_size(
    contacts: int,
    outbox: Path,
    prices: dict[str, Any],
    deployment: Deployment,
    campaign: dict[str, Any] | None = None,
) -> dict[str, Any]:
    campaign = campaign or bench_campaign()
    with EmbeddedRuntime(outbox=outbox, parameters=BENCH_PARAMETERS) as rt:
        load_generated_contacts(rt, contacts)
        meter = Meter(ACCOUNT, REGION)
        invocations_before = {f.logical_id: f.invocations for f in rt.functions.values()}
        rt.meter = meter
        campaign_id = f"bench_{contacts}_{int(time.time())}"
        started = time.monotonic()
        arn = rt.start_campaign({**campaign, "campaign_id": campaign_id})
        execution = rt.wait_for_execution(arn, timeout=max(600, contacts / 20))
        whole = time.monotonic() - started
        rt.meter = None
        record = CampaignStore(rt.physical["CampaignsTable"]).get(campaign_id)
        tables = {physical: logical for logical, physical in rt.physical.items()}
        audience_tables = [rt.physical[t] for t in ("ContactsTable", "AudienceTable") if t in rt.physical]
        entered, events_of, total_events = history_by_state(rt, arn)
        invocations = Counter(
            {f.logical_id: f.invocations - invocations_before[f.logical_id] for f in rt.functions.values()}
        )
    sent = max(1, int(record["sent_count"]))
    first, last = meter.first_at.get("sesv2.SendEmail", started), meter.last_at.get("sesv2.SendEmail", started)
    send_phase = max(last - first, 1e-9)
    workflow = workflow_figures(entered, events_of, total_events, int(record["fanout_page"]))
    usage = usage_per_email(meter, meter.capacity, invocations, workflow, sent)
    non_ses = meter.non_ses_requests() + sum(invocations.values())
    # While sending (a campaign's one-off writes, such as storing its content, do not bound its rate).
    (busiest_table, busiest_key), busiest_units = meter.busiest_item(sending=True)
    busiest_per_email = busiest_units / sent
    (whole_table, whole_key), whole_units = meter.busiest_item()
    return {
        "contacts": contacts,
        "sent": int(record["sent_count"]),
        "status": record["status"],
        "execution": execution["status"],
        "whole_seconds": round(whole, 2),
        "send_seconds": round(send_phase, 2),
        "emails_per_second": round(sent / whole, 1),
        "send_phase_emails_per_second": round(sent / send_phase, 1),
        "requests_per_email": meter.per_email(sent),
        "lambda_invocations": dict(invocations),
        "non_ses_requests_per_email": round(non_ses / sent, 4),
        "dynamodb_units_per_email": {
            "read": round(usage["dynamodb_read_units"], 3),
            "write": round(usage["dynamodb_write_units"], 3),
        },
        "workflow": workflow,
        "cost_per_million": cost_per_million(usage, deployment, prices),
        # The same measured usage at one campaign's 1,000 and 10,000 emails/s (docs/scale.md: workers,
        # one per ~12 emails/s, and page size for those rates).
        "cost_per_million_at": {
            str(int(rate)): cost_per_million(
                usage, replace(deployment, send_rate=rate, worker_concurrency=workers, page_size=page), prices
            )["non_ses_total"]
            for rate, workers, page in SCALED_DEPLOYMENTS
        },
        "busiest_item": {"table": tables.get(busiest_table, busiest_table), "key": busiest_key},
        "busiest_item_whole_run": {
            "table": tables.get(whole_table, whole_table),
            "key": whole_key,
            "write_units": whole_units,
        },
        "busiest_item_write_units_per_email": round(busiest_per_email, 4),
        "ceiling_emails_per_second": round(ITEM_WRITE_UNITS_PER_SECOND * HOT_ITEM_SHARE / busiest_per_email)
        if busiest_per_email
        else None,
        # Read units of the Scans and Queries of the contacts and the audience (membership) tables:
        # finding the audience (the estimate and the fan-out's pages).
        "audience_read_units": round(sum(meter.table_scan_reads[t] for t in audience_tables), 1),
    }


def bench_seed(contacts: int, outbox: Path, workers: int) -> dict[str, Any]:
    with EmbeddedRuntime(outbox=outbox, parameters=BENCH_PARAMETERS) as rt:
        load_generated_contacts(rt, contacts)
        meter = Meter(ACCOUNT, REGION)
        rt.meter = meter
        result = run_seed_design(
            rt, [c["email"] for c in generated_contacts(contacts)], workers=workers, timeout=max(900, contacts)
        )
        rt.meter = None
    sent = max(1, result["sent"])
    non_ses = meter.non_ses_requests() + result["invocations"]
    return {
        "contacts": contacts,
        "sent": result["sent"],
        "whole_seconds": round(result["seconds"], 2),
        "emails_per_second": round(result["sent"] / result["seconds"], 1),
        "requests_per_email": meter.per_email(sent),
        "lambda_invocations": result["invocations"],
        "non_ses_requests_per_email": round(non_ses / sent, 4),
    }


def run_bench(
    sizes: list[int],
    *,
    seed_contacts: int | None,
    outbox: Path,
    body_file: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    prices = load_prices()
    deployment = Deployment.from_template(load_template(PROJECT_ROOT / "template.yaml"))
    campaign = bench_campaign(body_file)
    body_bytes = len((campaign.get("body_html") or campaign.get("body") or "").encode())
    progress(f"content: {body_file or 'the sample newsletter'} ({body_bytes:,} bytes)")
    render_ms = render_ms_per_email(campaign)
    results = []
    for size in sizes:
        progress(f"bulkmail, {size:,} contacts")
        results.append(bench_size(size, outbox / f"bulkmail-{size}", prices, deployment, campaign))
        progress(f"  {results[-1]['whole_seconds']} s, {results[-1]['emails_per_second']} emails/s")
    seed = None
    if seed_contacts:
        progress(f"seed per-email design, {seed_contacts:,} contacts")
        seed = bench_seed(seed_contacts, outbox / f"seed-{seed_contacts}", workers=deployment.worker_concurrency)
        progress(f"  {seed['whole_seconds']} s, {seed['emails_per_second']} emails/s")
    largest = results[-1]
    same_size = next((r for r in results if seed and r["contacts"] == seed["contacts"]), None)
    per_email_cost = [r["cost_per_million"]["non_ses_total"] for r in results]
    cost = largest["cost_per_million"]
    return {
        "body_bytes": body_bytes,
        # The issue-14 figures, for the largest size: cost, the busiest item and what it allows, CPU.
        "non_ses_cost_per_million": cost["non_ses_total"],
        "ses_cost_per_million": cost["ses"],
        "busiest_item_write_units_per_email": largest["busiest_item_write_units_per_email"],
        "ceiling_emails_per_second": largest["ceiling_emails_per_second"],
        "render_ms_per_email": render_ms,
        "audience_read_units": largest["audience_read_units"],
        "non_ses_cost_per_million_at": largest["cost_per_million_at"],
        "prices_as_of": prices["as_of"],
        "deployment": deployment.__dict__,
        "sizes": results,
        "seed_design": seed,
        "speedup_vs_seed": round(same_size["emails_per_second"] / seed["emails_per_second"], 1)
        if seed and same_size
        else None,
        "non_ses_requests_per_email": largest["non_ses_requests_per_email"],
        "cost_per_million": largest["cost_per_million"],
        "non_ses_cost_spread": round(max(per_email_cost) / min(per_email_cost), 3) if min(per_email_cost) else None,
    }
