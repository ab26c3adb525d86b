"""The campaigns table: the campaign record and its counters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.adapters.events import ANNOUNCED, CampaignEvents
from bulkmail.errors import CampaignNotFound
from bulkmail.models import CAMPAIGN_COUNTERS, Campaign, CampaignStatus
from bulkmail.ports import Cursor


class CampaignStore:
    def __init__(self, table_name: str, events: CampaignEvents | None = None):
        self.table_name = table_name
        self.table = dynamo.table(table_name)
        # Announces the status changes that happen outside the workflow (paused, cancelled).
        self.events = events

    def get(self, campaign_id: str) -> Campaign:
        item = self.table.get_item(Key={"campaign_id": campaign_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise CampaignNotFound(campaign_id)
        record: Campaign = dynamo.plain(item)
        return record

    def create(self, campaign: Mapping[str, Any]) -> bool:
        """Store a new campaign with zeroed counters. False when this id already exists."""
        # Counters start at zero, except the recipient estimate the caller gives (the fan-out's last
        # page replaces it with the exact count).
        item = {
            **campaign,
            **dict.fromkeys(CAMPAIGN_COUNTERS, 0),
            "total_contacts": campaign.get("total_contacts", 0),
            "fanout_done": False,
            "fanout_page": 0,
            "fanout_cursor": None,
        }
        try:
            self.table.put_item(Item=dynamo.to_dynamo(item), ConditionExpression="attribute_not_exists(campaign_id)")
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                return False
            raise
        return True

    def update_fields(self, campaign_id: str, fields: dict[str, Any]) -> None:
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
        self.events.status_changed(dynamo.plain(response["Attributes"]), now)
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
