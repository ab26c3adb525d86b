"""Signups on the contacts table, and the per-window counters that rate-limit them (a table with TTL).

A signup is kept on the contact as `pending_signup` (the consent asked for); a new address becomes a
`pending` contact on the list. Confirming moves that request into `consent[list]` with the time and
IP of the confirmation, puts the contact on the list and makes it `subscribed`. Every write is
conditional on what was read, so a confirmation racing an unsubscribe or an import is read again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.adapters.contacts import DELETED, SUPPRESSION_FIELDS
from bulkmail.adapters.lists import AudienceIndex, ListRegistry
from bulkmail.models import ContactStatus
from bulkmail.signup import SignupRequest

_RETRIES = 5
_SUPPRESSED = {ContactStatus.UNSUBSCRIBED.value, ContactStatus.BOUNCED.value, ContactStatus.COMPLAINED.value}


class SignupStore:
    def __init__(self, contacts_table: str, lists_table: str, audience_table: str) -> None:
        self.table = dynamo.table(contacts_table)
        self.lists = ListRegistry(lists_table)
        self.index = AudienceIndex(audience_table)  # memberships: written before the contact names the list

    def list_exists(self, list_id: str) -> bool:
        return self.lists.exists(list_id)

    def request(self, request: SignupRequest) -> None:
        pending = dynamo.to_dynamo(request.consent)
        for _ in range(_RETRIES):
            known = self.table.get_item(Key={"email": request.email}, ConsistentRead=True, ProjectionExpression="email")
            if "Item" not in known:
                # A new address: its membership first (the index holds at least every member), then the contact.
                self.index.add_members([(request.list_id, request.email)])
                item = {
                    "email": request.email,
                    "status": ContactStatus.PENDING.value,
                    "lists": [request.list_id],
                    **request.names,
                    "created_at": request.consent["requested_at"],
                    "updated_at": request.consent["requested_at"],
                    "pending_signup": pending,
                }
                try:
                    self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(email)")
                    self.index.put_rows([item])  # the row's copy: pending, so the fan-out passes it by
                    return
                except ClientError as exc:
                    if not dynamo.is_conditional_failure(exc):
                        raise
                continue  # stored meanwhile (an import): keep only the request on it
            try:  # a contact (or a suppression a deleted one left): only the request is kept, until confirmed
                self.table.update_item(
                    Key={"email": request.email},
                    UpdateExpression="SET pending_signup = :pending",
                    ConditionExpression="attribute_exists(email)",
                    ExpressionAttributeValues={":pending": pending},
                )
                return
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise  # deleted meanwhile: create it on the next round
        raise RuntimeError(f"contact {request.email} kept changing while its signup was stored")

    def confirm(self, email: str, list_id: str, requested_at: str, confirmed: dict[str, Any]) -> str:
        for _ in range(_RETRIES):
            item = self.table.get_item(Key={"email": email}, ConsistentRead=True).get("Item")
            if item is None:
                return "superseded"
            item = dynamo.plain(item)
            pending = item.get("pending_signup") or {}
            status = item.get("status", ContactStatus.SUBSCRIBED.value)
            if pending.get("requested_at") != requested_at or pending.get("list") != list_id:
                already = status == ContactStatus.SUBSCRIBED.value and list_id in (item.get("lists") or ())
                return "already" if already and DELETED not in item else "superseded"
            values = confirmed_fields(item, pending, confirmed)
            self.index.add_members([(list_id, email)])
            removed = ["pending_signup", DELETED, *(f for f in SUPPRESSION_FIELDS if f != "status")]
            update, names, stored = dynamo.set_clause(values)
            names["#status"] = "status"
            stored[":requested_at"] = requested_at
            stored[":read"] = status
            try:
                stored_now = self.table.update_item(
                    Key={"email": email},
                    ReturnValues="ALL_NEW",
                    UpdateExpression=f"SET {update} REMOVE {', '.join(removed)}",
                    ConditionExpression="pending_signup.requested_at = :requested_at AND "
                    + ("#status = :read" if "status" in item else "attribute_not_exists(#status)"),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=stored,
                )
                self.index.put_rows([stored_now["Attributes"]])  # the rows' copy: subscribed, on the list
                return "confirmed"
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise
        raise RuntimeError(f"contact {email} kept changing while its signup was confirmed")


def confirmed_fields(item: dict[str, Any], pending: dict[str, Any], confirmed: dict[str, Any]) -> dict[str, Any]:
    """What a confirmation sets on the stored contact `item` (plain Python)."""
    at = confirmed["confirmed_at"]
    fresh = DELETED in item  # only the suppression of a deleted contact is left: it starts anew
    lists = [] if fresh else list(item.get("lists") or ())
    values: dict[str, Any] = {
        "status": ContactStatus.SUBSCRIBED.value,
        "lists": sorted({*lists, pending["list"]}),
        "consent": {**({} if fresh else item.get("consent") or {}), pending["list"]: {**pending, **confirmed}},
        "opted_in_at": at,
        "updated_at": at,
    }
    if fresh:
        values["created_at"] = at
    if item.get("status") in _SUPPRESSED:
        values["lifted_suppression"] = {k: item[k] for k in SUPPRESSION_FIELDS if k in item}
    return values


class DynamoRateLimiter:
    """Fixed windows: one item per key and window, `hits` counted with a conditional ADD, expired by TTL."""

    def __init__(self, table_name: str) -> None:
        self.table = dynamo.table(table_name)

    def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> int:
        moment = int(now.timestamp())
        window = moment // window_seconds
        ends = (window + 1) * window_seconds
        try:
            self.table.update_item(
                Key={"bucket_id": f"{key}#{window}"},
                UpdateExpression="ADD #hits :one SET #expires = if_not_exists(#expires, :expires)",
                ConditionExpression="attribute_not_exists(#hits) OR #hits < :limit",
                ExpressionAttributeNames={"#hits": "hits", "#expires": "expires_at"},
                # TTL deletes within days, not at once: the window in the key, not the deletion, ends it.
                ExpressionAttributeValues={":one": 1, ":limit": limit, ":expires": ends + 3600},
            )
            return 0
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
        return max(1, ends - moment)
