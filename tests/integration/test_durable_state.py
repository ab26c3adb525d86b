"""The runtime's durable state (runtime/persistence.py): what one runtime wrote, the next one has."""

import contextlib
import json
import sqlite3
import time

import pytest

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import CampaignNotFound
from bulkmail.workflow import continuation_name
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.persistence import DurableState, StateUnavailable
from tests.conftest import SEED_CAMPAIGN
from tests.waiting import eventually

FAR_FUTURE = "at(2099-01-01T00:00:00)"


def runtime(tmp_path, **kwargs) -> EmbeddedRuntime:
    return EmbeddedRuntime(outbox=tmp_path / "outbox", state=DurableState(tmp_path / "state", **kwargs))


def items(rt, logical_id):
    return sorted(
        (rt.table(logical_id).scan(ConsistentRead=True)["Items"]),
        key=lambda i: json.dumps(i, sort_keys=True, default=str),
    )


def wait_for_status(campaigns, campaign_id, status, timeout=60):
    def reached():
        with contextlib.suppress(CampaignNotFound):
            record = campaigns.get(campaign_id)
            return record if record["status"] == status else None
        return None

    return eventually(reached, f"{campaign_id} {status}", timeout, every=0.1)


def test_items_messages_secrets_and_schedules_come_back_under_the_same_names(tmp_path):
    with runtime(tmp_path) as rt:
        assert rt.resumed.fresh
        ddb, sqs, scheduler = rt.client("dynamodb"), rt.client("sqs"), rt.client("scheduler")
        contacts = rt.physical["ContactsTable"]
        ddb.put_item(TableName=contacts, Item={"email": {"S": "kept@example.org"}, "status": {"S": "subscribed"}})
        ddb.put_item(TableName=contacts, Item={"email": {"S": "gone@example.org"}})
        ddb.update_item(
            TableName=contacts,
            Key={"email": {"S": "kept@example.org"}},
            UpdateExpression="SET #s = :u",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":u": {"S": "unsubscribed"}},
        )
        ddb.delete_item(TableName=contacts, Key={"email": {"S": "gone@example.org"}})
        ddb.batch_write_item(
            RequestItems={contacts: [{"PutRequest": {"Item": {"email": {"S": f"b{i}@example.org"}}}} for i in range(3)]}
        )
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": rt.physical["CampaignsTable"], "Item": {"campaign_id": {"S": "c1"}}}},
                {"Delete": {"TableName": contacts, "Key": {"email": {"S": "b2@example.org"}}}},
            ]
        )
        ddb.execute_statement(Statement=f"INSERT INTO \"{contacts}\" VALUE {{'email': 'partiql@example.org'}}")
        dlq = rt.physical["SendDeadLetterQueue"]  # no worker reads it: what is sent stays
        for body in ("first", "second", "third"):
            sqs.send_message(QueueUrl=dlq, MessageBody=body)
        received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=2, VisibilityTimeout=600)["Messages"]
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=received[0]["ReceiptHandle"])
        in_flight = received[1]["Body"]
        group = rt.physical["CampaignSchedules"]
        for name in ("kept", "deleted"):
            scheduler.create_schedule(
                GroupName=group,
                Name=name,
                ScheduleExpression=FAR_FUTURE,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={
                    "Arn": rt.state_machine_arn,
                    "Input": "{}",
                    "RoleArn": rt.attributes[("CampaignSchedulerRole", "Arn")],
                },
            )
        scheduler.delete_schedule(GroupName=group, Name="deleted")
        key = rt.client("secretsmanager").get_secret_value(SecretId=rt.physical["UnsubscribeSigningKey"])[
            "SecretString"
        ]
        before = {t: items(rt, t) for t in ("ContactsTable", "CampaignsTable")}
        physical = {k: v for k, v in rt.physical.items() if k != "UnsubscribeSigningKey"}

    with runtime(tmp_path) as rt:
        assert not rt.resumed.fresh
        assert {k: v for k, v in rt.physical.items() if k != "UnsubscribeSigningKey"} == physical
        assert {t: items(rt, t) for t in before} == before
        assert [i["email"] for i in before["ContactsTable"]] == [
            "b0@example.org",
            "b1@example.org",
            "kept@example.org",
            "partiql@example.org",
        ]
        messages = rt.client("sqs").receive_message(
            QueueUrl=rt.physical["SendDeadLetterQueue"], MaxNumberOfMessages=10, AttributeNames=["All"]
        )["Messages"]
        counts = {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in messages}
        assert counts == {in_flight: "2", ({"second", "third"} - {in_flight}).pop(): "1"}  # in flight: visible again
        schedules = rt.client("scheduler").list_schedules(GroupName=rt.physical["CampaignSchedules"])["Schedules"]
        assert [s["Name"] for s in schedules] == ["kept"]
        assert (
            rt.client("secretsmanager").get_secret_value(SecretId=rt.physical["UnsubscribeSigningKey"])["SecretString"]
            == key
        )


def test_one_process_per_state_directory_and_reset_starts_afresh(tmp_path):
    with runtime(tmp_path) as rt:
        rt.table("ContactsTable").put_item(Item={"email": "a@example.org"})
        with pytest.raises(StateUnavailable, match="in use by another bulkmail serve"):
            DurableState(tmp_path / "state")
    with runtime(tmp_path, reset=True) as rt:
        assert rt.resumed.fresh
        assert rt.table("ContactsTable").scan()["Items"] == []


def test_a_running_campaign_goes_on_in_a_new_execution_after_a_restart(tmp_path):
    contacts, _ = normalise_contacts([{"email": f"r{i}@example.org", "first_name": f"R{i}"} for i in range(30)])
    with runtime(tmp_path) as rt:
        rt.pause_workers()
        ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"]).put_many(
            contacts
        )
        arn = rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "durable_1"}, name="durable_1")
        campaigns = CampaignStore(rt.physical["CampaignsTable"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(CampaignNotFound):
                if campaigns.get("durable_1")["fanout_done"]:
                    break
            time.sleep(0.1)
        rt.client("stepfunctions").stop_execution(executionArn=arn)  # executions do not outlive their process

    with runtime(tmp_path) as rt:
        assert rt.resumed.continued == ["durable_1"]
        record = wait_for_status(CampaignStore(rt.physical["CampaignsTable"]), "durable_1", "completed")
        assert record["execution_arn"].endswith(":" + continuation_name("durable_1", 1))
        assert (record["sent_count"], record["processed_count"]) == (30, 30)
        assert len(list((tmp_path / "outbox" / "durable_1").glob("*.eml"))) == 30


def test_an_execution_that_had_not_stored_its_campaign_starts_again(tmp_path):
    """A kill between StartExecution (the API's 202) and PersistCampaign leaves only the execution's row."""
    with runtime(tmp_path) as rt:
        ContactStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"]).put_many(
            normalise_contacts([{"email": "g@example.org"}])[0]
        )
        state_machine = rt.state_machine_arn
    payload = json.dumps({**SEED_CAMPAIGN, "campaign_id": "gap_1"})
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "state.sqlite3")) as db, db:
        db.execute(
            "INSERT INTO executions VALUES (?, ?, ?, ?)",
            (state_machine.replace(":stateMachine:", ":execution:") + ":gap_1", state_machine, "gap_1", payload),
        )

    with runtime(tmp_path) as rt:
        assert rt.resumed.restarted == ["gap_1"]
        record = wait_for_status(CampaignStore(rt.physical["CampaignsTable"]), "gap_1", "completed")
        assert record["sent_count"] == 1


def test_writes_sent_straight_to_the_aws_endpoint_are_kept_too(tmp_path):
    import boto3

    from bulkmail_local.serve import LocalStack

    def stack():
        return LocalStack(api_port=0, aws_port=0, outbox=tmp_path / "outbox", state_dir=tmp_path / "state")

    with stack() as local:
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=local.aws_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ddb.put_item(TableName=local.runtime.physical["ContactsTable"], Item={"email": {"S": "cli@example.org"}})
    with stack() as local:
        assert local.runtime.table("ContactsTable").get_item(Key={"email": "cli@example.org"}).get("Item")
