"""Shared DynamoDB plumbing: one resource per container and plain-Python items."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from bulkmail.adapters.caching import per_container

_deserializer = TypeDeserializer()


@per_container
def resource():
    return boto3.resource("dynamodb")


def table(name: str):
    return resource().Table(name)


def client():
    # The resource's client converts plain Python values to and from DynamoDB JSON.
    return resource().meta.client


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
    return plain({k: _deserializer.deserialize(v) for k, v in item.items()})


def to_dynamo(value: Any) -> Any:
    """Floats are not accepted by boto3: store them as Decimals."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    return value
