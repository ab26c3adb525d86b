"""The embedded runtime refuses what AWS refuses for size, with AWS's error (runtime/limits.py, and
moto where it already does). Each limit is tested just over it and, where moto and AWS count
differently, just under it by AWS's count."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from bulkmail_local.runtime.limits import SES_MESSAGE_BYTES, SQS_MESSAGE_BYTES, STATE_PAYLOAD_BYTES

E_ACUTE = "é"  # two bytes in UTF-8, six as a JSON escape


def _refused(call, code: str) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code, caught.value.response["Error"]
    return caught.value.response["Error"]["Message"]


# --- Step Functions -----------------------------------------------------------------------------
PASS_THROUGH = json.dumps({"StartAt": "Carry", "States": {"Carry": {"Type": "Pass", "End": True}}})


@pytest.fixture
def pass_machine(harness):
    sfn = harness.rt.client("stepfunctions")
    return sfn, sfn.create_state_machine(
        name=f"pass-{uuid.uuid4().hex[:8]}", definition=PASS_THROUGH, roleArn=harness.rt.role_of("CampaignStateMachine")
    )["stateMachineArn"]


def test_start_execution_input_is_counted_in_utf8_bytes(pass_machine):
    sfn, arn = pass_machine
    over = json.dumps({"body": E_ACUTE * (STATE_PAYLOAD_BYTES // 2)}, ensure_ascii=False)  # 131 k chars, 262 kB
    assert len(over) < STATE_PAYLOAD_BYTES < len(over.encode())
    message = _refused(lambda: sfn.start_execution(stateMachineArn=arn, input=over), "ValidationException")
    assert "'input'" in message and "262144 bytes in UTF-8" in message
    escaped = json.dumps({"body": E_ACUTE * 50_000})  # what json.dumps sends by default: 300 kB of ASCII
    _refused(lambda: sfn.start_execution(stateMachineArn=arn, input=escaped), "ValidationException")
    under = json.dumps({"body": "x" * (STATE_PAYLOAD_BYTES - 20)})
    assert sfn.start_execution(stateMachineArn=arn, input=under)["executionArn"]


def test_state_output_is_counted_as_aws_counts_it(harness, pass_machine):
    """AWS carries 150 kB of accented text through a state (300 kB with moto's ASCII escapes), and
    refuses 300 kB of it with States.DataLimitExceeded."""
    sfn, arn = pass_machine
    fits = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"body": E_ACUTE * 75_000}, ensure_ascii=False))
    assert harness.rt.wait_for_execution(fits["executionArn"], timeout=30)["status"] == "SUCCEEDED"

    crafted = {
        "StartAt": "Grow",
        "States": {"Grow": {"Type": "Pass", "End": True, "Parameters": {"a.$": "$.body", "b.$": "$.body"}}},
    }
    grow = sfn.create_state_machine(
        name=f"grow-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(crafted),
        roleArn=harness.rt.role_of("CampaignStateMachine"),
    )["stateMachineArn"]
    over = sfn.start_execution(stateMachineArn=grow, input=json.dumps({"body": E_ACUTE * 75_000}, ensure_ascii=False))
    result = harness.rt.wait_for_execution(over["executionArn"], timeout=30)
    assert result["status"] == "FAILED" and result["error"] == "States.DataLimitExceeded"


# --- SQS ----------------------------------------------------------------------------------------
def test_sqs_message_size_is_counted_in_bytes_with_its_attributes(harness):
    sqs, url = harness.rt.client("sqs"), harness.rt.physical["SendDeadLetterQueue"]
    accented = E_ACUTE * (SQS_MESSAGE_BYTES // 2 + 1)  # under 1 MiB in characters, over it in bytes
    message = _refused(lambda: sqs.send_message(QueueUrl=url, MessageBody=accented), "InvalidParameterValue")
    assert f"shorter than {SQS_MESSAGE_BYTES} bytes" in message
    body = "x" * (SQS_MESSAGE_BYTES - 10)
    attributes = {"trace": {"DataType": "String", "StringValue": "y" * 20}}
    _refused(
        lambda: sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes), "InvalidParameterValue"
    )
    assert sqs.send_message(QueueUrl=url, MessageBody="x" * SQS_MESSAGE_BYTES)["MessageId"]


def test_sqs_batch_size_is_counted_in_bytes(harness):
    sqs, url = harness.rt.client("sqs"), harness.rt.physical["SendDeadLetterQueue"]
    entries = [{"Id": str(i), "MessageBody": E_ACUTE * 300_000} for i in range(2)]  # 600 k chars, 1.2 MB
    _refused(lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries), "BatchRequestTooLong")
    entries = [{"Id": str(i), "MessageBody": E_ACUTE * 200_000} for i in range(2)]  # 800 kB
    assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 2


# --- SES ----------------------------------------------------------------------------------------
def _raw(body: bytes) -> bytes:
    return (
        b"From: noreply@example.com\r\nTo: someone@example.org\r\nSubject: limits\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + body + b"\r\n"
    )


def _send_raw(harness, raw: bytes):
    return harness.rt.client("sesv2").send_email(
        FromEmailAddress="noreply@example.com",
        Destination={"ToAddresses": ["someone@example.org"]},
        Content={"Raw": {"Data": raw}},
    )


def test_ses_refuses_a_line_over_1000_characters(harness):
    message = _refused(lambda: _send_raw(harness, _raw(b"x" * 999)), "MessageRejected")
    assert "1,000" in message
    assert _send_raw(harness, _raw(b"x" * 998))["MessageId"]


def test_ses_refuses_a_message_over_40_mb(harness):
    lines = b"\r\n".join([b"y" * 998] * (SES_MESSAGE_BYTES // 1000 + 1))
    message = _refused(lambda: _send_raw(harness, _raw(lines)), "MessageRejected")
    assert str(SES_MESSAGE_BYTES) in message


# --- DynamoDB (moto's own checks, held here so that an upgrade cannot drop them unseen) ----------
def test_dynamodb_item_over_400_kb_is_refused(harness):
    table = harness.rt.table("CampaignsTable")
    with pytest.raises(ClientError) as caught:
        table.put_item(Item={"campaign_id": "big", "body": "z" * 410_000})
    assert caught.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size has exceeded the maximum allowed size",
    }
    table.put_item(Item={"campaign_id": "big", "body": "z" * 300_000})
    with pytest.raises(ClientError) as caught:
        table.update_item(
            Key={"campaign_id": "big"},
            UpdateExpression="SET more = :m",
            ExpressionAttributeValues={":m": "z" * 110_000},
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_transaction_of_more_than_100_items_or_two_operations_on_one_item_is_refused(harness):
    ddb, table = harness.rt.client("dynamodb"), harness.rt.physical["CampaignsTable"]

    def put(key: str):
        return {"Put": {"TableName": table, "Item": {"campaign_id": {"S": key}}}}

    message = _refused(
        lambda: ddb.transact_write_items(TransactItems=[put(f"c{i}") for i in range(101)]), "ValidationException"
    )
    assert "less than or equal to 100" in message
    message = _refused(
        lambda: ddb.transact_write_items(TransactItems=[put("same"), put("same")]), "ValidationException"
    )
    assert message == "Transaction request cannot include multiple operations on one item"
    ddb.transact_write_items(TransactItems=[put(f"c{i}") for i in range(100)])
