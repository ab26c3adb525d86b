"""The campaigns routes: start or schedule, read, edit, pause, resume, cancel, re-send the failed,
the delivery ledger and the workflow's trace, a test send and a preview.

Each route parses its request and calls a use case of `bulkmail.campaign_actions` with the stores
`bulkmail.adapters.wiring` builds once per container. Campaigns are validated with the same
`validate_campaign` as the ValidateCampaign step, before anything starts; a rejected request stores
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from bulkmail import campaign_actions
from bulkmail.adapters.dynamo import encode_cursor
from bulkmail.adapters.wiring import (
    custom_fields_in_use,
    executions,
    idempotency_layer,
    schedules,
    stores,
    template_store,
    transport_for,
)
from bulkmail.clock import SYSTEM_CLOCK
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import CampaignNotFound, SecretNotConfigured, SendError
from bulkmail.http.request import ApiError, json_body, json_response, page_args, responses
from bulkmail.models import Campaign, CampaignStatus, CampaignView, Contact
from bulkmail.rendering import RenderedEmail, build_mime, render
from bulkmail.templates import apply_template
from bulkmail.validation import email_problem, validate_campaign

IDEMPOTENCY_SECONDS = 24 * 3600
MAX_TEST_RECIPIENTS = 10

router = Router()


def _validated(document: dict[str, Any], now: datetime) -> Campaign:
    """A submitted campaign, its template resolved here, once (a stored campaign keeps the content and
    its version), checked as the workflow's ValidateCampaign step checks it."""
    return validate_campaign(apply_template(document, template_store()), now=now, custom_fields=custom_fields_in_use())


def _contact(document: Any) -> dict[str, Any]:
    """The contact a campaign is rendered for, normalised as an imported one is."""
    items, rejected = normalise_contacts([document])
    if rejected:
        raise ApiError(400, "contact", rejected[0]["error"])
    return items[0]


def _create_campaign(request: dict[str, Any]) -> dict[str, Any]:
    s = stores()
    return campaign_actions.start(
        _validated(request["body"], SYSTEM_CLOCK.now()),
        campaigns=s.campaigns,
        contacts=s.contacts,
        admin=s.admin,
        executions=executions(),
        schedules=schedules(),
        settings=s.settings,
    )


@lru_cache(maxsize=8)
def _idempotent(layer: BasePersistenceLayer) -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    """`_create_campaign` guarded by Idempotency-Key, built once per persistence layer (once per container)."""
    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="body", expires_after_seconds=IDEMPOTENCY_SECONDS
    )
    guarded = idempotent_function(data_keyword_argument="request", persistence_store=layer, config=config)
    return guarded(_create_campaign), config


def _idempotent_create(key: str, body: dict[str, Any]) -> dict[str, Any]:
    create, config = _idempotent(idempotency_layer())
    if router.lambda_context is not None:
        config.register_lambda_context(router.lambda_context)
    return create(request={"key": key, "body": body})


@router.post(
    "/campaigns",
    summary="Start a campaign now, or schedule it with send_at (honours Idempotency-Key)",
    tags=["campaigns"],
    status_code=202,
    responses=responses(400, 409, 413, 422, ok=202),
)
def post_campaign() -> Response[str]:
    body = json_body(router.current_event)
    key = router.current_event.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key.strip()) <= 255:
        raise ApiError(400, "Idempotency-Key", "must be 1 to 255 characters")
    result = _idempotent_create(key.strip(), body) if key else _create_campaign({"body": body})
    return json_response(202, result)


def _with_progress(record: Campaign) -> CampaignView:
    total, done = record.get("total_contacts") or 0, record.get("processed_count") or 0
    view: CampaignView = {
        **record,
        "progress": round(done / total, 4) if total else (1.0 if record.get("status") == "completed" else 0.0),
    }
    view.pop("fanout_cursor", None)
    return view


@router.get(
    "/campaigns",
    summary="Campaigns, a page at a time (limit, next_token, status)",
    tags=["campaigns"],
    responses=responses(400),
)
def list_campaigns() -> dict[str, Any]:
    limit, cursor = page_args(router.current_event)
    status = router.current_event.get_query_string_value("status", None)
    if status is not None and status not in {s.value for s in CampaignStatus}:
        raise ApiError(400, "status", f"must be one of {', '.join(s.value for s in CampaignStatus)}")
    items, last = stores().admin.campaigns_page(limit, cursor, status)
    items = stores().campaigns.with_counts(items)
    return {"campaigns": [_with_progress(i) for i in items], "next_token": encode_cursor(last)}


@router.get(
    "/campaigns/<campaign_id>",
    summary="A campaign: record, counters, status, progress",
    tags=["campaigns"],
    responses=responses(404),
)
def get_campaign(campaign_id: str) -> dict[str, Any]:
    return dict(_view(campaign_id))


def _view(campaign_id: str) -> CampaignView:
    try:
        return _with_progress(stores().campaigns.get(campaign_id))
    except CampaignNotFound:
        return campaign_actions.starting(campaign_id, executions=executions())


@router.patch(
    "/campaigns/<campaign_id>",
    summary="Edit name, subject or bodies until the campaign ends (reaches pending sends)",
    tags=["campaigns"],
    responses=responses(400, 404, 409, 413),
)
def patch_campaign(campaign_id: str) -> dict[str, Any]:
    changes = json_body(router.current_event)
    return dict(
        _with_progress(
            campaign_actions.edit(
                campaign_id,
                changes,
                campaigns=stores().campaigns,
                custom_fields=custom_fields_in_use(),
            )
        )
    )


def _operation(campaign_id: str, operation: Callable[..., Campaign], **adapters: Any) -> dict[str, Any]:
    """Run one of campaign_actions' transitions on a campaign (a status it does not apply to is a 409)."""
    previous = stores().campaigns.get(campaign_id)["status"]  # 404 for an unknown campaign
    record = operation(campaign_id, campaigns=stores().campaigns, **adapters)
    return {"campaign_id": campaign_id, "status": record["status"], "previous_status": previous}


@router.post(
    "/campaigns/<campaign_id>/pause",
    summary="Pause a queued or processing campaign",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def pause_campaign(campaign_id: str) -> dict[str, Any]:
    return _operation(campaign_id, campaign_actions.pause)


@router.post(
    "/campaigns/<campaign_id>/resume",
    summary="Resume a paused campaign: exactly the recipients not yet sent are sent",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def resume_campaign(campaign_id: str) -> dict[str, Any]:
    return _operation(campaign_id, campaign_actions.resume, ledger=stores().ledger, queue=stores().queue)


@router.post(
    "/campaigns/<campaign_id>/cancel",
    summary="Cancel a campaign: every recipient not yet sent is skipped (a scheduled one never starts)",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def cancel_campaign(campaign_id: str) -> dict[str, Any]:
    result = _operation(campaign_id, campaign_actions.cancel, ledger=stores().ledger, queue=stores().queue)
    if result["previous_status"] == CampaignStatus.SCHEDULED.value:
        record = stores().campaigns.get(campaign_id)
        result["schedule_deleted"] = campaign_actions.drop_schedule(record, schedules=schedules())
    return result


@router.post(
    "/campaigns/<campaign_id>/resend-failed",
    summary="Start a new campaign to this one's failed recipients only; once: a repeat answers with the first re-send",
    tags=["campaigns"],
    status_code=202,
    responses=responses(404, 409, ok=202),
)
def resend_failed(campaign_id: str) -> dict[str, Any]:
    s = stores()
    return campaign_actions.resend_failed(
        campaign_id,
        campaigns=s.campaigns,
        ledger=s.ledger,
        admin=s.admin,
        executions=executions(),
        settings=s.settings,
    )


@router.get(
    "/campaigns/<campaign_id>/deliveries",
    summary="The delivery ledger, a page at a time (status=sent|failed|skipped)",
    tags=["campaigns"],
    responses=responses(400, 404),
)
def list_deliveries(campaign_id: str) -> dict[str, Any]:
    stores().campaigns.get(campaign_id)  # 404 for an unknown campaign
    limit, cursor = page_args(router.current_event)
    status = router.current_event.get_query_string_value("status", None)
    if status is not None and status not in ("sent", "failed", "skipped"):
        raise ApiError(400, "status", "must be one of sent, failed, skipped")
    items, last = stores().admin.deliveries_page(campaign_id, limit, cursor, status)
    return {"deliveries": items, "next_token": encode_cursor(last)}


@router.get(
    "/campaigns/<campaign_id>/trace",
    summary="The campaign's path through the workflow's states, with timings, and its progress samples",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def trace_campaign(campaign_id: str) -> dict[str, Any]:
    # 404 for an unknown campaign; a starting one has its execution
    return campaign_actions.trace(_view(campaign_id), executions=executions())


@router.post(
    "/campaigns/test",
    summary="Send a test email of a campaign to a few addresses (counted nowhere)",
    tags=["campaigns"],
    responses=responses(400, 413, 502),
)
def test_send_campaign() -> dict[str, Any]:
    document = json_body(router.current_event)
    to = document.pop("to", None)
    contact_doc = document.pop("contact", {})
    if not isinstance(to, list) or not to or not all(isinstance(a, str) for a in to):
        raise ApiError(400, "to", "is required: a list of email addresses")
    if len(to) > MAX_TEST_RECIPIENTS:
        raise ApiError(400, "to", f"{len(to)} addresses; at most {MAX_TEST_RECIPIENTS} per test send")
    bad = [problem for problem in map(email_problem, to) if problem]
    if bad:
        raise ApiError(400, "to", bad[0])
    if not isinstance(contact_doc, dict):
        raise ApiError(400, "contact", "must be an object of placeholder values (first_name, ...)")
    document.pop("send_at", None)
    now = SYSTEM_CLOCK.now()
    campaign_id = f"test-{now.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    campaign: dict[str, Any] = dict(_validated({**document, "campaign_id": campaign_id}, now))
    campaign.update(track_opens=False, track_clicks=False)  # a test send counts in no report (issue 16)
    contact_item = _contact({**contact_doc, "email": to[0]})
    try:
        transport = transport_for(campaign)
    # ValueError: SecretMalformed, or a region botocore refuses (InvalidRegionError)
    except (SecretNotConfigured, GetParameterError, TransformParameterError, ValueError) as exc:
        raise ApiError(
            400, "aws_secret_name", f"cannot use the secret {campaign.get('aws_secret_name')!r}: {exc}"
        ) from None
    sent = []
    for address in to:
        contact = Contact.from_item({**contact_item, "email": address.strip().lower()})
        rendered = render(campaign, contact)
        rendered = RenderedEmail(f"[TEST] {rendered.subject}", rendered.text, rendered.html)
        try:
            message_id = transport.send(build_mime(campaign, contact, rendered))
        except SendError as exc:
            raise ApiError(502, "to", f"{address}: {exc}") from None
        sent.append({"to": address, "message_id": message_id})
    return {"campaign_id": campaign["campaign_id"], "sent": sent}


@router.post(
    "/campaigns/preview",
    summary="Render a campaign for one contact: subject, text, html",
    tags=["campaigns"],
    responses=responses(400, 413),
)
def preview_campaign() -> dict[str, Any]:
    document = json_body(router.current_event)
    contact_doc = document.pop("contact", None)
    if contact_doc is None:
        raise ApiError(400, "contact", "is required: the contact to render the campaign for")
    document.pop("send_at", None)
    campaign: dict[str, Any] = dict(_validated(document, SYSTEM_CLOCK.now()))
    rendered = render(campaign, Contact.from_item(_contact(contact_doc)))
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}
