"""The lists registry: the name of every list a contact was ever imported into, one small item each.

Written by ContactStore.put_many before the contacts themselves (a put of a name is idempotent, so a
retried or half-done import leaves at most a known list with no one on it yet); read by the API, which
refuses a campaign to a list nobody was imported into without scanning the contacts table.
"""

from __future__ import annotations

from collections.abc import Iterable

from bulkmail.adapters import dynamo


class ListRegistry:
    def __init__(self, table_name: str):
        self.table_name = table_name
        self.table = dynamo.table(table_name)

    def register(self, names: Iterable[str]) -> None:
        with self.table.batch_writer(overwrite_by_pkeys=["list_name"]) as writer:
            for name in sorted(set(names)):
                writer.put_item(Item={"list_name": name})

    def exists(self, name: str) -> bool:
        return "Item" in self.table.get_item(Key={"list_name": name}, ConsistentRead=True)

    def names(self, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` list names, sorted, and whether there are more (one small table: a page or two)."""
        pages = (
            dynamo.client().get_paginator("scan").paginate(TableName=self.table_name, ProjectionExpression="list_name")
        )
        found = sorted(item["list_name"] for page in pages for item in page["Items"])
        return found[:limit], len(found) > limit
