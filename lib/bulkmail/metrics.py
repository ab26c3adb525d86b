"""What bulkmail measures, by name: the one place metric names are decided (alarms and the dashboard
in template.yaml read them).

Handlers hand these to Powertools Metrics (CloudWatch EMF through the function's log: no
PutMetricData, no extra request). One namespace (POWERTOOLS_METRICS_NAMESPACE) and one dimension
(service): a campaign id as a dimension would make a new custom metric per campaign, billed monthly
each; per-campaign numbers are on the campaign record and in its events instead. Failure classes and
skip reasons are part of the metric name, from the closed sets below, so one invocation stays one EMF
document (Powertools' single_metric would print a document per metric).

Worker, per invocation (summed over its batches):
  EmailsSent, EmailsFailed, EmailsSkipped       every invocation, zeros included (the alarm's math needs data)
  EmailsFailed.<class>, EmailsSkipped.<reason>  when non-zero
  EmailsThrottled                               throttled send attempts (retried in place or via the queue)
  SendLatency                                   milliseconds per accepted email (a value each: percentiles work)
Workflow, per AdvanceCampaign step: RecipientsBacklog (queued, not yet sent, failed or skipped, as the
  step found the campaign: its Maximum shows workers falling behind).
Feedback, per recorded event: EmailsBounced, EmailsComplained.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from bulkmail.models import DeliveryStatus, Outcome

COUNT, MILLISECONDS = "Count", "Milliseconds"

# Why a recipient failed, as decided where it failed (sending.py sets Outcome.failure_class).
FAILURE_CLASSES = ("Rejected", "InvalidAddress", "RenderError", "Transient", "DeadLettered")
# Skip reasons (the ledger's reason codes) → metric suffix; anything else counts as Other.
SKIP_REASONS = {
    "unsubscribed": "Unsubscribed",
    "bounced": "Bounced",
    "complained": "Complained",
    "contact_deleted": "ContactDeleted",
    "cancelled": "Cancelled",
    "campaign_failed": "CampaignFailed",
}
_TOTALS = {
    DeliveryStatus.SENT: "EmailsSent",
    DeliveryStatus.FAILED: "EmailsFailed",
    DeliveryStatus.SKIPPED: "EmailsSkipped",
}
# Feedback (FeedbackFunction): a bounce or complaint recorded on a ledger row, by its kind.
_FEEDBACK = {"bounced": "EmailsBounced", "complained": "EmailsComplained"}
# Engagement (FeedbackFunction): an open, click or delivery outcome counted once, by its kind.
_ENGAGEMENT = {
    "open": "EmailsOpened",
    "click": "LinksClicked",
    "delivered": "EmailsDelivered",
    "delivery_delayed": "EmailsDeliveryDelayed",
    "rejected": "EmailsRejected",
    "rendering_failed": "EmailsRenderingFailed",
}
# Every name this module can emit (the template's alarms and dashboard may use only these).
METRIC_NAMES = frozenset(
    [
        *_TOTALS.values(),
        *(f"EmailsFailed.{c}" for c in FAILURE_CLASSES),
        *(f"EmailsSkipped.{r}" for r in [*SKIP_REASONS.values(), "Other"]),
        "EmailsThrottled",
        "SendLatency",
        "RecipientsBacklog",
        *_FEEDBACK.values(),
        *_ENGAGEMENT.values(),
    ]
)


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: str, value: float) -> Any: ...


@dataclass
class SendStats:
    """One worker invocation's sending, added up: recorded outcomes (what reached the ledger, so the
    metrics agree with the counters), throttled attempts and send latencies."""

    counts: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, outcome: Outcome) -> None:
        self.counts[_TOTALS[outcome.status]] += 1
        if outcome.status is DeliveryStatus.FAILED:
            cls = outcome.failure_class if outcome.failure_class in FAILURE_CLASSES else "Rejected"
            self.counts[f"EmailsFailed.{cls}"] += 1
        elif outcome.status is DeliveryStatus.SKIPPED:
            self.counts[f"EmailsSkipped.{SKIP_REASONS.get(outcome.reason, 'Other')}"] += 1

    def emit(self, metrics: MetricsSink) -> None:
        for name in _TOTALS.values():
            metrics.add_metric(name=name, unit=COUNT, value=self.counts[name])
        for name, count in sorted(self.counts.items()):
            if name not in _TOTALS.values() and count:
                metrics.add_metric(name=name, unit=COUNT, value=count)
        if self.throttled:
            metrics.add_metric(name="EmailsThrottled", unit=COUNT, value=self.throttled)
        for ms in self.latencies_ms:
            metrics.add_metric(name="SendLatency", unit=MILLISECONDS, value=round(ms, 3))


def emit_advance(metrics: MetricsSink, step: dict[str, Any]) -> None:
    """One AdvanceCampaign step's result (workflow.advance): the backlog it found."""
    counts = step.get("counts") or {}
    if "queued_count" in counts:
        metrics.add_metric(
            name="RecipientsBacklog", unit=COUNT, value=counts["queued_count"] - counts["processed_count"]
        )


def emit_feedback(metrics: MetricsSink, kind: str) -> None:
    """One bounce or complaint recorded on its ledger row (counted once however often SES delivers it)."""
    metrics.add_metric(name=_FEEDBACK[kind], unit=COUNT, value=1)


def emit_engagement(metrics: MetricsSink, kind: str) -> None:
    metrics.add_metric(name=_ENGAGEMENT[kind], unit=COUNT, value=1)
