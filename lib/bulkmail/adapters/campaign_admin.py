"""DynamoDB: what the management API reads and writes beyond the worker's stores — pages of campaigns
and deliveries, guarded edits, the one re-send claim, and taking back a record whose start failed.

Beside campaigns.CampaignStore and ledger.Ledger (the worker's) so that the API's needs do not
reshape the worker's adapters. Implements bulkmail.ports.CampaignAdmin.
"""

from __future__ import annotations

from typing import Any, cast

from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.models import Campaign
from bulkmail.ports import Cursor


class CampaignAdmin:
    def __init__(self, campaigns_table: str, deliveries_table: str) -> None:
        self.campaigns_table = campaigns_table
        self.deliveries_table = deliveries_table

    def campaigns_page(
        self, limit: int, cursor: Cursor | None, status: str | None
    ) -> tuple[list[Campaign], Cursor | None]:
        items, last = dynamo.list_page(
            self.campaigns_table, limit, cursor, ("campaign_id",), status=status, records_only=True
        )
        return cast("list[Campaign]", items), last

    def deliveries_page(
        self, campaign_id: str, limit: int, cursor: Cursor | None, status: str | None
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        return dynamo.list_page(
            self.deliveries_table,
            limit,
            cursor,
            ("campaign_id", "email"),
            key_condition=("campaign_id", campaign_id),
            status=status,
        )

    def delete(self, campaign_id: str) -> None:
        dynamo.table(self.campaigns_table).delete_item(Key={"campaign_id": campaign_id})

    def claim_resend(self, campaign_id: str, resend_id: str) -> str:
        """Record `resend_id` as the campaign's one re-send, unless it has one: the re-send's id either way."""
        try:
            dynamo.table(self.campaigns_table).update_item(
                Key={"campaign_id": campaign_id},
                UpdateExpression="SET resent_as = :id",
                ConditionExpression="attribute_exists(campaign_id) AND attribute_not_exists(resent_as)",
                ExpressionAttributeValues={":id": resend_id},
            )
            return resend_id
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
        item = dynamo.table(self.campaigns_table).get_item(
            Key={"campaign_id": campaign_id}, ConsistentRead=True, ProjectionExpression="resent_as"
        )["Item"]
        return str(item["resent_as"])
