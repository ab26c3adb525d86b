"""Operations on the embedded stack: campaign events really arrive on the bus (through a rule to an
SQS queue, as a subscriber would get them), metrics are emitted with the right names and values, and
none of it reaches stdout."""

import json

import pytest

from tests.conftest import SEED_CAMPAIGN, people
from tests.scripted_faults import ScriptedFaults
from tests.waiting import eventually

NAMESPACE = "Bulkmail"  # the template's MetricsNamespace default


class BusObserver:
    """An EventBridge rule on the campaign bus (source bulkmail) whose target is an SQS queue."""

    def __init__(self, rt):
        sqs, events = rt.client("sqs"), rt.client("events")
        self.sqs = sqs
        self.url = sqs.create_queue(QueueName=f"observer-{rt.physical['CampaignEventBus']}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = rt.physical["CampaignEventBus"]
        events.put_rule(Name="all-campaign-events", EventBusName=bus, EventPattern=json.dumps({"source": ["bulkmail"]}))
        events.put_targets(Rule="all-campaign-events", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
        self.seen: list[dict] = []

    def received(self) -> list[dict]:
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return self.seen
            for m in got:
                self.seen.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    def types(self) -> list[str]:
        return [e["detail-type"] for e in self.received()]

    def wait_for(self, detail_type: str, timeout: float = 30.0) -> dict:
        return eventually(
            lambda: next((e for e in self.received() if e["detail-type"] == detail_type), None), detail_type, timeout
        )


@pytest.fixture
def observed(held_api):
    held_api.bus = BusObserver(held_api.harness.rt)
    return held_api


def start(api, campaign_id, n):
    api.harness.add_contacts(people(n))
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": campaign_id})
    assert r.status == 202, r.body
    eventually(lambda: api.request("GET", f"/campaigns/{campaign_id}").json().get("fanout_done"))
    return r.json()["execution_arn"]


def test_a_completed_campaign_announces_start_and_completion_and_its_metrics_match_the_ledger(observed):
    api, h = observed, observed.harness
    h.rt.faults = ScriptedFaults(
        ses={"person1@example.org": ["MessageRejected"], "person2@example.org": ["TooManyRequestsException"]}
    )
    arn = start(api, "ops_done", 6)
    assert api.request("DELETE", "/contacts/person5%40example.org").status in (200, 204)  # deleted after queueing
    h.drain()
    assert h.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    completed = api.bus.wait_for("CampaignCompleted")
    assert api.bus.types() == ["CampaignStarted", "CampaignCompleted"]
    started = api.bus.received()[0]
    assert started["source"] == completed["source"] == "bulkmail"
    assert started["detail"]["campaign_id"] == "ops_done" and started["detail"]["status"] == "queued"
    assert started["detail"]["campaign_name"] == SEED_CAMPAIGN["campaign_name"]
    assert started["detail"]["counts"] == {"total": 6, "sent": 0, "failed": 0, "skipped": 0}
    assert completed["detail"]["status"] == "completed"
    assert completed["detail"]["counts"] == {"total": 6, "sent": 4, "failed": 1, "skipped": 1}
    assert completed["detail"]["execution_arn"] == arn and completed["detail"]["occurred_at"]
    assert arn in completed["resources"]  # Step Functions adds the execution to the event's resources

    record = h.campaigns.get("ops_done")
    assert (record["sent_count"], record["failed_count"], record["skipped_count"]) == (4, 1, 1)
    totals = h.rt.metrics.totals(NAMESPACE)
    assert {
        k: totals.get(k)
        for k in (
            "EmailsSent",
            "EmailsFailed",
            "EmailsSkipped",
            "EmailsFailed.Rejected",
            "EmailsSkipped.ContactDeleted",
            "EmailsThrottled",
        )
    } == {
        "EmailsSent": 4,
        "EmailsFailed": 1,
        "EmailsSkipped": 1,
        "EmailsFailed.Rejected": 1,
        "EmailsSkipped.ContactDeleted": 1,
        "EmailsThrottled": 1,
    }
    assert "RecipientsBacklog" in totals  # the workflow's steps report theirs
    assert h.rt.metrics.samples("SendLatency") == 4 and totals["SendLatency"] > 0
    assert not any(name.startswith("EmailsFailed.") and name != "EmailsFailed.Rejected" for name in totals)


def test_pause_and_cancel_through_the_api_are_announced(observed):
    api, h = observed, observed.harness
    arn = start(api, "ops_pause", 4)
    assert api.request("POST", "/campaigns/ops_pause/pause").status == 200
    paused = api.bus.wait_for("CampaignPaused")
    assert paused["detail"]["campaign_id"] == "ops_pause" and paused["detail"]["status"] == "paused"
    assert paused["detail"]["reason"] == "paused by operator"
    assert paused["detail"]["counts"] == {"total": 4, "sent": 0, "failed": 0, "skipped": 0}
    assert api.request("POST", "/campaigns/ops_pause/pause").status == 409  # no second event for a refused pause
    assert api.request("POST", "/campaigns/ops_pause/cancel").status == 200
    cancelled = api.bus.wait_for("CampaignCancelled")
    assert cancelled["detail"]["status"] == "cancelled" and "reason" not in cancelled["detail"]
    h.drain()
    assert h.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    assert api.bus.types() == ["CampaignStarted", "CampaignPaused", "CampaignCancelled"]


def test_a_worker_pausing_the_campaign_for_ses_is_announced(observed):
    api, h = observed, observed.harness
    h.rt.faults = ScriptedFaults(ses={f"person{i}@example.org": ["SendingPausedException"] for i in range(3)})
    arn = start(api, "ops_ses_paused", 3)
    h.drain()
    paused = api.bus.wait_for("CampaignPaused")
    assert paused["detail"]["campaign_id"] == "ops_ses_paused"
    assert "SendingPausedException" in paused["detail"]["reason"]
    assert api.request("POST", "/campaigns/ops_ses_paused/cancel").status == 200
    h.rt.resume_workers()  # the refused batch comes back after its visibility backoff
    assert h.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    assert api.bus.types() == ["CampaignStarted", "CampaignPaused", "CampaignCancelled"]


def test_a_failed_workflow_announces_the_failure_with_its_cause(observed):
    api, h = observed, observed.harness
    h.rt.faults = ScriptedFaults(refuse={("sqs", "SendMessageBatch")})  # the fan-out cannot enqueue
    h.add_contacts(people(3))
    arn = h.rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "ops_failed"})
    assert h.rt.wait_for_execution(arn, timeout=60)["status"] == "FAILED"
    failed = api.bus.wait_for("CampaignFailed")
    assert api.bus.types() == ["CampaignStarted", "CampaignFailed"]
    assert failed["detail"]["status"] == "failed" and failed["detail"]["campaign_id"] == "ops_failed"
    assert failed["detail"]["counts"] == {"total": 3, "sent": 0, "failed": 0, "skipped": 0}
    assert failed["detail"]["error"] and "refused by the test" in failed["detail"]["cause"]
    assert h.campaigns.get("ops_failed")["status"] == "failed"


def test_a_refused_event_never_fails_a_campaign_or_a_pause(observed):
    api, h = observed, observed.harness
    h.rt.faults = ScriptedFaults(refuse={("AWSEvents", "PutEvents")})
    arn = start(api, "ops_no_bus", 3)
    assert api.request("POST", "/campaigns/ops_no_bus/pause").json()["status"] == "paused"
    assert api.request("POST", "/campaigns/ops_no_bus/resume").status == 200
    h.drain()
    assert h.rt.wait_for_execution(arn, timeout=90)["status"] == "SUCCEEDED"
    assert h.campaigns.get("ops_no_bus")["status"] == "completed"
    assert h.rt.state_path(arn)[-2:] == ["PublishCampaignCompleted", "CampaignCompleted"]
    # Started and Completed were each tried 4 times (the states' Retry), the pause at least once
    # (boto3 retries a 500 too); none arrived.
    assert h.rt.faults.answered["AWSEvents.PutEvents"] >= 9
    assert api.bus.received() == []


@pytest.mark.longest
def test_metrics_stay_off_stdout_and_go_to_the_function_log(harness, capsys):
    h = harness
    h.add_contacts(people(250))
    c = h.add_campaign(total=250)
    emails = [f"person{i}@example.org" for i in range(250)]
    for start_at in range(0, 250, 50):  # 5 messages: more than 100 latency values in one invocation
        h.enqueue(c["campaign_id"], f"p{start_at}", emails[start_at : start_at + 50])
    h.drain()
    assert '"_aws"' not in capsys.readouterr().out
    documents = [json.loads(line) for line in h.rt.log_file.read_text().splitlines() if line.startswith('{"_aws"')]
    assert documents, "no EMF document in the function log"
    for doc in documents:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["service"]]
        assert doc["service"] == "bulkmail"
    sent = sum(sum(doc.get("EmailsSent", [])) for doc in documents)
    assert sent == 250 == h.rt.metrics.totals(NAMESPACE)["EmailsSent"]
    assert h.rt.metrics.samples("SendLatency") == 250
