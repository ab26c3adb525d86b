"""AWS Step Functions: start the campaign workflow's executions, read their status and history.

Executions are named after campaigns (a continuation after the campaign and its number), so a
second start of the same name is the same execution or ExecutionExists, never a second run.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bulkmail.errors import ExecutionExists, ExecutionNotFound
from bulkmail.models import state_json


@lru_cache(maxsize=1)
def _sfn() -> Any:  # boto3 clients carry no static types here
    return boto3.client("stepfunctions")


def start_execution(state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
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


def start_execution_once(state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
    """StartExecution that a retry may repeat: an execution already started by this name is the one."""
    try:
        return start_execution(state_machine_arn, name, payload)
    except ExecutionExists:
        return execution_arn(state_machine_arn, name)


def describe_execution(arn: str) -> dict[str, Any]:
    try:
        execution: dict[str, Any] = _sfn().describe_execution(executionArn=arn)
        return execution
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
            raise ExecutionNotFound(arn) from None
        raise


def execution_history(arn: str) -> list[dict[str, Any]]:
    """Every event, one GetExecutionHistory request per 1,000 (a few for a long campaign)."""
    events: list[dict[str, Any]] = []
    for page in _sfn().get_paginator("get_execution_history").paginate(executionArn=arn):
        events += page["events"]
    return events


class Workflow:
    """The campaign state machine's executions (bulkmail.ports.Executions)."""

    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def arn(self, name: str) -> str:
        return execution_arn(self.state_machine_arn, name)

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        return start_execution(self.state_machine_arn, name, payload)

    def start_once(self, name: str, payload: Mapping[str, Any]) -> str:
        return start_execution_once(self.state_machine_arn, name, payload)

    def describe(self, arn: str) -> dict[str, Any]:
        return describe_execution(arn)

    def history(self, arn: str) -> list[dict[str, Any]]:
        return execution_history(arn)
