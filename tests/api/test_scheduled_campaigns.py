"""send_at: a one-time EventBridge Scheduler schedule that the embedded runtime fires at its time."""

from datetime import UTC, datetime, timedelta, timezone

from bulkmail_local.runtime.scheduler import due_time
from tests.conftest import SEED_CAMPAIGN, people
from tests.waiting import eventually


def soon(seconds: float) -> str:
    return (
        (datetime.now(UTC) + timedelta(seconds=seconds))
        .astimezone(timezone(timedelta(hours=1)))
        .isoformat(timespec="seconds")
    )


def executions(rt):
    return rt.client("stepfunctions").list_executions(stateMachineArn=rt.state_machine_arn)["executions"]


def schedules(rt):
    group = rt.physical["CampaignSchedules"]
    return rt.client("scheduler").list_schedules(GroupName=group)["Schedules"]


def test_campaign_with_send_at_starts_at_its_time_with_later_edits(api):
    rt = api.harness.rt
    api.harness.add_contacts(people(4))
    send_at = soon(600)  # far enough that a slow machine does not reach it: the clock is advanced to it
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "sched_1", "send_at": send_at})
    assert r.status == 202, r.body
    assert r.json() == {"campaign_id": "sched_1", "status": "scheduled", "schedule_name": "sched_1"}
    schedule = rt.client("scheduler").get_schedule(GroupName=rt.physical["CampaignSchedules"], Name="sched_1")
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == rt.state_machine_arn
    assert due_time(schedule) == datetime.fromisoformat(send_at)
    assert api.request("GET", "/campaigns/sched_1").json()["status"] == "scheduled"
    not_started = api.request("GET", "/campaigns/sched_1/trace")
    assert not_started.status == 409 and not_started.json()["errors"][0]["field"] == "status"
    assert api.request("PATCH", "/campaigns/sched_1", json_body={"subject": "Later, {{first_name}}"}).status == 200
    assert executions(rt) == []
    assert rt.scheduler.fire_due() == 0  # not before its time

    rt.clock.advance(601)  # its time comes on the account's clock (no sleep); the scheduler fires it
    started = eventually(lambda: executions(rt), "the scheduled execution")
    assert len(started) == 1
    assert rt.scheduler.fired == [("sched_1", started[0]["executionArn"])]
    assert rt.clock.now() >= datetime.fromisoformat(send_at)
    execution = rt.wait_for_execution(started[0]["executionArn"], timeout=60)
    assert execution["status"] == "SUCCEEDED"
    record = api.request("GET", "/campaigns/sched_1").json()
    assert (record["status"], record["sent_count"], record["execution_arn"]) == (
        "completed",
        4,
        started[0]["executionArn"],
    )
    assert sorted(m["Subject"] for m in api.harness.sent_messages("sched_1")) == [f"Later, First{i}" for i in range(4)]
    assert schedules(rt) == []  # ActionAfterCompletion DELETE


def test_cancelled_scheduled_campaign_never_starts(api):
    rt = api.harness.rt
    api.harness.add_contacts(people(2))
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "sched_2", "send_at": soon(2)})
    assert r.status == 202
    cancelled = api.request("POST", "/campaigns/sched_2/cancel")
    assert cancelled.status == 200
    assert cancelled.json()["previous_status"] == "scheduled" and cancelled.json()["schedule_deleted"] is True
    assert schedules(rt) == []
    # The schedule's time passes (on the scheduler's clock: no sleep) and nothing is left to fire.
    rt.clock.advance(3600)
    assert rt.scheduler.fire_due() == 0
    assert executions(rt) == []
    assert api.request("GET", "/campaigns/sched_2").json()["status"] == "cancelled"
    assert api.harness.sent_messages("sched_2") == []


def test_a_schedule_firing_after_cancel_is_refused_by_the_workflow(api):
    rt = api.harness.rt
    api.harness.add_contacts(people(2))
    api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "sched_3", "send_at": soon(600)})
    api.request("POST", "/campaigns/sched_3/cancel")
    # What the schedule would have started, had it fired between the cancel and its deletion:
    arn = rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "sched_3"})
    execution = rt.wait_for_execution(arn, timeout=60)
    assert execution["status"] == "FAILED"
    assert "PersistCampaign" in rt.state_path(arn) and "AdvanceCampaign" not in rt.state_path(arn)
    assert api.request("GET", "/campaigns/sched_3").json()["status"] == "cancelled"
    assert api.harness.sent_messages("sched_3") == []


def test_send_at_without_offset_or_in_the_past_is_rejected_and_nothing_is_scheduled(api):
    for send_at, words in [("2030-01-01T09:00:00", "date-time"), (soon(-60), "in the past"), ("tomorrow", "date-time")]:
        r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "send_at": send_at})
        assert r.status == 400, r.body
        assert any(e["field"] == "send_at" and words in e["message"] for e in r.json()["errors"]), r.json()
    assert schedules(api.harness.rt) == []
    assert api.harness.rt.table("CampaignsTable").scan()["Count"] == 0
