"""Lists, their members, segments and the custom fields in use.

- The lists registry (LISTS_TABLE): one small item per list: its name, description, creation date.
  Written by ContactStore.put_many before the contacts themselves (idempotent, so a retried or
  half-done import leaves at most a known list with no one on it yet), and by POST /lists.
- The audience index (AUDIENCE_TABLE, key pk + sk), one table for three kinds of item:
  - a membership: pk "list#<name>", sk the email. A key-only row is written before the contact that
    names the list, and removed after the contact leaves it, so the index holds at least every member;
    after each write of the contact the row is rewritten with a copy of its status, lists, attributes
    and names (ROW_FIELDS). A list's members are one Query, so the fan-out and a segment's count read
    what the targeted lists hold, not the whole contacts table, and at the index's size, not a read
    per contact. The contact item stays the truth: the worker checks its status before it sends.
  - a segment: pk "segment", sk the segment id, the definition in `definition`.
  - a custom field in use: pk "field", sk the attribute's name (placeholder validation knows them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from bulkmail.adapters import dynamo
from bulkmail.ports import Cursor
from bulkmail.segments import CONTACT_FIELDS

MEMBER = "list#"
# What a membership row copies from its contact: what the fan-out and segments read (the email is its sk).
ROW_FIELDS = (*(f for f in CONTACT_FIELDS if f != "email"), "lists", "attributes")
SEGMENT = "segment"
FIELD = "field"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ListRegistry:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.table = dynamo.table(table_name)

    def register(self, names: Iterable[str]) -> None:
        """Make these lists known, keeping the name and description a list was created with."""
        wanted = sorted(set(names))
        if not wanted:
            return
        known = {i["list_name"] for i in dynamo.batch_get(self.table_name, [{"list_name": n} for n in wanted])}
        for name in wanted:
            if name not in known:
                self.table.update_item(
                    Key={"list_name": name},
                    UpdateExpression="SET created_at = if_not_exists(created_at, :now)",
                    ExpressionAttributeValues={":now": _now()},
                )

    def create(self, name: str, title: str, description: str) -> bool:
        """A new list; False when one of that name exists."""
        return dynamo.conditional_write(
            lambda: self.table.put_item(
                Item={"list_name": name, "name": title, "description": description, "created_at": _now()},
                ConditionExpression="attribute_not_exists(list_name)",
            )
        )

    def get(self, name: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"list_name": name}, ConsistentRead=True).get("Item")
        return dynamo.plain(item) if item else None

    def remove(self, name: str) -> None:
        self.table.delete_item(Key={"list_name": name})

    def exists(self, name: str) -> bool:
        return "Item" in self.table.get_item(Key={"list_name": name}, ConsistentRead=True)

    def all(self) -> list[dict[str, Any]]:
        """Every list, sorted by name (one small table: a page or two)."""
        return sorted(dynamo.items("scan", self.table_name), key=lambda i: str(i["list_name"]))

    def names(self, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` list names, sorted, and whether there are more."""
        found = [str(i["list_name"]) for i in self.all()]
        return found[:limit], len(found) > limit


class AudienceIndex:
    """Memberships, segments and custom field names in the audience table (see the module's docstring)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.table = dynamo.table(table_name)

    # --- memberships ---------------------------------------------------------------------------
    def add_members(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(list, email) memberships, idempotently."""
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for name, email in sorted(set(pairs)):
                writer.put_item(Item={"pk": MEMBER + name, "sk": email})

    def put_rows(self, contacts: Iterable[dict[str, Any]]) -> None:
        """A membership row per list of each stored contact, with a copy of what segments and the fan-out
        read (ROW_FIELDS): the fan-out then reads only the index, priced by size, not a contact per member."""
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for contact in contacts:
                copy = {k: contact[k] for k in ROW_FIELDS if k in contact}
                for name in sorted(set(contact.get("lists") or ())):
                    writer.put_item(Item=dynamo.to_dynamo({**copy, "pk": MEMBER + name, "sk": contact["email"]}))

    def rows_page(self, name: str, cursor: Cursor | None, limit: int) -> tuple[list[dict[str, Any]], Cursor | None]:
        """Up to `limit` membership rows of a list (email in `sk`), and the cursor for the next page."""
        return dynamo.page(self.table.query, cursor, KeyConditionExpression=Key("pk").eq(MEMBER + name), Limit=limit)

    def remove_members(self, pairs: Iterable[tuple[str, str]]) -> None:
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for name, email in sorted(set(pairs)):
                writer.delete_item(Key={"pk": MEMBER + name, "sk": email})

    def members_page(self, name: str, cursor: Cursor | None, limit: int) -> tuple[list[str], Cursor | None]:
        """Up to `limit` members' emails of a list, in address order, and the cursor for the next page."""
        rows, next_key = self.rows_page(name, cursor, limit)
        return [str(row["sk"]) for row in rows], next_key

    def count_members(self, name: str) -> int:
        """How many rows the list's index holds. Read whole rather than with Select=COUNT: a COUNT costs the
        same read units on DynamoDB, and moto answers 0 to a COUNT Query on a key condition."""
        return sum(1 for _ in self._query(MEMBER + name))

    # --- segments ------------------------------------------------------------------------------
    def create_segment(self, definition: dict[str, Any]) -> bool:
        """Store a new segment; False when the id is taken."""
        item = {"pk": SEGMENT, "sk": definition["segment_id"], "definition": definition, "created_at": _now()}
        return dynamo.conditional_write(
            lambda: self.table.put_item(Item=dynamo.to_dynamo(item), ConditionExpression="attribute_not_exists(pk)")
        )

    def segment(self, segment_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": SEGMENT, "sk": segment_id}, ConsistentRead=True).get("Item")
        if not item:
            return None
        return {**dynamo.plain(item["definition"]), "created_at": item.get("created_at")}

    def segments(self) -> list[dict[str, Any]]:
        return [{**dynamo.plain(i["definition"]), "created_at": i.get("created_at")} for i in self._query(SEGMENT)]

    def delete_segment(self, segment_id: str) -> bool:
        answer = self.table.delete_item(Key={"pk": SEGMENT, "sk": segment_id}, ReturnValues="ALL_OLD")
        return "Attributes" in answer

    # --- custom fields -------------------------------------------------------------------------
    def note_fields(self, names: Iterable[str]) -> None:
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for name in sorted(set(names)):
                writer.put_item(Item={"pk": FIELD, "sk": name})

    def fields(self) -> list[str]:
        return [str(i["sk"]) for i in self._query(FIELD)]

    def _query(self, pk: str) -> Iterator[dict[str, Any]]:
        """Every item under a partition key, page by page."""
        return dynamo.items("query", self.table_name, KeyConditionExpression=Key("pk").eq(pk))
