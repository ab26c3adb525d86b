"""Reads of the public archive: an archived campaign, and a list's newest on the sparse ArchiveIndex
of the campaigns table (keyed on `archive_list`, which only archived campaigns to a list carry)."""

from __future__ import annotations

from typing import Any

from bulkmail.adapters import dynamo
from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.archive import ARCHIVE_KEY, PUBLISHED

ARCHIVE_INDEX = "ArchiveIndex"
MAX_PAGES = 5  # of the index, per request: a list's unpublished (scheduled) campaigns are skipped, boundedly


class ArchiveReader:
    def __init__(self, campaigns_table: str) -> None:
        self.table_name = campaigns_table
        self.table = dynamo.table(campaigns_table)
        self.campaigns = CampaignStore(campaigns_table)

    def campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """The record with its content (two GetItems: the record names its content version)."""
        item = self.table.get_item(Key={"campaign_id": campaign_id}).get("Item")
        return dict(self.campaigns.with_content(dynamo.plain(item))) if item else None

    def newest(self, list_name: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` published campaigns of the list, newest first (the index projects what an
        index page shows: name and status; the subject is in the content item)."""
        found: list[dict[str, Any]] = []
        pages = dynamo.pages(
            "query",
            self.table_name,
            IndexName=ARCHIVE_INDEX,
            KeyConditionExpression="#k = :k",
            FilterExpression="#s IN (" + ", ".join(f":s{i}" for i in range(len(PUBLISHED))) + ")",
            ExpressionAttributeNames={"#k": ARCHIVE_KEY, "#s": "status"},
            ExpressionAttributeValues={":k": list_name, **{f":s{i}": s for i, s in enumerate(sorted(PUBLISHED))}},
            ScanIndexForward=False,
            PaginationConfig={"PageSize": limit},
        )
        for number, page in enumerate(pages):
            found.extend(dynamo.plain(page["Items"]))
            if len(found) >= limit or number + 1 >= MAX_PAGES:
                break
        return found[:limit]
