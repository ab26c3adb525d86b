"""The emulated account's clock: what moto's SQS (visibility, delays) and the scheduler read.

It runs with the machine's time, moved on by advance(): a test that waits out a visibility timeout
or a schedule's time advances the clock instead of sleeping (the runtime's threads see the same
clock). It never goes back, as AWS's does not.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class RuntimeClock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock does not go back")
        with self._lock:
            self._offset += seconds

    @property
    def offset(self) -> float:
        """Seconds this clock is ahead of the machine's."""
        return self._offset

    def time(self) -> float:
        """Seconds since the epoch, as time.time()."""
        return time.time() + self._offset

    def time_millis(self) -> float:
        return self.time() * 1000

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)
