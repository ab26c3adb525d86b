"""A scheduled campaign whose start fails is marked failed with the error, as on AWS: Scheduler
sends the schedule's input to the target's dead-letter queue and ScheduleFailedFunction records it."""

from datetime import UTC, datetime, timedelta

from tests.conftest import SEED_CAMPAIGN, people
from tests.e2e.test_operations import BusObserver
from tests.waiting import eventually


def test_a_scheduled_start_that_fails_marks_the_campaign_failed_with_the_error(api):
    rt = api.harness.rt
    bus = BusObserver(rt)
    api.harness.add_contacts(people(2))
    send_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "sched_fail", "send_at": send_at})
    assert r.status == 202, r.body
    scheduler, group = rt.client("scheduler"), rt.physical["CampaignSchedules"]
    schedule = scheduler.get_schedule(GroupName=group, Name="sched_fail")
    assert schedule["Target"]["DeadLetterConfig"]["Arn"] == rt.attributes[("ScheduleFailureQueue", "Arn")]
    # The state machine it names is gone by the time it fires (deleted by hand, say): StartExecution
    # fails. (Another state machine's ARN would be AccessDenied first: the role names this one only.)
    rt.client("stepfunctions").delete_state_machine(stateMachineArn=rt.state_machine_arn)

    record = eventually(
        lambda: (r := api.request("GET", "/campaigns/sched_fail").json())["status"] != "scheduled" and r, every=0.2
    )
    assert record["status"] == "failed", record
    assert record["failure_cause"].startswith("the scheduled start failed: StateMachineDoesNotExist")
    assert rt.scheduler.dead_lettered == [("sched_fail", "StateMachineDoesNotExist")]
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []  # the invocation is over: deleted
    assert api.harness.sent_messages("sched_fail") == []
    failed = bus.wait_for("CampaignFailed")  # announced, as the workflow announces its own failures
    assert failed["detail"]["campaign_id"] == "sched_fail" and failed["detail"]["status"] == "failed"
    assert failed["detail"]["reason"] == record["failure_cause"]
