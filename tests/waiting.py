"""Waiting, with a deadline, for what runs on its own: a runtime's worker threads, a `bulkmail serve`
process. Where the runtime's clock can move instead (SQS visibility, schedules), a test advances it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str = "", timeout: float = 60.0, every: float = 0.05) -> T:
    """The first truthy value of `check()`, asked every `every` seconds; fails after `timeout` seconds,
    naming `what` (or the check) and its last answer."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or check.__qualname__} (last: {value!r:.500})")
        time.sleep(every)
        value = check()
    return value
