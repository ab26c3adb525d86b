"""Per-container caching of clients and adapters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class per_container(Generic[T]):
    """Cache a zero-argument factory's value per thread.

    A Lambda container runs one invocation at a time, so per thread is per container on AWS; the
    embedded runtime runs one container per thread. boto3 resources must not be shared across threads.
    `cache_clear()` forgets every thread's value (a cold start everywhere).
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self._local = threading.local()
        self._generation = 0

    def __call__(self) -> T:
        if getattr(self._local, "generation", None) != self._generation:
            self._local.value = self.factory()
            self._local.generation = self._generation
        value: T = self._local.value
        return value

    def cache_clear(self) -> None:
        self._generation += 1
