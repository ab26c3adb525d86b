"""A campaign's report: delivery outcomes from its record, engagement from its counters."""

from __future__ import annotations

import csv
import io
from typing import Any

from bulkmail.tracking import Tracking, tracking_of

# The kinds of the engagement counters, as the report names them: (total, unique) fields.
_FIELDS = {"open": ("opens", "opens_unique"), "click": ("clicks", "clicks_unique")}
_ONCE = {
    "delivered": "delivered",
    "delivery_delayed": "delivery_delays",
    "rejected": "rejected",
    "rendering_failed": "rendering_failures",
    "unsubscribed": "unsubscribes",
}
SUMMARY = (
    "sent",
    "delivered",
    "opens_unique",
    "opens",
    "clicks_unique",
    "clicks",
    "bounces",
    "complaints",
    "unsubscribes",
    "delivery_delays",
    "rejected",
    "rendering_failures",
)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def campaign_report(campaign: dict[str, Any], totals: dict[str, Any], defaults: Tracking) -> dict[str, Any]:
    """`totals`: EngagementStore.totals. Uniques count each recipient once (each email, in privacy mode)."""
    tracking = tracking_of(campaign, defaults)
    kinds = totals["kinds"]
    report: dict[str, Any] = {
        "campaign_id": campaign["campaign_id"],
        "campaign_name": campaign.get("campaign_name", ""),
        "status": campaign.get("status", ""),
        "tracking": {"opens": tracking.opens, "clicks": tracking.clicks, "privacy_mode": tracking.privacy},
        "sent": int(campaign.get("sent_count", 0)),
        "bounces": int(campaign.get("bounced_count", 0)),
        "complaints": int(campaign.get("complained_count", 0)),
    }
    for kind, (total, unique) in _FIELDS.items():
        report[total] = kinds.get(kind, {}).get("n", 0)
        report[unique] = kinds.get(kind, {}).get("u", 0)
    for kind, name in _ONCE.items():  # one per email: the unique count is the count
        report[name] = kinds.get(kind, {}).get("u", 0)
    base = report["delivered"] or report["sent"]
    report["open_rate"] = _rate(report["opens_unique"], base)
    report["click_rate"] = _rate(report["clicks_unique"], base)
    report["links"] = sorted(
        ({"url": link["url"], "clicks_unique": link["u"], "clicks": link["n"]} for link in totals["links"]),
        key=lambda link: (-link["clicks"], link["url"]),
    )
    curves: dict[str, dict[str, Any]] = {}
    for (kind, hour), counts in totals["hours"].items():
        point = curves.setdefault(hour, {"hour": hour})
        if kind in _FIELDS:
            total, unique = _FIELDS[kind]
            point[total] = point.get(total, 0) + counts["n"]
            point[unique] = point.get(unique, 0) + counts["u"]
        elif kind in _ONCE:
            point[_ONCE[kind]] = point.get(_ONCE[kind], 0) + counts["u"]
    report["curves"] = [curves[h] for h in sorted(curves)]
    return report


def report_csv(report: dict[str, Any]) -> str:
    """Three tables, a blank line between them: the totals, the links, the hourly curves."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["metric", "value"])
    writer.writerows([name, report[name]] for name in SUMMARY)
    writer.writerow([])
    writer.writerow(["url", "clicks_unique", "clicks"])
    writer.writerows([link["url"], link["clicks_unique"], link["clicks"]] for link in report["links"])
    writer.writerow([])
    columns = ["hour", "delivered", "opens_unique", "opens", "clicks_unique", "clicks"]
    writer.writerow(columns)
    writer.writerows([point.get(c, 0) for c in columns] for point in report["curves"])
    return out.getvalue()
