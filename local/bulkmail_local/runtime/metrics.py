"""Powertools metrics in the embedded runtime: per container, and written where CloudWatch would read them.

On Lambda a process is a container, so Powertools keeping its metric set in class attributes (shared
by every Metrics()) is per container. Here one process runs many containers on threads; sharing that
set means one invocation flushes (or loses) another's metrics, and iterating it while another thread
adds to it can fail. So each loaded handler module gets a metric set of its own (private_metrics).

Powertools writes EMF documents with print(), to stdout, where Lambda's log stream collects them;
it also prints mid-invocation once a metric holds 100 values, whatever POWERTOOLS_METRICS_DISABLED
says. Locally they go to the functions' log file instead of the user's terminal, and are added up in
EmfSink for the CLI and the tests.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import Any, TextIO


class EmfSink:
    """Receives what Powertools prints: EMF documents are logged and summed per (namespace, metric name)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self._lock = threading.Lock()
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._samples: dict[tuple[str, str], int] = defaultdict(int)
        self.documents = 0

    def __call__(self, *args: Any, **_kwargs: Any) -> None:
        text = " ".join(str(a) for a in args)
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        with self._lock:
            if self.stream is not None:
                self.stream.write(text + "\n")
            if isinstance(document, dict) and "_aws" in document:
                self.documents += 1
                for directive in document["_aws"]["CloudWatchMetrics"]:
                    for metric in directive["Metrics"]:
                        values = document[metric["Name"]]
                        values = values if isinstance(values, list) else [values]
                        key = (directive["Namespace"], metric["Name"])
                        self._sums[key] += sum(values)
                        self._samples[key] += len(values)

    def totals(self, namespace: str | None = None) -> dict[str, float]:
        """Metric name → the sum of its values (in `namespace`, or all)."""
        with self._lock:
            return {name: total for (ns, name), total in self._sums.items() if namespace in (None, ns)}

    def samples(self, name: str) -> int:
        """How many values a metric received (a latency's sends, say)."""
        with self._lock:
            return sum(n for (_, metric), n in self._samples.items() if metric == name)
