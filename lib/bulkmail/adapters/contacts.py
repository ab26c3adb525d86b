"""The contacts table: who can be sent to, read a page or a batch at a time."""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.adapters.lists import AudienceIndex, ListRegistry
from bulkmail.contact_import import SUPPRESSION_ROOM_BYTES
from bulkmail.errors import ConfigurationError
from bulkmail.models import Contact, ContactStatus, dynamodb_item_size
from bulkmail.ports import Cursor
from bulkmail.segments import Audience, matches
from bulkmail.validation import parse_timestamp


class ContactStore:
    def __init__(self, table_name: str, lists_table: str | None = None, audience_table: str | None = None) -> None:
        """`lists_table`: the registry of list names that imports keep (the API's stack always has one);
        `audience_table`: the membership index the fan-out reads a list's members from."""
        self.table_name = table_name
        self.table = dynamo.table(table_name)
        self.lists = ListRegistry(lists_table) if lists_table else None
        self.index = AudienceIndex(audience_table) if audience_table else None
        # Read units of the audience reads so far, by DynamoDB's rules (GET /segments/{id}/count reports them).
        self.read_units = 0.0

    @staticmethod
    def _subscribed() -> ConditionBase:
        """A Scan's filter for the contacts a campaign to everyone is sent to."""
        subscribed = Attr("status").eq(ContactStatus.SUBSCRIBED.value) | Attr("status").not_exists()
        return subscribed & Attr(DELETED).not_exists()

    def recipients_page(
        self, audience: Audience | None, cursor: Cursor | None, limit: int
    ) -> tuple[list[str], Cursor | None]:
        """One page of recipients' emails and the cursor for the next page (None at the end).

        Every contact (no audience): a Scan of the table. Lists (and a segment's conditions): each
        list's membership rows by Query on the index, kept when their copy of the contact is subscribed,
        still on the list, matching, and not on a list taken earlier (a contact on two lists is sent
        once). The worker reads the contact item before it sends: a status changed since is skipped.
        `limit` members are read per page; a page may hold fewer recipients, or none."""
        if audience is None:
            return self._scan_page(cursor, limit)
        lists, match = list(audience["lists"]), list(audience.get("match") or [])
        position = int(cursor["list"]) if cursor else 0
        key = cursor.get("key") if cursor else None
        rows, next_key = self._index().rows_page(lists[position], key, limit)
        # A key-only row (written before its contact; a crash kept its copy from being written) is
        # decided by the contact item itself.
        bare = [str(r["sk"]) for r in rows if "lists" not in r]
        found = self._items(bare) if bare else {}
        self.read_units += _query_units(rows) + sum(_get_units(found.get(e)) for e in bare)
        recipients = [
            str(r["sk"])
            for r in rows
            if _is_recipient(
                {**r, "email": r["sk"]} if "lists" in r else found.get(str(r["sk"])),
                lists[position],
                lists[:position],
                match,
            )
        ]
        if next_key is not None:
            return recipients, {"list": position, "key": next_key}
        if position + 1 < len(lists):
            return recipients, {"list": position + 1, "key": None}
        return recipients, None

    def _scan_page(self, cursor: Cursor | None, limit: int) -> tuple[list[str], Cursor | None]:
        items, next_key = dynamo.page(
            self.table.scan, cursor, Limit=limit, FilterExpression=self._subscribed(), ProjectionExpression="email"
        )
        return [item["email"] for item in items], next_key

    def _index(self) -> AudienceIndex:
        if self.index is None:
            raise ConfigurationError("environment variable AUDIENCE_TABLE is required to read a list's members")
        return self.index

    def _audience_pages(self, audience: Audience | None, page_size: int = 1000) -> Iterable[list[str]]:
        cursor: Cursor | None = None
        for _ in range(_MAX_PAGES):
            emails, cursor = self.recipients_page(audience, cursor, page_size)
            yield emails
            if cursor is None:
                return
        raise RuntimeError(f"the audience took more than {_MAX_PAGES} pages to read")

    def has_recipient(self, audience: Audience | None) -> bool:
        """Whether anyone would receive a campaign to `audience`: stops at the first recipient found."""
        return any(self._audience_pages(audience))

    def count_recipients(self, audience: Audience | None) -> int:
        if audience is None:
            pages = dynamo.pages("scan", self.table_name, Select="COUNT", FilterExpression=self._subscribed())
            return sum(page["Count"] for page in pages)
        return sum(len(page) for page in self._audience_pages(audience))

    def contacts_page(
        self, list_name: str | None, cursor: Cursor | None, limit: int, keep: Callable[[dict[str, Any]], bool]
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """A page of stored contacts (of a list, by the index; else by Scan), those `keep` accepts."""
        if list_name:
            emails, next_key = self._index().members_page(list_name, cursor, limit)
            found = self._items(emails)
            items = [found[e] for e in emails if e in found and list_name in (found[e].get("lists") or ())]
        else:
            items, next_key = dynamo.page(
                self.table.scan, cursor, Limit=limit, FilterExpression=Attr(DELETED).not_exists()
            )
        return [i for i in items if DELETED not in i and keep(i)], next_key

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
            if self.index is not None:  # memberships before the contacts: the index holds every member
                self.index.add_members((name, c["email"]) for c in chunk for name in c.get("lists", ()))
                self.index.note_fields(name for c in chunk for name in c.get("attributes", {}))
            stored, merged = self._put_chunk(chunk)
            if self.index is not None:  # the rows' copies, then the lists a contact was on and left
                self.index.put_rows(merged)
                self.index.remove_members(
                    (name, c["email"])
                    for c in chunk
                    for name in set((stored.get(c["email"]) or {}).get("lists") or ()) - set(c.get("lists", ()))
                )
            count += len(chunk)
        return count

    def _put_chunk(self, chunk: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """Store a chunk; returns what was stored before it (by email) and what was stored."""
        for attempt in range(_CONFLICT_RETRIES + 1):
            emails = [c["email"] for c in chunk]
            stored = self._items([*emails, *map(erased_key, emails)], consistent=True)
            # An erased address has only its hashed suppression: an import meets that one.
            merged = [merge_import(c, stored.get(c["email"]) or stored.get(erased_key(c["email"]))) for c in chunk]
            puts = [self._conditional_put(m, stored.get(m["email"])) for m in merged]
            try:
                dynamo.client().transact_write_items(TransactItems=puts)
                return {e: stored[e] for e in emails if e in stored}, merged
            except ClientError as exc:
                if not _retryable_cancellation(exc) or attempt == _CONFLICT_RETRIES:
                    raise
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # jitter: two racing imports part ways
        raise RuntimeError("unreachable: the last attempt raises")

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
                if self.index is not None:
                    self.index.remove_members((name, email) for name in item.get("lists") or ())
                return True
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise
                # its status changed meanwhile (an unsubscribe): read it again
        raise RuntimeError(f"contact {email} kept changing while it was being deleted")

    def update(self, email: str, changes: dict[str, Any], now_iso: str) -> dict[str, Any] | None:
        """Apply a checked PATCH (names, `attributes` merged — a null removes one —, `lists` replaced,
        `status` subscribed or unsubscribed) to a stored contact, conditional on the status read. None
        when there is no such contact. Joining a list writes its membership first; leaving one removes
        it after (the index holds at least every member)."""
        for _ in range(_CONFLICT_RETRIES + 1):
            item = self.get_item(email)
            if item is None:
                return None
            updated = apply_changes(item, changes, now_iso)
            old_lists, new_lists = set(item.get("lists") or ()), set(updated.get("lists") or ())
            if self.lists is not None:
                self.lists.register(new_lists - old_lists)
            if self.index is not None:
                self.index.add_members((name, email) for name in new_lists - old_lists)
                self.index.note_fields(name for name, v in (changes.get("attributes") or {}).items() if v is not None)
            try:
                self.table.put_item(
                    Item=dynamo.to_dynamo(updated),
                    ConditionExpression="#status = :read AND attribute_not_exists(#deleted)",
                    ExpressionAttributeNames={"#status": "status", "#deleted": DELETED},
                    ExpressionAttributeValues={":read": item.get("status", ContactStatus.SUBSCRIBED.value)},
                )
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise
                continue  # its status changed meanwhile: apply the changes to what is there now
            if self.index is not None:
                self.index.put_rows([updated])
                self.index.remove_members((name, email) for name in old_lists - new_lists)
            return updated
        raise RuntimeError(f"contact {email} kept changing while it was being updated")

    def erase(self, email: str, now_iso: str) -> bool:
        """Forget everything about an address but a hashed suppression (GDPR erasure): the contact item
        goes, and an item keyed by the address's hash keeps a later import from mailing it until a new
        opt-in. False when nothing was held (neither a contact nor a suppression)."""
        item = self.table.get_item(Key={"email": email}, ConsistentRead=True).get("Item")
        self.table.put_item(
            Item={
                "email": erased_key(email),
                "status": ContactStatus.UNSUBSCRIBED.value,
                "suppressed_at": now_iso,
                "suppression": {"reason": "erased"},
                DELETED: now_iso,
            }
        )
        if item is None:
            return False
        self.table.delete_item(Key={"email": email})
        if self.index is not None:
            self.index.remove_members((name, email) for name in item.get("lists") or ())
        return True


def erased_key(email: str) -> str:
    """The key an erased address's suppression is kept under: no address, only its SHA-256."""
    return "erased:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def apply_changes(item: dict[str, Any], changes: dict[str, Any], now_iso: str) -> dict[str, Any]:
    """A contact after a PATCH (checked by contact_import.patch_problems)."""
    updated = {**item, **{k: v for k, v in changes.items() if k not in ("attributes", "status")}}
    for name in ("first_name", "last_name", "company"):
        if changes.get(name, item.get(name)) in ("", None):
            updated.pop(name, None)
    if "attributes" in changes:
        merged = {**(item.get("attributes") or {}), **changes["attributes"]}
        updated["attributes"] = {k: v for k, v in merged.items() if v is not None}
    if "lists" in changes:
        updated["lists"] = sorted(set(changes["lists"]))
    for empty in ("attributes", "lists"):
        if not updated.get(empty):
            updated.pop(empty, None)
    status = changes.get("status")
    if status == ContactStatus.UNSUBSCRIBED.value and item.get("status") != status:
        updated.update(status=status, suppressed_at=now_iso, suppression={"reason": "changed by an operator"})
    elif status == ContactStatus.SUBSCRIBED.value and item.get("status", status) != status:
        for key in SUPPRESSION_FIELDS:
            updated.pop(key, None)
        if "suppressed_at" in item:  # an unsubscribe lifted by an operator; a pending one just confirmed
            updated["lifted_suppression"] = {k: item[k] for k in SUPPRESSION_FIELDS if k in item}
        updated["status"] = status
    updated["updated_at"] = now_iso
    return updated


# A deleted contact whose suppression is kept: the item holds the address, SUPPRESSION_FIELDS and this.
DELETED = "deleted_at"
SUPPRESSION_FIELDS = ("status", "suppressed_at", "suppression")
_CONFLICT_RETRIES = 5
_MAX_PAGES = 1_000_000  # a bound on any full read of an audience (10^9 members at 1,000 a page)


def _query_units(rows: list[dict[str, Any]]) -> float:
    """An eventually consistent Query's read units: the rows' total size, per 4 KB, halved."""
    size = sum(dynamodb_item_size(row) for row in rows)
    return math.ceil(max(size, 1) / 4096) / 2


def _get_units(item: dict[str, Any] | None) -> float:
    """A BatchGetItem key's read units (eventually consistent): its item's size per 4 KB, halved; 0.5 if absent."""
    return math.ceil(max(dynamodb_item_size(item or {}), 1) / 4096) / 2


def _is_recipient(item: dict[str, Any] | None, name: str, earlier: list[str], match: list[dict[str, Any]]) -> bool:
    """A member read from the index is mailed when the contact item agrees: still on the list, subscribed,
    matching, and on none of the lists read before this one (it was decided there)."""
    if item is None or DELETED in item:
        return False
    on = set(item.get("lists") or ())
    return (
        name in on
        and item.get("status", ContactStatus.SUBSCRIBED.value) == ContactStatus.SUBSCRIBED.value
        and not on.intersection(earlier)
        and matches(item, match)
    )


_TRANSACTION_ITEMS = 100  # TransactWriteItems: at most 100 actions ...
_TRANSACTION_BYTES = 4_000_000  # ... and 4 MB together


def merge_import(contact: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """What an imported contact becomes, given what is stored for its address.

    - Nothing stored, or a subscribed contact: the import replaces it (an import that says
      unsubscribed, bounced or complained suppresses, dated by the import).
    - A suppression (of a contact, or left by a deleted one) stands, with its reason and date, unless
      the import carries `opted_in_at` later than `suppressed_at`: a new opt-in lifts it.
    """
    subscribed, pending = ContactStatus.SUBSCRIBED.value, ContactStatus.PENDING.value
    if stored is not None and stored.get("status", subscribed) not in (subscribed, pending):
        opted_in = parse_timestamp(str(contact.get("opted_in_at") or ""))
        suppressed = parse_timestamp(str(stored.get("suppressed_at") or ""))
        suppression = {k: stored[k] for k in SUPPRESSION_FIELDS if k in stored}
        if not (opted_in and suppressed and opted_in > suppressed):
            return {**contact, **suppression}
        contact = {**contact, "lifted_suppression": suppression}
    status = contact.get("status", subscribed)
    if status not in (subscribed, pending):  # pending is no suppression: it awaits a confirmation
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
            answer = store.table.update_item(
                Key={"email": email},
                UpdateExpression="SET #status = :status, suppressed_at = :now, suppression = :details",
                ConditionExpression=(
                    "attribute_exists(email) AND (attribute_not_exists(#status) OR #status = :subscribed)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
            if store.index is not None:  # the membership rows' copy of the status (issue 15)
                store.index.put_rows([dynamo.plain(answer["Attributes"])])
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


# What an erased recipient's delivery row keeps, under the address's hash: the outcome, not the person.
_ERASED_ROW_FIELDS = ("campaign_id", "status", "batch_id", "updated_at", "dead_lettered", "feedback", "feedback_at")


def personal_deliveries(deliveries_table: str, email: str) -> list[dict[str, Any]]:
    """Every delivery row of an address, across campaigns. A Scan of the ledger filtered by address:
    rare (an export, an erasure), where an index by address would cost a write on every send."""
    rows = dynamo.items(
        "scan", deliveries_table, FilterExpression="email = :email", ExpressionAttributeValues={":email": email}
    )
    return sorted(rows, key=lambda r: str(r.get("updated_at", "")))


def erase_deliveries(deliveries_table: str, email: str) -> int:
    """Rewrite an address's settled delivery rows under its hash, without the address or the reasons
    (which quote it). A row still being recorded (`uncounted`) is left to its worker. Returns how many."""
    table = dynamo.table(deliveries_table)
    erased = 0
    for row in personal_deliveries(deliveries_table, email):
        if row.get("uncounted"):
            continue
        kept = {k: row[k] for k in _ERASED_ROW_FIELDS if k in row}
        table.put_item(Item=dynamo.to_dynamo({**kept, "email": erased_key(email)}))
        table.delete_item(Key={"campaign_id": row["campaign_id"], "email": email})
        erased += 1
    return erased
