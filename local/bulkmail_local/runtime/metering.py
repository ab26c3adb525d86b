"""What the system under test asks of AWS: requests by service and operation, and DynamoDB capacity.

Counted where botocore sends each request (its `before-send` event, where moto answers), so every
client counts — the functions', the state machine's service integrations, the event source's polls.
Requests made by whoever drives the runtime (a benchmark's setup and audit, waiting for an
execution) and by the runtime's stand-in for EventBridge Scheduler are not the system's and are
left out. Lambda invocations are counted by the functions themselves (LocalFunction.invocations).

DynamoDB bills capacity units, not requests, so each data-plane request is also priced in read and
write units by DynamoDB's rules: reads per 4 KB (half for eventually consistent), writes per 1 KB,
transactions twice; item sizes from the item as stored after the request. A read is priced on the
whole stored item even when a projection returns less, and a Scan or Query on every item it read,
filter or not (ScannedCount, at the table's mean item size), as DynamoDB bills them.

Write units are also kept per item (`item_writes`, and `sending_item_writes` from the first SendEmail
on): one item takes at most 1,000 write units a second, so the busiest item's units per email while
sending bound a campaign's send rate. Read units are kept per
table (`table_reads`), and Scan/Query reads per table apart (`table_scan_reads`: finding an audience).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, defaultdict
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
        self.item_writes: Counter[tuple[str, str]] = Counter()  # (table, key as JSON) -> write units
        self.sending_item_writes: Counter[tuple[str, str]] = Counter()  # ... from the first SendEmail on
        self.table_reads: defaultdict[str, float] = defaultdict(float)  # table -> read units
        self.table_scan_reads: defaultdict[str, float] = defaultdict(float)  # ... of its Scans and Queries
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
        reads: list[tuple[str, float]] = []
        writes: list[tuple[tuple[str, str], int]] = []
        if service == "dynamodb" and response is not None and response.status_code < 300:
            # (a condition that failed still costs a write; rare enough here to leave out)
            reads, writes = self._dynamodb_units(operation, json.loads(request.body or b"{}"), response)
        name, now = f"{service}.{operation}", time.monotonic()
        with self._lock:
            self.requests[name] += 1
            self.first_at.setdefault(name, now)
            self.last_at[name] = now
            for table, units in reads:
                self.capacity["read"] += units
                self.table_reads[table] += units
                if operation in ("Query", "Scan"):
                    self.table_scan_reads[table] += units
            sending = "sesv2.SendEmail" in self.first_at
            for item, wunits in writes:
                self.capacity["write"] += wunits
                self.item_writes[item] += wunits
                if sending:
                    self.sending_item_writes[item] += wunits

    def busiest_item(self, *, sending: bool = False) -> tuple[tuple[str, str], int]:
        """The item that took the most write units, and how many: ((table, key), units). `sending`:
        only from the first SendEmail on — what bounds a campaign's rate, without its one-off writes
        (creating it writes its content item: 2 × 61 units for 60 KB in the create transaction)."""
        with self._lock:
            writes = self.sending_item_writes if sending else self.item_writes
            return writes.most_common(1)[0] if writes else (("", ""), 0)

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

    def _table_mean_size(self, table: str) -> float:
        items = dynamodb_backends[self.account][self.region].get_table(table).all_items()
        return sum(item_size(i.to_json()["Attributes"]) for i in items) / len(items) if items else 0.0

    def _full(self, table: str, item: dict[str, Any]) -> dict[str, Any] | None:
        """The stored item that a (possibly projected) returned item is: reads cost its whole size."""
        t = dynamodb_backends[self.account][self.region].get_table(table)
        key = {k: item[k] for k in (t.hash_key_attr, t.range_key_attr) if k and k in item}
        return self._stored(table, key) if len(key) == (2 if t.range_key_attr else 1) else item

    def _dynamodb_units(
        self, operation: str, params: dict[str, Any], response
    ) -> tuple[list[tuple[str, float]], list[tuple[tuple[str, str], int]]]:
        """([(table, read units)], [((table, key), write units)]) of one successful request."""
        body = json.loads(response.content or b"{}")
        table = params.get("TableName", "")
        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            found = body.get("Item")
            return [(table, read_units(item_size(self._full(table, found) if found else None), consistent))], []
        if operation == "BatchGetItem":
            return [
                (
                    name,
                    read_units(
                        item_size(self._full(name, i)), bool(params["RequestItems"][name].get("ConsistentRead"))
                    ),
                )
                for name, items in body.get("Responses", {}).items()
                for i in items
            ], []
        if operation in ("Query", "Scan"):
            scanned = int(body.get("ScannedCount", len(body.get("Items", []))))
            size = scanned * self._table_mean_size(table) if scanned else 0
            return [(table, read_units(math.ceil(size), consistent))], []
        if operation == "PutItem":
            return [], [(_item_key(table, params["Item"], self), write_units(item_size(params["Item"])))]
        if operation in ("UpdateItem", "DeleteItem"):
            stored = self._stored(table, params["Key"])
            return [], [((table, _key_json(params["Key"])), write_units(item_size(stored)))]
        if operation == "BatchWriteItem":
            return [], [
                (_item_key(name, r["PutRequest"]["Item"], self), write_units(item_size(r["PutRequest"]["Item"])))
                for name, requests in params["RequestItems"].items()
                for r in requests
                if "PutRequest" in r
            ]
        if operation == "TransactWriteItems":
            writes: list[tuple[tuple[str, str], int]] = []
            for entry in params["TransactItems"]:
                ((kind, op),) = entry.items()
                name = op["TableName"]
                if kind == "Put":
                    writes.append((_item_key(name, op["Item"], self), 2 * write_units(item_size(op["Item"]))))
                elif kind == "ConditionCheck":
                    writes.append(((name, _key_json(op["Key"])), 2))
                else:
                    units = write_units(item_size(self._stored(name, op["Key"])))
                    writes.append(((name, _key_json(op["Key"])), 2 * units))
            return [], writes
        return [], []


def _key_json(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


def _item_key(table: str, item: dict[str, Any], meter: Meter) -> tuple[str, str]:
    t = dynamodb_backends[meter.account][meter.region].get_table(table)
    return table, _key_json({k: item[k] for k in (t.hash_key_attr, t.range_key_attr) if k and k in item})
