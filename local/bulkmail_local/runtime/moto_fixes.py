"""Two changes to moto for the embedded runtime, both about cost, neither about behaviour (guarded by
tests/unit/test_runtime_seams.py: each answers as moto's does, and moto still has the cost).

1. TransactWriteItems without copying whole tables. moto backs up every table a transaction touches
with copy.deepcopy before it starts, so each transaction costs time in proportion to the table's
size and a campaign's run time grows with the square of its recipients (measured: the ledger
transaction was the top cost at 5,000 recipients). This version checks every condition against the
state before the transaction — as DynamoDB does — then applies the writes, backing up only the items
it touches. Requests are already serialised by the runtime, so nothing interleaves.

2. DynamoDB item responses as plain JSON. moto's generic response serializer walks the output shape
value by value; for GetItem/BatchGetItem/Query/... that walk was a fifth of a campaign's CPU time.
Their results are already in DynamoDB's wire format (typed attribute values, plain str/number/bool),
so `json.dumps` gives the same body; anything json cannot take (bytes of a B attribute, a datetime)
falls back to moto's serializer.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend


def _key(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen: set[tuple[str, str]] = set()
    planned: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = []
    errors: list[tuple[str | None, str | None, Any]] = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        key = _key(self, op_type, op)
        marker = (op["TableName"], str(dict(sorted(key.items()))))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition and not get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            old = (
                current.to_json()["Attributes"]
                if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                else None
            )
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            errors.append((None, None, None))
        planned.append((op_type, op, key, copy.deepcopy(current)))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    applied = []
    try:
        for op_type, op, key, before in planned:
            names, values = op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"])
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            applied.append((op["TableName"], key, before))
    except Exception:
        for table_name, key, before in reversed(applied):  # undo, item by item
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


_ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_serialize_result = BaseJSONSerializer._serialize_result


def serialize_result(self: BaseJSONSerializer, resp: Any, result: Any) -> Any:
    operation = self.operation_model
    if (
        operation.service_model.service_name == "dynamodb"
        and operation.name in _ITEM_OPERATIONS
        and isinstance(result, dict)
    ):
        try:
            resp["body"] = json.dumps(result, separators=(",", ":"))
        except TypeError:
            return _serialize_result(self, resp, result)
        resp["headers"]["Content-Type"] = self._get_protocol_specific_content_type()
        return resp
    return _serialize_result(self, resp, result)
