"""What the system under test asks of AWS: requests by service and operation, and DynamoDB capacity.

Counted where botocore sends each request (its `before-send` event, where moto answers), so every
client counts — the functions', the state machine's service integrations, the event source's polls.
Requests made by whoever drives the runtime (a benchmark's setup and audit, waiting for an
execution) and by the runtime's stand-in for EventBridge Scheduler are not the system's and are
left out. Lambda invocations are counted by the functions themselves (LocalFunction.invocations).

DynamoDB bills capacity units, not requests, so each data-plane request is also priced in read and
write units by DynamoDB's rules: reads per 4 KB (half for eventually consistent), writes per 1 KB,
transactions twice; item sizes from the item as stored after the request.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import dynamodb_backends

_HARNESS_THREADS = ("bulkmail-scheduler", "outbox-writer")


def _is_system_thread() -> bool:
    thread = threading.current_thread()
    return thread is not threading.main_thread() and thread.name not in _HARNESS_THREADS


def _attribute_size(value: dict[str, Any]) -> int:
    """Approximately DynamoDB's size of one typed attribute value, in bytes."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return len(v.lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_attribute_size({kind[0]: x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + _attribute_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _attribute_size(x) for k, x in v.items())
    return 0


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + _attribute_size(v) for k, v in (item or {}).items())


def read_units(total_bytes: int, consistent: bool) -> float:
    units = max(1, math.ceil(total_bytes / 4096))
    return units if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


class Meter:
    def __init__(self, account: str, region: str, counts: Callable[[], bool] = _is_system_thread):
        self.account, self.region = account, region
        self.counts = counts
        self.requests: Counter[str] = Counter()  # "service.Operation" -> requests
        self.capacity: dict[str, float] = {"read": 0.0, "write": 0.0}  # units
        self.first_at: dict[str, float] = {}  # "service.Operation" -> time.monotonic() of the first
        self.last_at: dict[str, float] = {}  # ... and of the last
        self._lock = threading.Lock()

    def record(self, event_name: str, request, response) -> None:
        """Called for each request with botocore's event name, e.g. before-send.dynamodb.GetItem."""
        if not self.counts():
            return
        _, service, operation = event_name.split(".", 2)
        if service == "lambda" and operation == "Invoke":
            return  # counted as invocations
        read, write = self._dynamodb_units(operation, request, response) if service == "dynamodb" else (0, 0)
        name, now = f"{service}.{operation}", time.monotonic()
        with self._lock:
            self.requests[name] += 1
            self.first_at.setdefault(name, now)
            self.last_at[name] = now
            self.capacity["read"] += read
            self.capacity["write"] += write

    def by_service(self) -> Counter[str]:
        services: Counter[str] = Counter()
        for name, n in self.requests.items():
            services[name.split(".")[0]] += n
        return services

    def non_ses_requests(self) -> int:
        return sum(n for name, n in self.requests.items() if not name.startswith("sesv2."))

    def per_email(self, emails: int) -> dict[str, float]:
        return {name: round(n / emails, 4) for name, n in sorted(self.requests.items())}

    # --- DynamoDB capacity units -----------------------------------------------------------------
    def _stored(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        backend = dynamodb_backends[self.account][self.region]
        item = backend.get_item(table, key)
        return item.to_json()["Attributes"] if item else None

    def _dynamodb_units(self, operation: str, request, response) -> tuple[float, float]:
        if response is None or response.status_code >= 300:
            return 0, 0  # a condition that failed still costs a write; rare enough here to leave out
        params = json.loads(request.body or b"{}")
        body = json.loads(response.content or b"{}")
        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            return read_units(item_size(body.get("Item")), consistent), 0
        if operation == "BatchGetItem":
            return sum(
                read_units(item_size(i), consistent) for items in body.get("Responses", {}).values() for i in items
            ), 0
        if operation in ("Query", "Scan"):
            return read_units(sum(item_size(i) for i in body.get("Items", [])), consistent), 0
        if operation == "PutItem":
            return 0, write_units(item_size(params["Item"]))
        if operation in ("UpdateItem", "DeleteItem"):
            return 0, write_units(item_size(self._stored(params["TableName"], params["Key"])))
        if operation == "BatchWriteItem":
            return 0, sum(
                write_units(item_size(r.get("PutRequest", {}).get("Item")))
                for requests in params["RequestItems"].values()
                for r in requests
            )
        if operation == "TransactWriteItems":
            units = 0
            for entry in params["TransactItems"]:
                ((kind, op),) = entry.items()
                if kind == "Put":
                    units += write_units(item_size(op["Item"]))
                elif kind == "ConditionCheck":
                    units += 1
                else:
                    units += write_units(item_size(self._stored(op["TableName"], op["Key"])))
            return 0, 2 * units
        return 0, 0
