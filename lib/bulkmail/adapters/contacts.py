"""The contacts table: who can be sent to, read a page or a batch at a time."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.adapters.lists import ListRegistry
from bulkmail.contact_import import SUPPRESSION_ROOM_BYTES
from bulkmail.models import Contact, ContactStatus, dynamodb_item_size
from bulkmail.ports import Cursor
from bulkmail.validation import parse_timestamp


class ContactStore:
    def __init__(self, table_name: str, lists_table: str | None = None):
        """`lists_table`: the registry of list names that imports keep (the API's stack always has one)."""
        self.table_name = table_name
        self.table = dynamo.table(table_name)
        self.lists = ListRegistry(lists_table) if lists_table else None

    @staticmethod
    def _recipients_filter(list_name: str | None) -> ConditionBase:
        condition: ConditionBase = Attr("status").eq(ContactStatus.SUBSCRIBED.value) | Attr("status").not_exists()
        if list_name:
            condition = condition & Attr("lists").contains(list_name)
        return condition

    def scan_page(self, cursor: Cursor | None, limit: int, list_name: str | None) -> tuple[list[str], Cursor | None]:
        """One page of recipients' emails and the cursor for the next page (None at the end)."""
        kwargs: dict[str, Any] = {
            "Limit": limit,
            "FilterExpression": self._recipients_filter(list_name),
            "ProjectionExpression": "email",
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        page = self.table.scan(**kwargs)
        return [item["email"] for item in page["Items"]], page.get("LastEvaluatedKey")

    def has_recipient(self, list_name: str | None) -> bool:
        """Whether anyone would receive a campaign to `list_name`: stops at the first recipient found."""
        pages = (
            dynamo.client()
            .get_paginator("scan")
            .paginate(
                TableName=self.table_name,
                FilterExpression=self._recipients_filter(list_name),
                ProjectionExpression="email",
            )
        )
        return any(page["Items"] for page in pages)

    def count_recipients(self, list_name: str | None) -> int:
        pages = (
            dynamo.client()
            .get_paginator("scan")
            .paginate(TableName=self.table_name, Select="COUNT", FilterExpression=self._recipients_filter(list_name))
        )
        return sum(page["Count"] for page in pages)

    def batch_get(self, emails: Iterable[str]) -> dict[str, Contact]:
        """Contacts by email in as few BatchGetItem calls as possible; missing and deleted ones are absent."""
        return {email: Contact.from_item(item) for email, item in self._items(emails).items() if DELETED not in item}

    def _items(self, emails: Iterable[str], consistent: bool = False) -> dict[str, dict[str, Any]]:
        """Stored items by email (the suppressions deleted contacts left included), as plain Python."""
        keys = [{"email": e} for e in dict.fromkeys(emails)]
        found = {item["email"]: item for item in dynamo.batch_get(self.table_name, keys, consistent=consistent)}
        return found

    def get(self, email: str) -> Contact | None:
        item = self.get_item(email, consistent=False)
        return Contact.from_item(item) if item else None

    def get_item(self, email: str, consistent: bool = True) -> dict[str, Any] | None:
        """The stored contact as plain Python; None when absent or deleted."""
        item = self.table.get_item(Key={"email": email}, ConsistentRead=consistent).get("Item")
        return dynamo.plain(item) if item and DELETED not in item else None

    def put_many(self, contacts: Iterable[dict[str, Any]]) -> int:
        """Store contacts (distinct emails), replacing earlier versions, except that an import never lifts
        a suppression (see `merge_import`), not even one a deleted contact left behind.

        Each chunk is one transaction whose every put is conditional on the status it was merged with:
        an unsubscribe landing between the read and the write cancels it, and the chunk is read and
        merged again. Returns how many contacts were stored."""
        count = 0
        for chunk in _transaction_chunks(contacts):
            if self.lists is not None:  # the names first: a contact is never on an unknown list
                self.lists.register(name for contact in chunk for name in contact.get("lists", ()))
            self._put_chunk(chunk)
            count += len(chunk)
        return count

    def _put_chunk(self, chunk: list[dict[str, Any]]) -> None:
        for attempt in range(_CONFLICT_RETRIES + 1):
            stored = self._items((c["email"] for c in chunk), consistent=True)
            puts = [
                self._conditional_put(merge_import(c, stored.get(c["email"])), stored.get(c["email"])) for c in chunk
            ]
            try:
                dynamo.client().transact_write_items(TransactItems=puts)
                return
            except ClientError as exc:
                if not _retryable_cancellation(exc) or attempt == _CONFLICT_RETRIES:
                    raise
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # jitter: two racing imports part ways

    def _conditional_put(self, item: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": dynamo.to_dynamo(item)}
        if stored is None:
            put["ConditionExpression"] = "attribute_not_exists(email)"
        else:
            put["ConditionExpression"] = "#status = :read"
            put["ExpressionAttributeNames"] = {"#status": "status"}
            put["ExpressionAttributeValues"] = {":read": stored.get("status", ContactStatus.SUBSCRIBED.value)}
        return {"Put": put}

    def delete(self, email: str, now_iso: str | None = None) -> bool:
        """Forget a contact (False if there is none). A suppressed one leaves its suppression behind
        (address, status, reason, date; no name, lists or attributes), so that importing the address
        again cannot resubscribe it."""
        now_iso = now_iso or datetime.now(UTC).isoformat(timespec="seconds")
        for _ in range(_CONFLICT_RETRIES + 1):
            item = self.get_item(email)
            if item is None:
                return False
            status = item.get("status", ContactStatus.SUBSCRIBED.value)
            read = {
                "ConditionExpression": "#status = :read",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":read": status},
            }
            try:
                if status == ContactStatus.SUBSCRIBED.value:
                    self.table.delete_item(Key={"email": email}, **read)
                else:
                    kept = {k: item[k] for k in ("email", *SUPPRESSION_FIELDS) if k in item}
                    self.table.put_item(Item=dynamo.to_dynamo({**kept, DELETED: now_iso}), **read)
                return True
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise
                # its status changed meanwhile (an unsubscribe): read it again
        raise RuntimeError(f"contact {email} kept changing while it was being deleted")


# A deleted contact whose suppression is kept: the item holds the address, SUPPRESSION_FIELDS and this.
DELETED = "deleted_at"
SUPPRESSION_FIELDS = ("status", "suppressed_at", "suppression")
_CONFLICT_RETRIES = 5
_TRANSACTION_ITEMS = 100  # TransactWriteItems: at most 100 actions ...
_TRANSACTION_BYTES = 4_000_000  # ... and 4 MB together


def merge_import(contact: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """What an imported contact becomes, given what is stored for its address.

    - Nothing stored, or a subscribed contact: the import replaces it (an import that says
      unsubscribed, bounced or complained suppresses, dated by the import).
    - A suppression (of a contact, or left by a deleted one) stands, with its reason and date, unless
      the import carries `opted_in_at` later than `suppressed_at`: a new opt-in lifts it.
    """
    subscribed = ContactStatus.SUBSCRIBED.value
    if stored is not None and stored.get("status", subscribed) != subscribed:
        opted_in = parse_timestamp(str(contact.get("opted_in_at") or ""))
        suppressed = parse_timestamp(str(stored.get("suppressed_at") or ""))
        suppression = {k: stored[k] for k in SUPPRESSION_FIELDS if k in stored}
        if not (opted_in and suppressed and opted_in > suppressed):
            return {**contact, **suppression}
        contact = {**contact, "lifted_suppression": suppression}
    status = contact.get("status", subscribed)
    if status != subscribed:
        return {**contact, "suppressed_at": contact["created_at"], "suppression": {"reason": f"imported as {status}"}}
    return contact


def _transaction_chunks(contacts: Iterable[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for contact in contacts:
        item_size = dynamodb_item_size(contact) + SUPPRESSION_ROOM_BYTES
        if chunk and (len(chunk) == _TRANSACTION_ITEMS or size + item_size > _TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(contact)
        size += item_size
    if chunk:
        yield chunk


def _retryable_cancellation(exc: ClientError) -> bool:
    """A transaction cancelled by a race (a condition on what was read, a concurrent transaction) or by
    throttling: read and try again. Anything else (a validation error) is not retried."""
    code = exc.response["Error"]["Code"]
    if code != "TransactionCanceledException":
        return code in ("TransactionConflictException", "ThrottlingException", "ProvisionedThroughputExceededException")
    reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
    return reasons <= {None, "None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError"}


def suppress_contact(store: ContactStore, email: str, status: str, now_iso: str, details: dict[str, Any]) -> str:
    """Stop sending to an address (unsubscribed, bounced, complained), once, whether or not it is a
    contact: an address that is not one (deleted, or never imported) keeps a suppression record, so a
    later import cannot subscribe it.

    Returns the address's status afterwards: `status` when this call changed it, the earlier one when
    it was already suppressed (the first reason stands).
    """
    values = {
        ":status": status,
        ":now": now_iso,
        ":details": dynamo.to_dynamo(details),
        ":subscribed": ContactStatus.SUBSCRIBED.value,
    }
    for _ in range(_CONFLICT_RETRIES + 1):
        try:
            store.table.update_item(
                Key={"email": email},
                UpdateExpression="SET #status = :status, suppressed_at = :now, suppression = :details",
                ConditionExpression=(
                    "attribute_exists(email) AND (attribute_not_exists(#status) OR #status = :subscribed)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
            return status
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
        item = store.table.get_item(Key={"email": email}, ConsistentRead=True).get("Item")
        if item is not None:
            if item.get("status", values[":subscribed"]) != values[":subscribed"]:
                return str(item["status"])
            continue  # subscribed again meanwhile (an import): suppress it on the next round
        try:
            store.table.put_item(
                Item={
                    "email": email,
                    "status": status,
                    "suppressed_at": now_iso,
                    "suppression": values[":details"],
                    DELETED: now_iso,
                },
                ConditionExpression="attribute_not_exists(email)",
            )
            return status
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise  # imported meanwhile: suppress that contact
    raise RuntimeError(f"address {email} kept changing while it was being suppressed")
