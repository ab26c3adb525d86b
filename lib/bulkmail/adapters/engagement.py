"""Opens, clicks and delivery outcomes: counted once each, on counters no send or event contends for.

One table (EngagementTable), keyed (campaign_id, key):
- `c#<kind>#<hour>#<shard>`: a counter shard, `n` events and `u` of them the first of their email;
  the hour makes the report's curves, the shard (random) spreads the writes of a busy hour;
- `l#<url hash>#<shard>`: a link's counter shard, with its `url`;
- `e#<fingerprint>`: the event was counted (a repeat delivery changes nothing), kept a week (opens,
  clicks and delivery delays, which an email can have several of);
- `u#<kind>#<message>` and `u#link#<url hash>#<message>`: the email's first of its kind was counted.
  In privacy mode `<message>` is a hash of the message id, and nothing is written on the ledger row.

Each event is one transaction: its marker, the unique markers it believes are new, the counters, and
(first open or click of a recipient) the ledger row. A unique marker that exists cancels it; it is
tried again without that part, at most a few times (docs/engagement.md).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.feedback import Engagement

COUNTER_SHARDS = 8
EVENT_MARKER_SECONDS = 7 * 86400  # EventBridge retries for at most a day
UNIQUE_MARKER_SECONDS = 400 * 86400  # opens keep coming for months
_ATTEMPTS = 4  # the whole, then without what a cancellation showed was counted already
_MAX_PAGES = 1000  # of 1 MB: far more counters than a year of hourly shards
# Kinds SES publishes at most once per email (a repeat is a redelivery of the same event): counted by
# their unique marker alone, one item less a write. Opens and clicks repeat: each has an event marker.
ONCE_PER_EMAIL = frozenset({"delivered", "rejected", "rendering_failed", "unsubscribed"})
_FIRST_FIELD = {"open": "first_open_at", "click": "first_click_at"}


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _hour(at: str) -> str:
    return (at or time.strftime("%Y-%m-%dT%H", time.gmtime()))[:13]


@dataclass(frozen=True)
class Counted:
    counted: bool  # False: a repeat of an event already counted
    unique: bool = False  # the first of its kind for this email
    link_unique: bool = False


class EngagementStore:
    def __init__(self, table: str, deliveries_table: str, clock: Any = time.time) -> None:
        self.table = table
        self.deliveries_table = deliveries_table
        self.clock = clock

    def record(self, e: Engagement) -> Counted:
        """Count one event, once however often it is delivered."""
        parts = {"unique": True, "link": bool(e.link), "ledger": e.kind in _FIRST_FIELD and not e.private}
        for _ in range(_ATTEMPTS):
            names, items = self._items(e, parts)
            try:
                dynamo.client().transact_write_items(TransactItems=items)
                return Counted(True, parts["unique"], parts["link"])
            except ClientError as exc:
                if dynamo.error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = dynamo.cancellation_reasons(exc.response)
                failed = {name for name, code in zip(names, reasons, strict=False) if code == "ConditionalCheckFailed"}
                if not failed or any(code not in ("None", "ConditionalCheckFailed") for code in reasons):
                    raise
                if "event" in failed or (e.kind in ONCE_PER_EMAIL and "unique" in failed):
                    return Counted(False)
                if "unique" in failed:
                    parts["unique"] = parts["ledger"] = False
                parts["link"] = parts["link"] and "link" not in failed
                parts["ledger"] = parts["ledger"] and "ledger" not in failed
        raise RuntimeError(f"engagement event {e.fingerprint} not counted after {_ATTEMPTS} attempts")

    def _items(self, e: Engagement, parts: dict[str, bool]) -> tuple[list[str], list[dict[str, Any]]]:
        now = int(self.clock())
        subject = e.message_id
        if e.private:  # the marker does not name the message a person was sent
            subject = hashlib.sha256(f"{e.campaign_id}:{e.message_id}".encode()).hexdigest()[:32]
        shard = random.randrange(COUNTER_SHARDS)
        unique = int(parts["unique"])
        names: list[str] = []
        items: list[dict[str, Any]] = []
        if e.kind not in ONCE_PER_EMAIL:  # a delivery happens once: its unique marker is its event marker
            names.append("event")
            items.append(self._marker(e.campaign_id, f"e#{e.fingerprint}", now + EVENT_MARKER_SECONDS))
        if parts["unique"]:
            names.append("unique")
            items.append(self._marker(e.campaign_id, f"u#{e.kind}#{subject}", now + UNIQUE_MARKER_SECONDS))
        if parts["link"]:
            names.append("link")
            items.append(
                self._marker(e.campaign_id, f"u#link#{url_key(e.link)}#{subject}", now + UNIQUE_MARKER_SECONDS)
            )
        hour = _hour(e.at)
        names.append("counter")
        items.append(self._count(e.campaign_id, f"c#{e.kind}#{hour}#{shard}", unique, {"kind": e.kind, "hour": hour}))
        if e.link:
            names.append("link_counter")
            items.append(
                self._count(e.campaign_id, f"l#{url_key(e.link)}#{shard}", int(parts["link"]), {"url": e.link})
            )
        if parts["ledger"]:
            names.append("ledger")
            items.append(
                {
                    "Update": {
                        "TableName": self.deliveries_table,
                        "Key": {"campaign_id": e.campaign_id, "email": e.email},
                        "UpdateExpression": "SET #first = if_not_exists(#first, :at)",
                        "ConditionExpression": "attribute_exists(email)",
                        "ExpressionAttributeNames": {"#first": _FIRST_FIELD[e.kind]},
                        "ExpressionAttributeValues": {":at": e.at},
                    }
                }
            )
        return names, items

    def _marker(self, campaign_id: str, key: str, expires_at: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {"campaign_id": campaign_id, "key": key, "expires_at": expires_at},
                "ConditionExpression": "attribute_not_exists(#k)",
                "ExpressionAttributeNames": {"#k": "key"},
            }
        }

    def _count(self, campaign_id: str, key: str, unique: int, fields: dict[str, str]) -> dict[str, Any]:
        """The one place engagement is counted: an ADD on a counter shard."""
        clause, names, values = dynamo.set_clause(fields)
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"campaign_id": campaign_id, "key": key},
                "UpdateExpression": f"SET {clause} ADD n :one, u :unique",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**values, ":one": 1, ":unique": unique},
            }
        }

    # --- reading -----------------------------------------------------------------------------------
    def totals(self, campaign_id: str) -> dict[str, Any]:
        """Every counter of the campaign summed over its shards: per kind, per kind and hour, per link."""
        kinds: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "u": 0})
        hours: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"n": 0, "u": 0})
        links: dict[str, dict[str, Any]] = {}
        for prefix in ("c#", "l#"):
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": Key("campaign_id").eq(campaign_id) & Key("key").begins_with(prefix)
            }
            for _ in range(_MAX_PAGES):
                page = dynamo.table(self.table).query(**kwargs)
                for item in page["Items"]:
                    n, u = int(item.get("n", 0)), int(item.get("u", 0))
                    if prefix == "c#":
                        for bucket in (kinds[item["kind"]], hours[(item["kind"], item["hour"])]):
                            bucket["n"] += n
                            bucket["u"] += u
                    else:
                        link = links.setdefault(item["key"].split("#")[1], {"url": item["url"], "n": 0, "u": 0})
                        link["n"] += n
                        link["u"] += u
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            else:
                raise RuntimeError(f"campaign {campaign_id} has more than {_MAX_PAGES} pages of counters")
        return {"kinds": dict(kinds), "hours": dict(hours), "links": list(links.values())}
