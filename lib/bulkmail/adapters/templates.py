"""Stored templates: one immutable item per (template_id, version) in the templates table.

A new version is a conditional PutItem of `latest + 1`: two writers racing for the same number find
the condition failed, and the loser reads the new latest and tries the next number (a few times).
Versions are never changed or deleted, so a campaign that names one reads the same content forever.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from bulkmail.adapters import dynamo
from bulkmail.errors import TemplateBusy, TemplateExists, TemplateNotFound

WRITE_ATTEMPTS = 5  # racing writers of one template; each attempt is one Query and one PutItem
LIST_LIMIT = 1000  # templates listed by GET /templates (one small table: a page or two of a Scan)
_SUMMARY = ("template_id", "version", "name", "subject", "created_at")
# A read of the summaries only (every name through a placeholder: `name` is a reserved word).
_SUMMARY_PROJECTION = {
    "ExpressionAttributeNames": {f"#{n}": n for n in _SUMMARY},
    "ProjectionExpression": ", ".join(f"#{n}" for n in _SUMMARY),
}


class TemplateStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.table = dynamo.table(table_name)

    def latest_version(self, template_id: str) -> int:
        """The newest version's number, 0 when the template does not exist."""
        items = self.table.query(
            KeyConditionExpression=Key("template_id").eq(template_id),
            ScanIndexForward=False,
            Limit=1,
            ProjectionExpression="version",
            ConsistentRead=True,
        )["Items"]
        return int(items[0]["version"]) if items else 0

    def add_version(self, template: dict[str, Any], now_iso: str, *, new: bool) -> dict[str, Any]:
        """Store `template` as its next version and return the item. `new`: as version 1, or
        TemplateExists; otherwise TemplateNotFound when there is no version yet."""
        for _ in range(WRITE_ATTEMPTS):
            version = 1 if new else self.latest_version(template["template_id"]) + 1
            if version == 1 and not new:
                raise TemplateNotFound(template["template_id"])
            item = {**template, "version": version, "created_at": now_iso}
            try:
                self.table.put_item(Item=dynamo.to_dynamo(item), ConditionExpression="attribute_not_exists(version)")
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise
                if new:
                    raise TemplateExists(template["template_id"]) from None
                continue  # another writer took this number: try the next
            return item
        raise TemplateBusy(template["template_id"])

    def get(self, template_id: str, version: int | None = None) -> dict[str, Any]:
        """A version of a template (the newest when `version` is None); TemplateNotFound if absent."""
        if version is None:
            items = self.table.query(
                KeyConditionExpression=Key("template_id").eq(template_id),
                ScanIndexForward=False,
                Limit=1,
                ConsistentRead=True,
            )["Items"]
            found = items[0] if items else None
        else:
            found = self.table.get_item(Key={"template_id": template_id, "version": version}, ConsistentRead=True).get(
                "Item"
            )
        if found is None:
            raise TemplateNotFound(template_id, version)
        return dict(dynamo.plain(found))

    def versions(self, template_id: str) -> list[dict[str, Any]]:
        """Every version's summary, newest first (without the bodies)."""
        return list(
            dynamo.items(
                "query",
                self.table_name,
                KeyConditionExpression="template_id = :t",
                ExpressionAttributeValues={":t": template_id},
                ScanIndexForward=False,
                **_SUMMARY_PROJECTION,
            )
        )

    def latest_summaries(self) -> list[dict[str, Any]]:
        """The newest version of each template (summaries), by template_id, up to LIST_LIMIT."""
        newest: dict[str, dict[str, Any]] = {}
        for item in dynamo.items("scan", self.table_name, **_SUMMARY_PROJECTION):
            seen = newest.get(item["template_id"])
            if seen is None or item["version"] > seen["version"]:
                newest[item["template_id"]] = item
        return [newest[k] for k in sorted(newest)][:LIST_LIMIT]
