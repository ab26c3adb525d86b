"""The one clock: every time bulkmail stores or compares comes from a Clock, so a test can set it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()


def iso(moment: datetime) -> str:
    """The stored form of a time: ISO 8601, UTC, milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def now_iso(clock: Clock = SYSTEM_CLOCK) -> str:
    return iso(clock.now())
