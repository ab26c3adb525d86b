"""GET /campaigns/{id}/report: delivery and engagement of one campaign, as JSON or CSV."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail.adapters.wiring import engagement_store, stores
from bulkmail.http.request import ApiError, csv_download, responses
from bulkmail.reports import campaign_report, report_csv

router = Router()


@router.get(
    "/campaigns/<campaign_id>/report",
    summary="Delivered, opens, clicks (unique and total, per link, per hour), bounces, complaints (format=json|csv)",
    tags=["campaigns"],
    responses=responses(400, 404),
)
def get_report(campaign_id: str) -> Any:
    fmt = router.current_event.get_query_string_value("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(400, "format", "must be json or csv")
    s = stores()
    campaign = s.campaigns.get(campaign_id, content=False)  # 404 for an unknown campaign; its live counts
    report = campaign_report(campaign, engagement_store().totals(campaign_id), s.settings.tracking_defaults)
    if fmt == "csv":
        return csv_download(report_csv(report), f"{campaign_id}-report.csv")
    return report
