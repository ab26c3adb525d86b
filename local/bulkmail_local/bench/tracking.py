"""`bulkmail bench tracking`: what open and click tracking adds per 1M emails, measured.

One tracked campaign on the embedded runtime (the tracked configuration set: SES publishes a delivery
per email), then opens from a share of the recipients and clicks from another, each through the
default bus to FeedbackFunction as SES publishes them. Every AWS request of the whole run is metered;
the cost is the campaign's own lines (cost.py) plus FeedbackFunction's invocations, priced as the
worker's are. EventBridge does not bill events AWS services put on the default bus.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.engagement import EngagementStore
from bulkmail.adapters.ledger import Ledger
from bulkmail_local.bench import load_generated_contacts
from bulkmail_local.bench.campaigns import (
    BENCH_PARAMETERS,
    CAMPAIGN,
    history_by_state,
    usage_per_email,
    workflow_figures,
)
from bulkmail_local.bench.cost import MILLION, Deployment, cost_per_million, load_prices
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.metering import Meter
from bulkmail_local.runtime.ses_events import PUBLISHER_THREAD
from bulkmail_local.runtime.stack import ACCOUNT, PROJECT_ROOT, REGION
from bulkmail_local.runtime.template import load_template

BODY_HTML = '<html><body><p>Dear {{first_name}}, <a href="https://example.org/news">read on</a>.</p></body></html>'
FEEDBACK_SECONDS = 0.05  # one event: a transaction of a few items (a typical in-region latency)
# Where SES's events reach FeedbackFunction here: the default bus's delivery thread. The campaign's own
# meter leaves it out; this one counts it.
_EVENT_THREADS = (PUBLISHER_THREAD,)


class _Meters:
    def __init__(self, *meters: Meter):
        self.meters = meters

    def record(self, event_name: str, request: Any, response: Any) -> None:
        for meter in self.meters:
            meter.record(event_name, request, response)


def _engage(rt: EmbeddedRuntime, campaign_id: str, opens: float, clicks: float, seed: int) -> Counter[str]:
    """Opens and clicks of a share of the sent recipients, as SES publishes them (a second open from a
    third of the openers: opens count events, unique opens people)."""
    assert rt.ses_events is not None
    rng = random.Random(seed)
    rows = Ledger(rt.physical["DeliveriesTable"], rt.physical["BatchesTable"], rt.physical["CampaignsTable"])
    made: Counter[str] = Counter()
    tags = {"campaign_id": campaign_id, "bulkmail-tracking": "opens-clicks"}
    for row in rows.deliveries_for(campaign_id):
        if row["status"] != "sent":
            continue
        mail = {
            "m": row["message_id"],
            "s": CAMPAIGN["from_email"],
            "d": [row["email"]],
            "c": rt.physical["TrackedConfigurationSet"],
            "t": tags,
        }
        events = []
        if rng.random() < opens:
            events.append(rt.ses_events.event("open", mail, {"timestamp": "2026-12-01T09:00:00.000Z"}))
            if rng.random() < 1 / 3:
                events.append(rt.ses_events.event("open", mail, {"timestamp": "2026-12-01T10:00:00.000Z"}))
        if rng.random() < clicks:
            click = {"timestamp": "2026-12-01T09:01:00.000Z", "link": "https://example.org/news", "linkTags": {}}
            events.append(rt.ses_events.event("click", mail, click))
        rt.ses_events.publish(events)
        made.update(e["detail"]["eventType"] for e in events)
    return made


def bench_tracking(contacts: int, *, opens: float, clicks: float, outbox: Path, seed: int = 7) -> dict[str, Any]:
    prices = load_prices()
    deployment = Deployment.from_template(load_template(PROJECT_ROOT / "template.yaml"))
    with EmbeddedRuntime(outbox=outbox, parameters=BENCH_PARAMETERS) as rt:
        load_generated_contacts(rt, contacts)
        meter = Meter(ACCOUNT, REGION)
        events = Meter(ACCOUNT, REGION, counts=lambda: threading.current_thread().name in _EVENT_THREADS)
        before = {f.logical_id: f.invocations for f in rt.functions.values()}
        rt.meter = _Meters(meter, events)  # type: ignore[assignment]
        campaign_id = f"bench_tracking_{contacts}_{int(time.time())}"
        campaign = {**CAMPAIGN, "campaign_id": campaign_id, "body_html": BODY_HTML}
        arn = rt.start_campaign({**campaign, "track_opens": True, "track_clicks": True})
        execution = rt.wait_for_execution(arn, timeout=max(600, contacts / 20))
        rt.outbox.flush()  # every delivery published
        made = _engage(rt, campaign_id, opens, clicks, seed)
        if rt.ses_events is None or not rt.ses_events.wait_idle(timeout=max(60, contacts / 10)):
            raise RuntimeError("the events were not all delivered in time")
        rt.meter = None
        record = CampaignStore(rt.physical["CampaignsTable"]).get(campaign_id)
        totals = EngagementStore(rt.physical["EngagementTable"], rt.physical["DeliveriesTable"]).totals(campaign_id)
        entered, events_of, total_events = history_by_state(rt, arn)
        invocations = Counter({f.logical_id: f.invocations - before[f.logical_id] for f in rt.functions.values()})
    sent = max(1, int(record["sent_count"]))
    workflow = workflow_figures(entered, events_of, total_events, int(record["fanout_page"]))
    capacity = {kind: meter.capacity[kind] + events.capacity[kind] for kind in ("read", "write")}
    usage = usage_per_email(meter, capacity, invocations, workflow, sent)
    cost = cost_per_million(usage, deployment, prices)
    feedback_per_email = invocations["FeedbackFunction"] / sent
    memory_gb = 256 / 1024  # FeedbackFunction: the Globals' MemorySize
    cost["feedback_lambda"] = round(
        MILLION
        * feedback_per_email
        * (
            prices["lambda_per_million_requests"] / MILLION
            + FEEDBACK_SECONDS * memory_gb * prices["lambda_per_gb_second"]
        ),
        4,
    )
    cost["non_ses_total"] = round(cost["non_ses_total"] + cost["feedback_lambda"], 4)
    cost["non_ses_share_of_ses"] = round(cost["non_ses_total"] / cost["ses"], 4) if cost["ses"] else 0.0
    kinds = totals["kinds"]
    return {
        "contacts": contacts,
        "sent": int(record["sent_count"]),
        "execution": execution["status"],
        "open_share": opens,
        "click_share": clicks,
        "events_published": {"Delivery": kinds.get("delivered", {}).get("n", 0), **made},
        "counted": {k: {"total": v["n"], "unique": v["u"]} for k, v in sorted(kinds.items())},
        "feedback_invocations_per_email": round(feedback_per_email, 4),
        "dynamodb_units_per_email": {
            "read": round(usage["dynamodb_read_units"], 3),
            "write": round(usage["dynamodb_write_units"], 3),
        },
        "requests_per_email": meter.per_email(sent),
        "event_requests_per_email": {k: v for k, v in events.per_email(sent).items() if k.startswith("dynamodb.")},
        "cost_per_million": cost,
    }
