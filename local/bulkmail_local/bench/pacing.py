"""`bulkmail bench pacing`: how close a paced campaign comes to its rate against a throttling SES."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail_local.bench import load_generated_contacts
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.faults import SesRateLimit

BENCH_CAMPAIGN = {
    "campaign_name": "Pacing check",
    "subject": "Hello {{ first_name | default('there') }}!",
    "body": "Dear {{first_name}} {{last_name}}, welcome to {{company}}",
    "from_email": "noreply@example.com",
}


def bench_pacing(*, rate: float, seconds: float, outbox: Path, workers: int = 5) -> dict[str, Any]:
    """A campaign at max_send_rate=rate against an SES that throttles above rate."""
    contacts = int(rate * seconds)
    # One second of sending per message: small enough that all workers stay busy almost to the end
    # (per-worker pacing loses up to one invocation's time per worker in the tail), large enough that
    # the per-message requests (campaign, claim, contacts, record) stay a small share of the work.
    per_message = max(1, min(50, round(rate / workers)))
    parameters = {
        "RecipientsPerMessage": per_message,
        "FanoutPageSize": max(per_message, 200),
        "WorkerMaxConcurrency": workers,
    }
    with EmbeddedRuntime(outbox=outbox, parameters=parameters) as rt:
        load_generated_contacts(rt, contacts)
        limiter = SesRateLimit(rate)
        rt.faults = limiter
        campaign_id = f"pacing_{int(rate)}_{int(time.time())}"
        arn = rt.start_campaign({**BENCH_CAMPAIGN, "campaign_id": campaign_id, "max_send_rate": rate})
        execution = rt.wait_for_execution(arn, timeout=seconds * 5 + 120)
        record = CampaignStore(rt.physical["CampaignsTable"]).get(campaign_id)
    sends = limiter.accepted
    window = (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    achieved = (len(sends) - 1) / window if window > 0 else 0.0
    return {
        "target": rate,
        "seconds": round(window, 2),
        "contacts": contacts,
        "achieved": round(achieved, 2),
        "achieved_ratio": round(achieved / rate, 3),
        "throttled": limiter.throttled,
        "sent": record["sent_count"],
        "failed": record["failed_count"],
        "status": record["status"],
        "execution": execution["status"],
        "workers": workers,
        "recipients_per_message": per_message,
    }
