"""What the management API does to AWS beyond the stores: start executions, list pages, guarded edits.

Separate from campaigns.py / ledger.py so that the API's needs do not reshape the worker's adapters.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.errors import BadCursor, ExecutionExists, ExecutionNotFound
from bulkmail.models import dynamodb_item_size, state_json


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(dynamo.plain(key), sort_keys=True).encode()).decode()


def decode_cursor(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor(token) from None
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise BadCursor(token)
    return key


@lru_cache(maxsize=1)
def _sfn() -> Any:  # boto3 clients carry no static types here
    return boto3.client("stepfunctions")


def start_execution(state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
    """StartExecution named after the campaign: a second start of the same campaign cannot run twice
    (ExecutionExists; the same name and input while it runs is the same execution, as on AWS)."""
    try:
        arn: str = _sfn().start_execution(stateMachineArn=state_machine_arn, name=name, input=state_json(payload))[
            "executionArn"
        ]
        return arn
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
            raise ExecutionExists(name) from None
        raise


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution of this name gets (known before it starts)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def start_execution_once(state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
    """StartExecution that a retry may repeat: an execution already started by this name is the one."""
    try:
        return start_execution(state_machine_arn, name, payload)
    except ExecutionExists:
        return execution_arn(state_machine_arn, name)


@lru_cache(maxsize=1)
def _scheduler() -> Any:
    return boto3.client("scheduler")


def schedule_execution(
    group: str,
    name: str,
    when: datetime,
    state_machine_arn: str,
    role_arn: str,
    payload: dict[str, Any],
    dead_letter_arn: str,
) -> str:
    """A one-time EventBridge Scheduler schedule whose target starts the workflow; deleted after it fires.
    A start that fails after the retries goes to the dead-letter queue (the campaign is marked failed)."""
    _scheduler().create_schedule(
        GroupName=group,
        Name=name,
        ScheduleExpression=f"at({when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": state_machine_arn,
            "RoleArn": role_arn,
            "Input": state_json(payload),
            "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": dead_letter_arn},
        },
        Description=f"bulkmail campaign {name}",
    )
    return name


def delete_schedule(group: str, name: str) -> bool:
    """False when there was nothing to delete (it has fired already)."""
    try:
        _scheduler().delete_schedule(GroupName=group, Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True


def describe_execution(execution_arn: str) -> dict[str, Any]:
    try:
        execution: dict[str, Any] = _sfn().describe_execution(executionArn=execution_arn)
        return execution
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
            raise ExecutionNotFound(execution_arn) from None
        raise


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in _sfn().get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events


# A filtered listing reads on until its page is full; on a huge partition with few matches it stops
# here with a token that goes on reading (API Gateway answers within 29 s).
LIST_READ_SECONDS = 10.0
# A page holds at most what one DynamoDB page does: campaign items can be large, Lambda answers <= 6 MB.
LIST_PAGE_BYTES = 1024 * 1024


def list_page(
    table_name: str,
    limit: int,
    cursor: dict[str, Any] | None,
    key_names: tuple[str, ...],
    key_condition: tuple[str, str] | None = None,
    status: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    records_only: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a table (scan) or of one partition (query), optionally filtered on `status`, and the
    key to go on from: None when nothing is left.

    DynamoDB applies a filter after `Limit`, so a filtered page is read on until it holds `limit`
    items (or LIST_PAGE_BYTES); a next key is handed out only for an item that was read and left for
    the next page. `key_names`: the table's key attributes. `records_only`: leave out the items that
    have no status (the campaigns table's counter shards)."""
    kwargs: dict[str, Any] = {"TableName": table_name}
    values: dict[str, Any] = {}
    filtered = bool(status) or records_only
    if not filtered:
        kwargs["Limit"] = limit + 1
    if filtered:
        kwargs["FilterExpression"] = "#status = :status" if status else "attribute_exists(#status)"
        kwargs["ExpressionAttributeNames"] = {"#status": "status"}
    if status:
        values[":status"] = status
    if key_condition:
        kwargs["KeyConditionExpression"] = f"{key_condition[0]} = :pk"
        values[":pk"] = key_condition[1]
    if values:
        kwargs["ExpressionAttributeValues"] = values
    call = dynamo.client().query if key_condition else dynamo.client().scan
    items: list[dict[str, Any]] = []
    size, start, deadline = 0, cursor, clock() + LIST_READ_SECONDS
    while True:
        page = call(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            item_size = dynamodb_item_size(item)
            if len(items) == limit or (items and size + item_size > LIST_PAGE_BYTES):
                return [dynamo.plain(i) for i in items], {name: items[-1][name] for name in key_names}
            items.append(item)
            size += item_size
        start = page.get("LastEvaluatedKey")
        if not start or clock() > deadline:
            return [dynamo.plain(i) for i in items], start


def claim_resend(table_name: str, campaign_id: str, resend_id: str) -> str:
    """Record `resend_id` as the campaign's one re-send, unless it has one: the re-send's id either way."""
    try:
        dynamo.table(table_name).update_item(
            Key={"campaign_id": campaign_id},
            UpdateExpression="SET resent_as = :id",
            ConditionExpression="attribute_exists(campaign_id) AND attribute_not_exists(resent_as)",
            ExpressionAttributeValues={":id": resend_id},
        )
        return resend_id
    except ClientError as exc:
        if not dynamo.is_conditional_failure(exc):
            raise
    item = dynamo.table(table_name).get_item(
        Key={"campaign_id": campaign_id}, ConsistentRead=True, ProjectionExpression="resent_as"
    )["Item"]
    return str(item["resent_as"])
