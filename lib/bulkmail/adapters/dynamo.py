"""Shared DynamoDB plumbing: one resource per container, the retry rules, and plain-Python items.

Retries live here, once, for every DynamoDB request bulkmail makes:
- botocore's standard mode retries throttling (ProvisionedThroughputExceeded, ThrottlingException,
  RequestLimitExceeded) and 5xx answers, with jittered exponential backoff;
- it does not retry TransactionConflictException (a plain write to an item a transaction holds) nor a
  TransactionCanceledException whose only reasons are conflicts or throttling. Neither wrote anything,
  so `_retry_conflicts` (a `needs-retry` hook on the same client) retries them the same way.
A request that still fails after that raises; `is_retryable` tells callers it is worth retrying later,
and a workflow step raises it as DatabaseBusy (`busy_as_named_error`), which its state's Retry covers.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError

from bulkmail.adapters.caching import per_container
from bulkmail.errors import BadCursor, DatabaseBusy
from bulkmail.models import dynamodb_item_size
from bulkmail.ports import Cursor

_deserializer = TypeDeserializer()

MAX_ATTEMPTS = 10  # per request, first attempt included
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.5
# Cancellation reasons of a transaction that wrote nothing and may simply be tried again.
RETRYABLE_CANCELLATION = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
RETRYABLE_CODES = frozenset(
    {
        "TransactionConflictException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


def backoff(attempt: int) -> float:
    """Full jitter: a random delay up to an exponentially growing, capped bound."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


def cancellation_reasons(error: Mapping[str, Any]) -> list[str]:
    return [r.get("Code") or "None" for r in error.get("CancellationReasons", [])]


def is_retryable(exc: BaseException) -> bool:
    """A DynamoDB error that wrote nothing and may succeed when tried again."""
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "TransactionCanceledException":
        reasons = set(cancellation_reasons(exc.response)) - {"None"}
        return bool(reasons) and reasons <= RETRYABLE_CANCELLATION
    return code in RETRYABLE_CODES


def _retry_conflicts(response: Any = None, attempts: int = 0, **_kwargs: Any) -> float | None:
    """botocore `needs-retry` hook: the delay before trying a conflict again, or None (not ours)."""
    if response is None or attempts >= MAX_ATTEMPTS:
        return None
    error = response[1].get("Error", {}) if isinstance(response[1], dict) else {}
    code = error.get("Code", "")
    if code == "TransactionConflictException":
        return backoff(attempts)
    if code == "TransactionCanceledException":
        reasons = set(cancellation_reasons(response[1])) - {"None"}
        if reasons and reasons <= RETRYABLE_CANCELLATION:
            return backoff(attempts)
    return None


@contextmanager
def busy_as_named_error() -> Iterator[None]:
    """Let a retryable fault leave a workflow step as DatabaseBusy, which the state machine retries."""
    try:
        yield
    except ClientError as exc:
        if is_retryable(exc):
            raise DatabaseBusy(f"DynamoDB: {exc}") from exc
        raise


@per_container
def resource() -> Any:
    dynamodb = boto3.resource(
        "dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS})
    )
    dynamodb.meta.client.meta.events.register("needs-retry.dynamodb", _retry_conflicts)
    return dynamodb


def table(name: str) -> Any:
    return resource().Table(name)


def client() -> Any:
    # The resource's client converts plain Python values to and from DynamoDB JSON.
    return resource().meta.client


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_conditional_failure(exc: ClientError) -> bool:
    """A write whose condition did not hold (nothing was written)."""
    return error_code(exc) == "ConditionalCheckFailedException"


def conditional_write(write: Callable[[], Any]) -> bool:
    """Run a conditional write: False when its condition did not hold (nothing was written)."""
    try:
        write()
    except ClientError as exc:
        if is_conditional_failure(exc):
            return False
        raise
    return True


def set_clause(fields: dict[str, Any], prefix: str = "f") -> tuple[str, dict[str, str], dict[str, Any]]:
    """`#f0 = :f0, ...` for an UpdateExpression's SET, with its attribute names and (stored) values:
    every field name goes through a placeholder, so a reserved word (status, name) is safe."""
    names = {f"#{prefix}{i}": name for i, name in enumerate(fields)}
    values = {f":{prefix}{i}": to_dynamo(value) for i, value in enumerate(fields.values())}
    return ", ".join(f"#{prefix}{i} = :{prefix}{i}" for i in range(len(fields))), names, values


BATCH_GET_KEYS = 100  # BatchGetItem's limit per request
UNPROCESSED_RETRIES = 5


def batch_get(
    table_name: str, keys: list[dict[str, Any]], *, consistent: bool = False, projection: str | None = None
) -> list[dict[str, Any]]:
    """The items of `keys` that exist, as plain Python, in requests of at most 100 keys. The keys
    DynamoDB leaves unprocessed (throttling, the 16 MB answer limit) are asked again, with backoff,
    a bounded number of times."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        ask: dict[str, Any] = {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}
        if projection:
            ask["ProjectionExpression"] = projection
        request: dict[str, Any] = {table_name: ask}
        for attempt in range(UNPROCESSED_RETRIES + 1):
            response = resource().batch_get_item(RequestItems=request)
            found += [plain(item) for item in response["Responses"].get(table_name, [])]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt == UNPROCESSED_RETRIES:
                raise RuntimeError(
                    f"BatchGetItem on {table_name} left {len(request[table_name]['Keys'])} keys unprocessed"
                )
            time.sleep(backoff(attempt))
    return found


def pages(operation: str, table_name: str, **request: Any) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan (`operation`), botocore's paginator following LastEvaluatedKey."""
    yield from client().get_paginator(operation).paginate(TableName=table_name, **request)


def items(operation: str, table_name: str, **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Query or Scan, as plain Python, a page at a time."""
    for answer in pages(operation, table_name, **request):
        yield from (plain(item) for item in answer["Items"])


def page(read: Callable[..., Any], cursor: Cursor | None, **request: Any) -> tuple[list[dict[str, Any]], Cursor | None]:
    """One page of a Query or Scan (`read`: a table's query or scan) from `cursor` (None: from the start),
    as plain Python, and the key to go on from: None at the end."""
    answer = read(**request, **({"ExclusiveStartKey": cursor} if cursor else {}))
    return [plain(item) for item in answer["Items"]], answer.get("LastEvaluatedKey")


def plain(value: Any) -> Any:
    """DynamoDB's Decimals and sets turned into JSON-friendly ints, floats and sorted lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    return value


def from_wire(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A low-level item (as in ConditionalCheckFailed's ALL_OLD) as plain Python."""
    if item is None:
        return None
    result: dict[str, Any] = plain({k: _deserializer.deserialize(v) for k, v in item.items()})
    return result


def to_dynamo(value: Any) -> Any:
    """Floats are not accepted by boto3: store them as Decimals."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    return value


# --- pages handed to API clients --------------------------------------------------------------------
def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(plain(key), sort_keys=True).encode()).decode()


def decode_cursor(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor(token) from None
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise BadCursor(token)
    return key


# A filtered listing reads on until its page is full; on a huge partition with few matches it stops
# here with a token that goes on reading (API Gateway answers within 29 s).
LIST_READ_SECONDS = 10.0
# A page holds at most what one DynamoDB page does: campaign items can be large, Lambda answers <= 6 MB.
LIST_PAGE_BYTES = 1024 * 1024


def list_page(
    table_name: str,
    limit: int,
    cursor: dict[str, Any] | None,
    key_names: tuple[str, ...],
    key_condition: tuple[str, str] | None = None,
    status: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    records_only: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a table (scan) or of one partition (query), optionally filtered on `status`, and the
    key to go on from: None when nothing is left.

    DynamoDB applies a filter after `Limit`, so a filtered page is read on until it holds `limit`
    items (or LIST_PAGE_BYTES); a next key is handed out only for an item that was read and left for
    the next page. `key_names`: the table's key attributes. `records_only`: leave out the items that
    have no status (the campaigns table's counter shards and content versions)."""
    kwargs: dict[str, Any] = {"TableName": table_name}
    values: dict[str, Any] = {}
    filtered = bool(status) or records_only
    if not filtered:
        kwargs["Limit"] = limit + 1
    if filtered:
        kwargs["FilterExpression"] = "#status = :status" if status else "attribute_exists(#status)"
        kwargs["ExpressionAttributeNames"] = {"#status": "status"}
    if status:
        values[":status"] = status
    if key_condition:
        kwargs["KeyConditionExpression"] = f"{key_condition[0]} = :pk"
        values[":pk"] = key_condition[1]
    if values:
        kwargs["ExpressionAttributeValues"] = values
    call = client().query if key_condition else client().scan
    items: list[dict[str, Any]] = []
    size, start, deadline = 0, cursor, clock() + LIST_READ_SECONDS
    while True:
        page = call(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            item_size = dynamodb_item_size(item)
            if len(items) == limit or (items and size + item_size > LIST_PAGE_BYTES):
                return [plain(i) for i in items], {name: items[-1][name] for name in key_names}
            items.append(item)
            size += item_size
        start = page.get("LastEvaluatedKey")
        if not start or clock() > deadline:
            return [plain(i) for i in items], start
