"""The campaigns table: each campaign's record and content versions (its counts: adapters/counters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from botocore.exceptions import ClientError

from bulkmail.adapters import counters, dynamo
from bulkmail.adapters.events import ANNOUNCED, CampaignEvents
from bulkmail.errors import CampaignNotFound
from bulkmail.models import CAMPAIGN_COUNTERS, SHARDED_COUNTERS, Campaign, CampaignStatus
from bulkmail.ports import Cursor
from bulkmail.validation import CONTENT_FIELDS

# Content versions a store keeps (a worker container sends a few campaigns at a time).
CONTENT_CACHE_VERSIONS = 16
CONTENT_SEPARATOR = "#content#"


def content_id(campaign_id: str, version: int) -> str:
    """The key of a campaign's content item (a campaign id has no "#": the schema allows letters,
    digits, "_" and "-")."""
    return f"{campaign_id}{CONTENT_SEPARATOR}{version}"


def _cancelled_by_condition(exc: ClientError) -> bool:
    """A transaction cancelled only because a condition did not hold."""
    if dynamo.error_code(exc) != "TransactionCanceledException":
        return False
    reasons = dynamo.cancellation_reasons(exc.response)
    return "ConditionalCheckFailed" in reasons and all(r in ("None", "ConditionalCheckFailed") for r in reasons)


class CampaignStore:
    """A campaign is three kinds of item in the campaigns table: its record (status, settings,
    fan-out cursor; small, so its frequent small updates cost one write unit), its content (subject
    and bodies, up to 250 KB, one item per version) and its counter shards (adapters/counters)."""

    def __init__(self, table_name: str, events: CampaignEvents | None = None) -> None:
        self.table_name = table_name
        self._content: dict[tuple[str, int], dict[str, Any]] = {}
        self.table = dynamo.table(table_name)
        # Announces the status changes that happen outside the workflow (paused, cancelled).
        self.events = events

    def get(self, campaign_id: str, *, content: bool = True) -> Campaign:
        """The whole campaign: its record, content (unless not wanted) and live counts (summed over
        the shards, consistently)."""
        record = self.head(campaign_id)
        return self.with_counts([self.with_content(record) if content else record], consistent=True)[0]

    def with_content(self, record: Campaign) -> Campaign:
        """The record with the subject and bodies of its content version."""
        version = record.get("content_version")
        return cast(Campaign, {**record, **self.content(record["campaign_id"], int(version))}) if version else record

    def content(self, campaign_id: str, version: int) -> dict[str, Any]:
        """A content version's subject and bodies. A version never changes (an edit makes the next
        one), so each is read once per store — once per worker container — and kept."""
        key = (campaign_id, version)
        if key not in self._content:
            item = self.table.get_item(Key={"campaign_id": content_id(campaign_id, version)}, ConsistentRead=True)
            if "Item" not in item:
                raise CampaignNotFound(f"{campaign_id} (content version {version})")
            if len(self._content) >= CONTENT_CACHE_VERSIONS:
                self._content.pop(next(iter(self._content)))
            self._content[key] = {k: v for k, v in dynamo.plain(item["Item"]).items() if k in CONTENT_FIELDS}
        return dict(self._content[key])

    def head(self, campaign_id: str) -> Campaign:
        """The record alone: its counts are as the workflow last noted them (note_counts), not live."""
        item = self.table.get_item(Key={"campaign_id": campaign_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise CampaignNotFound(campaign_id)
        record: Campaign = dynamo.plain(item)
        return record

    def with_counts(self, records: list[Campaign], *, consistent: bool = False) -> list[Campaign]:
        """The records with their live counts: the shards' sums replace what the records hold."""
        sums = counters.totals(self.table_name, [r["campaign_id"] for r in records], consistent=consistent)
        return [cast(Campaign, {**r, **dict.fromkeys(SHARDED_COUNTERS, 0), **sums[r["campaign_id"]]}) for r in records]

    def note_counts(self, campaign_id: str, counts: dict[str, int]) -> None:
        """Copy live counts onto the record (the workflow does at each step that queues nothing), so
        that what reads the record alone — the workflow's end events — has them as of that step."""
        self.update_fields(campaign_id, {k: counts[k] for k in SHARDED_COUNTERS if k in counts})

    def create(self, campaign: Mapping[str, Any]) -> bool:
        """Store a new campaign with zeroed counters. False when this id already exists."""
        # Counters start at zero, except the recipient estimate the caller gives (the fan-out's last
        # page replaces it with the exact count).
        # The subject and bodies go to a content item of their own (version 1), in the same transaction.
        cid = campaign["campaign_id"]
        item = {
            **{k: v for k, v in campaign.items() if k not in CONTENT_FIELDS},
            **dict.fromkeys(CAMPAIGN_COUNTERS, 0),
            "total_contacts": campaign.get("total_contacts", 0),
            "fanout_done": False,
            "fanout_page": 0,
            "fanout_cursor": None,
            "content_version": 1,
        }
        content = {"campaign_id": content_id(cid, 1), **{k: v for k, v in campaign.items() if k in CONTENT_FIELDS}}
        try:
            dynamo.client().transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table_name, "Item": dynamo.to_dynamo(content)}},
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": dynamo.to_dynamo(item),
                            "ConditionExpression": "attribute_not_exists(campaign_id)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _cancelled_by_condition(exc):
                return False
            raise
        return True

    def edit(self, campaign_id: str, changes: dict[str, Any], statuses: tuple[str, ...], now: str) -> bool:
        """Apply `changes` while the status is one of `statuses` (False otherwise). Changed content
        becomes the next content version, in one transaction with the record's move to it: a worker
        reads the record for each batch, so pending sends get the new version, and nothing mixes two."""
        record = self.head(campaign_id)
        version = int(record.get("content_version") or 0)
        content = {k: v for k, v in changes.items() if k in CONTENT_FIELDS}
        fields = {**{k: v for k, v in changes.items() if k not in CONTENT_FIELDS}, "updated_at": now}
        if not (content and version):  # nothing for the content item (or a record from before them)
            fields = {**fields, **content}
        assignments, names, values = dynamo.set_clause(fields)
        names["#status"] = "status"
        values.update({f":s{i}": s for i, s in enumerate(statuses)})
        condition = f"#status IN ({', '.join(f':s{i}' for i in range(len(statuses)))})"
        items: list[dict[str, Any]] = []
        if content and version:
            assignments += ", content_version = :next"
            condition += " AND content_version = :version"
            values.update({":next": version + 1, ":version": version})
            new_content = {**self.content(campaign_id, version), **content}
            item = {"campaign_id": content_id(campaign_id, version + 1), **new_content}
            items.append({"Put": {"TableName": self.table_name, "Item": dynamo.to_dynamo(item)}})
        update = {
            "TableName": self.table_name,
            "Key": {"campaign_id": campaign_id},
            "UpdateExpression": "SET " + assignments,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        items.append({"Update": update})
        try:
            dynamo.client().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _cancelled_by_condition(exc):
                return False
            raise
        return True

    def update_fields(self, campaign_id: str, fields: dict[str, Any]) -> None:
        if set(fields) & set(CONTENT_FIELDS):
            raise ValueError("the subject and bodies change through edit(): a new content version")
        assignments, names, values = dynamo.set_clause(fields)
        self.table.update_item(
            Key={"campaign_id": campaign_id},
            UpdateExpression="SET " + assignments,
            ConditionExpression="attribute_exists(campaign_id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def set_estimate(self, campaign_id: str, estimate: int) -> bool:
        """The recipient estimate, only before the first page is fanned out (the last page sets the
        exact count)."""
        return self._update_if(
            Key={"campaign_id": campaign_id},
            UpdateExpression="SET total_contacts = :n",
            ConditionExpression="fanout_page = :zero AND fanout_done = :false",
            ExpressionAttributeValues={":n": estimate, ":zero": 0, ":false": False},
        )

    def record_fanout_page(self, campaign_id: str, page_no: int, cursor: Cursor | None, queued: int, now: str) -> bool:
        """Count one enqueued page and move the cursor, once: a retried step finds it moved on.

        On the last page (no cursor) the total becomes what was queued, replacing the estimate.
        """
        expression = "SET fanout_page = :next, fanout_cursor = :cursor, updated_at = :now ADD queued_count :n"
        values: dict[str, Any] = {":page": page_no, ":next": page_no + 1, ":cursor": cursor, ":n": queued, ":now": now}
        if cursor is None:
            expression = expression.replace(" ADD", ", fanout_done = :true, total_contacts = queued_count + :n ADD")
            values[":true"] = True
        return self._update_if(
            Key={"campaign_id": campaign_id},
            UpdateExpression=expression,
            ConditionExpression="fanout_page = :page",
            ExpressionAttributeValues=values,
        )

    def transition(
        self,
        campaign_id: str,
        from_statuses: tuple[CampaignStatus, ...],
        to: CampaignStatus,
        now: str,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Move status only from one of `from_statuses` (a conditional update: no races)."""
        assignments, names, values = dynamo.set_clause({"status": to.value, "updated_at": now, **(extra or {})})
        values.update({f":from{i}": s.value for i, s in enumerate(from_statuses)})
        update = {
            "Key": {"campaign_id": campaign_id},
            "UpdateExpression": "SET " + assignments,
            # #f0 is status (the first field set above).
            "ConditionExpression": f"#f0 IN ({', '.join(f':from{i}' for i in range(len(from_statuses)))})",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if self.events is None or to.value not in ANNOUNCED:
            return self._update_if(**update)
        # The event reports the record as this update left it: ALL_NEW costs no extra request.
        response = self._updated(**update, ReturnValues="ALL_NEW")
        if response is None:
            return False
        record = dynamo.plain(response["Attributes"])
        # With its live counts (the shards), unless it was only ever scheduled: then nothing was sent.
        live = from_statuses != (CampaignStatus.SCHEDULED,)
        self.events.status_changed(dict(self.with_counts([record])[0]) if live else record, now)
        return True

    def _update_if(self, **update: Any) -> bool:
        """An UpdateItem whose condition may not hold: False then, instead of an exception."""
        return self._updated(**update) is not None

    def _updated(self, **update: Any) -> dict[str, Any] | None:
        """UpdateItem's response, or None when its condition did not hold."""
        try:
            response: dict[str, Any] = self.table.update_item(**update)
            return response
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                return None
            raise
