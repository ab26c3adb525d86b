"""Amazon EventBridge Scheduler: the one-time schedule that starts a scheduled campaign's workflow."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bulkmail.models import state_json


@lru_cache(maxsize=1)
def _scheduler() -> Any:
    return boto3.client("scheduler")


class Scheduler:
    """Schedules in one group whose target starts the campaign state machine (bulkmail.ports.Schedules)."""

    def __init__(self, group: str, state_machine_arn: str, role_arn: str, dead_letter_arn: str) -> None:
        self.group = group
        self.state_machine_arn = state_machine_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn

    def schedule_start(self, name: str, when: datetime, payload: Mapping[str, Any]) -> str:
        """A one-time schedule whose target starts the workflow; deleted after it fires. A start that
        fails after the retries goes to the dead-letter queue (the campaign is marked failed)."""
        _scheduler().create_schedule(
            GroupName=self.group,
            Name=name,
            ScheduleExpression=f"at({when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": self.state_machine_arn,
                "RoleArn": self.role_arn,
                "Input": state_json(payload),
                "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": self.dead_letter_arn},
            },
            Description=f"bulkmail campaign {name}",
        )
        return name

    def delete(self, group: str, name: str) -> bool:
        """False when there was nothing to delete (it has fired already)."""
        try:
            _scheduler().delete_schedule(GroupName=group, Name=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return False
            raise
        return True
