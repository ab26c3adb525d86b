"""Sharded counters: a campaign's tallies on small items of their own, never on its record.

DynamoDB gives one item at most 1,000 write units a second, and a write to an item costs one unit
per KB of the whole item (two in a transaction). Counted on the campaign record (60 KB of content),
one 50-recipient batch cost ~124 units on that one item: ~400 emails/s per campaign. So each count
goes to one of SHARDS small items (< 1 KB: 1 unit, 2 in a transaction) and a reader sums them.

The arithmetic (docs/scale.md): at 10,000 emails/s a campaign records 200 batches/s (2 units each)
and, at a 2 % bounce rate, ~210 feedback events/s (2 units each): ~820 units/s in all, which SHARDS
items share at ~100 units/s each — 10 % of what one item takes, leaving room for engagement counts.

Items live in the campaigns table under key ``campaign_id = "<campaign id>#counts#<n>"`` (a
campaign id has no "#": the schema allows letters, digits, "_" and "-"), so every function that
writes a campaign's record may count without a new table; readers ask for the SHARDS keys at once
(BatchGetItem). An item exists from its first count; a missing one counts as zero.

For a writer (the worker, the feedback handler, the tracking of opens and clicks):

- ``add_entry(table, campaign_id, counts, key=...)`` is one ``Update`` for a TransactWriteItems:
  put it in the same transaction as the write it counts (the ledger row, the feedback mark), so that
  the count happens exactly when that write does — a retried or conflicting transaction counts
  nothing, a committed one counts once.
- ``add(table, campaign_id, counts, key=...)`` counts on its own, for a count that needs no such tie.
- ``key`` picks the shard (a batch id, a recipient): any string; a stable one makes retries land on
  the same shard. ``counts`` maps attribute names (``sent_count``, ``opened_count``, ...) to
  increments; new names need no schema change and are summed like the rest.

For a reader: ``totals(table, [campaign_id, ...])`` → ``{campaign_id: {name: total}}``, eventually
consistent unless ``consistent=True`` (the completion check reads consistently).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from bulkmail.adapters import dynamo

SHARDS = 8
SEPARATOR = "#counts#"
# Attributes of a shard item that are not counts.
_NOT_COUNTS = frozenset({"campaign_id", "updated_at"})


def shard_id(campaign_id: str, shard: int) -> str:
    return f"{campaign_id}{SEPARATOR}{shard}"


def is_shard_id(item_id: str) -> bool:
    """Whether a campaigns-table key is a counter shard's (not a campaign's own record)."""
    return SEPARATOR in item_id


def shard_of(key: str) -> int:
    """The shard that `key` (a batch id, a recipient) counts on: stable across processes."""
    return zlib.crc32(key.encode()) % SHARDS


def _update(campaign_id: str, counts: Mapping[str, int], key: str, now_iso: str) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(counts)}
    values: dict[str, Any] = {f":c{i}": int(n) for i, n in enumerate(counts.values())}
    values[":now"] = now_iso
    adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
    return {
        "Key": {"campaign_id": shard_id(campaign_id, shard_of(key))},
        "UpdateExpression": "SET updated_at = :now" + (f" ADD {adds}" if adds else ""),
        **({"ExpressionAttributeNames": names} if names else {}),
        "ExpressionAttributeValues": values,
    }


def add_entry(
    table_name: str, campaign_id: str, counts: Mapping[str, int], *, key: str, now_iso: str
) -> dict[str, Any]:
    """One TransactWriteItems entry adding `counts` to one of the campaign's shards."""
    return {"Update": {"TableName": table_name, **_update(campaign_id, counts, key, now_iso)}}


def add(table_name: str, campaign_id: str, counts: Mapping[str, int], *, key: str, now_iso: str) -> None:
    """Add `counts` to one of the campaign's shards (one UpdateItem)."""
    dynamo.table(table_name).update_item(**_update(campaign_id, counts, key, now_iso))


def totals(table_name: str, campaign_ids: Iterable[str], *, consistent: bool = False) -> dict[str, dict[str, int]]:
    """Each campaign's counts summed over its shards: {campaign_id: {name: total}} (every id is there)."""
    ids = list(dict.fromkeys(campaign_ids))
    keys = [{"campaign_id": shard_id(c, n)} for c in ids for n in range(SHARDS)]
    sums: dict[str, dict[str, int]] = {c: {} for c in ids}
    for item in dynamo.batch_get(table_name, keys, consistent=consistent):
        owner = item["campaign_id"].split(SEPARATOR, 1)[0]
        for name, value in item.items():
            if name not in _NOT_COUNTS and isinstance(value, int):
                sums[owner][name] = sums[owner].get(name, 0) + value
    return sums
