"""The contacts table: who can be sent to, read a page or a batch at a time."""
from __future__ import annotations

import time
from typing import Any, Iterable

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.adapters.lists import ListRegistry
from bulkmail.models import Contact, ContactStatus

_BATCH_GET_LIMIT = 100
_UNPROCESSED_RETRIES = 5


class ContactStore:
    def __init__(self, table_name: str, lists_table: str | None = None):
        """`lists_table`: the registry of list names that imports keep (the API's stack always has one)."""
        self.table_name = table_name
        self.table = dynamo.table(table_name)
        self.lists = ListRegistry(lists_table) if lists_table else None

    @staticmethod
    def _recipients_filter(list_name: str | None):
        condition = Attr("status").eq(ContactStatus.SUBSCRIBED.value) | Attr("status").not_exists()
        if list_name:
            condition = condition & Attr("lists").contains(list_name)
        return condition

    def scan_page(self, cursor: dict | None, limit: int, list_name: str | None) -> tuple[list[str], dict | None]:
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
        pages = dynamo.client().get_paginator("scan").paginate(
            TableName=self.table_name, FilterExpression=self._recipients_filter(list_name), ProjectionExpression="email")
        return any(page["Items"] for page in pages)

    def count_recipients(self, list_name: str | None) -> int:
        pages = dynamo.client().get_paginator("scan").paginate(
            TableName=self.table_name, Select="COUNT", FilterExpression=self._recipients_filter(list_name)
        )
        return sum(page["Count"] for page in pages)

    def batch_get(self, emails: Iterable[str]) -> dict[str, Contact]:
        """Contacts by email in as few BatchGetItem calls as possible; missing ones are absent."""
        found: dict[str, Contact] = {}
        pending = [{"email": e} for e in dict.fromkeys(emails)]
        while pending:
            chunk, pending = pending[:_BATCH_GET_LIMIT], pending[_BATCH_GET_LIMIT:]
            request = {self.table_name: {"Keys": chunk}}
            for attempt in range(_UNPROCESSED_RETRIES + 1):
                response = dynamo.resource().batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table_name, []):
                    found[item["email"]] = Contact.from_item(dynamo.plain(item))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == _UNPROCESSED_RETRIES:
                    raise RuntimeError(f"BatchGetItem left {len(request[self.table_name]['Keys'])} keys unprocessed")
                time.sleep(0.05 * 2 ** attempt)
        return found

    def get(self, email: str) -> Contact | None:
        item = self.table.get_item(Key={"email": email}).get("Item")
        return Contact.from_item(dynamo.plain(item)) if item else None

    def put_many(self, contacts: Iterable[dict[str, Any]]) -> int:
        """Store contacts, replacing earlier versions — except that an import never resubscribes:
        a contact that unsubscribed, bounced or complained keeps that status when it is imported
        again as subscribed (its other fields are replaced). (Checked by one BatchGetItem per 100 contacts; an
        unsubscribe landing between that read and the write is the remaining window.)"""
        count = 0
        with self.table.batch_writer(overwrite_by_pkeys=["email"]) as writer:
            for chunk in _chunks(contacts, _BATCH_GET_LIMIT):
                if self.lists is not None:  # the names first: a contact is never on an unknown list
                    self.lists.register(name for contact in chunk for name in contact.get("lists", ()))
                existing = self.batch_get(c["email"] for c in chunk)
                for contact in chunk:
                    writer.put_item(Item=dynamo.to_dynamo(_keep_suppression(contact, existing.get(contact["email"]))))
                    count += 1
        return count

    def delete(self, email: str) -> None:
        self.table.delete_item(Key={"email": email})


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _keep_suppression(contact: dict[str, Any], stored: Contact | None) -> dict[str, Any]:
    subscribed = ContactStatus.SUBSCRIBED.value
    if stored is None or stored.status == subscribed or contact.get("status", subscribed) != subscribed:
        return contact
    return {**contact, "status": stored.status}


def _conditional_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def suppress_contact(store: ContactStore, email: str, status: str, now_iso: str, details: dict[str, Any]) -> str | None:
    """Stop sending to a subscribed contact (unsubscribed, bounced, complained), once.

    Returns the contact's status afterwards: `status` when this call changed it, the earlier status
    when it was already suppressed (the first reason stands), None when there is no such contact.
    """
    try:
        store.table.update_item(
            Key={"email": email},
            UpdateExpression="SET #status = :status, suppressed_at = :now, suppression = :details",
            ConditionExpression="attribute_exists(email) AND (attribute_not_exists(#status) OR #status = :subscribed)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": status, ":now": now_iso, ":details": dynamo.to_dynamo(details),
                                       ":subscribed": ContactStatus.SUBSCRIBED.value},
        )
        return status
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise
    contact = store.get(email)
    return contact.status if contact else None
