"""EventBridge Scheduler's part, emulated: fire one-time `at(...)` schedules when they fall due.

moto stores schedules but never fires them. This thread lists the stack's schedule groups, and for
each ENABLED one-time schedule whose time has come it calls the target (StartExecution with the
target's Input, as Scheduler's universal target does), then deletes the schedule when its
ActionAfterCompletion is DELETE.

A start that fails is retried on later ticks while the error is one Scheduler retries (throttling,
a 5xx) and the target's RetryPolicy allows; otherwise, or once the retries are spent, the input
goes to the target's DeadLetterConfig queue with the error in the message attributes (ERROR_CODE,
ERROR_MESSAGE, ...), as Scheduler delivers a dead-letter event, and the invocation is over.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError

from bulkmail_local.runtime.iam import acting_as

logger = logging.getLogger("bulkmail_local.scheduler")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RETRIED_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "ServiceUnavailable", "InternalServerError"}
)
_DEFAULT_RETRIES = 185  # Scheduler's default MaximumRetryAttempts


def due_time(schedule: dict[str, Any]) -> datetime | None:
    """When a one-time schedule fires (aware), or None for any other kind of schedule."""
    match = _AT.match(schedule.get("ScheduleExpression", ""))
    if not match:
        return None
    zone = ZoneInfo(schedule.get("ScheduleExpressionTimezone") or "UTC")
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone)


class OneTimeScheduler:
    def __init__(
        self,
        scheduler_client,
        sfn_client,
        sqs_client,
        groups: list[str],
        tick_seconds: float = 1.0,  # EventBridge Scheduler fires within a minute of a schedule's time
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.scheduler = scheduler_client
        self.sfn = sfn_client
        self.sqs = sqs_client
        self.groups = groups
        self.tick_seconds = tick_seconds
        self.now = now
        self.fired: list[tuple[str, str]] = []  # (schedule name, execution ARN)
        self.dead_lettered: list[tuple[str, str]] = []  # (schedule name, error code)
        self._attempts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bulkmail-scheduler", daemon=True)

    def start(self) -> None:
        if self.groups:
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.fire_due()
            except Exception:  # keep the emulated service up; the error is logged with its traceback
                logger.exception("firing due schedules failed")

    def fire_due(self) -> int:
        fired = 0
        for group in self.groups:
            for summary in self.scheduler.list_schedules(GroupName=group)["Schedules"]:
                schedule = self.scheduler.get_schedule(GroupName=group, Name=summary["Name"])
                when = due_time(schedule)
                if schedule.get("State", "ENABLED") != "ENABLED" or when is None or when > self.now():
                    continue
                target = schedule["Target"]
                if ":states:" not in target["Arn"]:
                    raise NotImplementedError(f"schedule {summary['Name']}: only Step Functions targets are emulated")
                try:
                    with acting_as(target["RoleArn"]):  # Scheduler calls the target as the schedule's role
                        arn = self.sfn.start_execution(
                            stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=target.get("Input", "{}")
                        )["executionArn"]
                except ClientError as exc:
                    if not self._failed(schedule, exc):
                        continue  # retried on a later tick
                else:
                    self.fired.append((summary["Name"], arn))
                fired += 1
                if schedule.get("ActionAfterCompletion") == "DELETE":
                    self.scheduler.delete_schedule(GroupName=group, Name=summary["Name"])
                else:
                    self.scheduler.update_schedule(
                        GroupName=group,
                        Name=summary["Name"],
                        ScheduleExpression=schedule["ScheduleExpression"],
                        FlexibleTimeWindow=schedule["FlexibleTimeWindow"],
                        Target=target,
                        State="DISABLED",
                    )
        return fired

    def _failed(self, schedule: dict[str, Any], exc: ClientError) -> bool:
        """True when this invocation is over (dead-lettered, or dropped without a DLQ)."""
        target, error = schedule["Target"], exc.response["Error"]
        policy = target.get("RetryPolicy", {})
        key = schedule["Arn"]
        self._attempts[key] += 1
        retried = (
            error.get("Code") in _RETRIED_CODES or exc.response["ResponseMetadata"].get("HTTPStatusCode", 400) >= 500
        )
        if retried and self._attempts[key] <= policy.get("MaximumRetryAttempts", _DEFAULT_RETRIES):
            return False
        attempts = self._attempts.pop(key) - 1
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        logger.warning(
            "schedule %s: start failed (%s)%s",
            schedule["Name"],
            error.get("Code"),
            "; sent to its dead-letter queue" if dead_letter else "; no dead-letter queue: dropped",
        )
        if dead_letter:
            attributes = {
                "ERROR_CODE": error.get("Code", ""),
                "ERROR_MESSAGE": error.get("Message", ""),
                "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts" if retried else "",
                "RETRY_ATTEMPTS": str(attempts),
                "SCHEDULE_ARN": schedule["Arn"],
                "TARGET_ARN": target["Arn"],
            }
            queue_url = self.sqs.get_queue_url(QueueName=dead_letter.rpartition(":")[2])["QueueUrl"]
            with acting_as(target["RoleArn"]):  # Scheduler dead-letters with the schedule's role
                self.sqs.send_message(
                    QueueUrl=queue_url,
                    MessageBody=target.get("Input", "{}"),
                    MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
                )
            self.dead_lettered.append((schedule["Name"], error.get("Code", "")))
        return True
