"""bulkmail.metrics: what one worker invocation reports, through a real Powertools Metrics provider."""

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from bulkmail.metrics import METRIC_NAMES, SendStats, emit_advance
from bulkmail.models import DeliveryStatus, Outcome


def provider():
    # A provider of its own (Metrics() shares one metric set per process).
    return AmazonCloudWatchEMFProvider(
        namespace="Test", service="bulkmail", metric_set={}, dimension_set={}, metadata_set={}, default_dimensions={}
    )


def emitted(stats_or_step) -> dict[str, list[float]]:
    p = provider()
    if isinstance(stats_or_step, SendStats):
        stats_or_step.emit(p)
    else:
        emit_advance(p, stats_or_step)
    if not p.metric_set:
        return {}
    document = p.serialize_metric_set()  # validates against the EMF schema
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    return {name: document[name] if isinstance(document[name], list) else [document[name]] for name in names}


def test_outcomes_are_summed_by_status_class_and_reason():
    stats = SendStats(throttled=2, latencies_ms=[3.5, 4.25])
    for outcome in [
        Outcome("a@x.org", DeliveryStatus.SENT),
        Outcome("b@x.org", DeliveryStatus.SENT),
        Outcome("c@x.org", DeliveryStatus.FAILED, reason="MessageRejected: no", failure_class="Rejected"),
        Outcome("d@x.org", DeliveryStatus.FAILED, reason="dead-lettered: x", failure_class="DeadLettered"),
        Outcome("e@x.org", DeliveryStatus.FAILED, reason="odd", failure_class="SomethingNew"),
        Outcome("f@x.org", DeliveryStatus.SKIPPED, reason="unsubscribed"),
        Outcome("g@x.org", DeliveryStatus.SKIPPED, reason="no idea"),
    ]:
        stats.record(outcome)
    assert emitted(stats) == {
        "EmailsSent": [2.0],
        "EmailsFailed": [3.0],
        "EmailsSkipped": [2.0],
        "EmailsFailed.DeadLettered": [1.0],
        "EmailsFailed.Rejected": [2.0],  # an unknown class counts as Rejected
        "EmailsSkipped.Other": [1.0],
        "EmailsSkipped.Unsubscribed": [1.0],
        "EmailsThrottled": [2.0],
        "SendLatency": [3.5, 4.25],
    }
    assert set(emitted(stats)) <= METRIC_NAMES


def test_an_idle_invocation_still_reports_zero_totals_and_nothing_else():
    assert emitted(SendStats()) == {"EmailsSent": [0.0], "EmailsFailed": [0.0], "EmailsSkipped": [0.0]}


def test_workflow_steps_report_the_backlog_they_found():
    counts = {
        "total_contacts": 900,
        "queued_count": 500,
        "sent_count": 120,
        "failed_count": 3,
        "skipped_count": 2,
        "processed_count": 125,
    }
    assert emitted({"next": "wait", "steps": 4, "counts": counts}) == {"RecipientsBacklog": [375.0]}
    assert emitted({"next": "continue_as_new", "steps": 99, "counts": {}}) == {}
