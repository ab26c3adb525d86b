"""EventBridge Scheduler's part, emulated: fire one-time `at(...)` schedules when they fall due.

moto stores schedules but never fires them. This thread lists the stack's schedule groups, and for
each ENABLED one-time schedule whose time has come it calls the target (StartExecution with the
target's Input, as Scheduler's universal target does), then deletes the schedule when its
ActionAfterCompletion is DELETE.
"""
from __future__ import annotations

import logging
import re
import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from bulkmail_local.runtime.iam import acting_as

logger = logging.getLogger("bulkmail_local.scheduler")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def due_time(schedule: dict[str, Any]) -> datetime | None:
    """When a one-time schedule fires (aware), or None for any other kind of schedule."""
    match = _AT.match(schedule.get("ScheduleExpression", ""))
    if not match:
        return None
    zone = ZoneInfo(schedule.get("ScheduleExpressionTimezone") or "UTC")
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone)


class OneTimeScheduler:
    def __init__(self, scheduler_client, sfn_client, groups: list[str], tick_seconds: float = 0.25,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.scheduler = scheduler_client
        self.sfn = sfn_client
        self.groups = groups
        self.tick_seconds = tick_seconds
        self.now = now
        self.fired: list[tuple[str, str]] = []   # (schedule name, execution ARN)
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
                with acting_as(target["RoleArn"]):  # Scheduler calls the target as the schedule's role
                    arn = self.sfn.start_execution(stateMachineArn=target["Arn"], name=str(uuid.uuid4()),
                                                   input=target.get("Input", "{}"))["executionArn"]
                self.fired.append((summary["Name"], arn))
                fired += 1
                if schedule.get("ActionAfterCompletion") == "DELETE":
                    self.scheduler.delete_schedule(GroupName=group, Name=summary["Name"])
                else:
                    self.scheduler.update_schedule(
                        GroupName=group, Name=summary["Name"], ScheduleExpression=schedule["ScheduleExpression"],
                        FlexibleTimeWindow=schedule["FlexibleTimeWindow"], Target=target, State="DISABLED")
        return fired
