"""The campaigns routes: start or schedule, read, edit, pause, resume, cancel, re-send the failed,
the delivery ledger and the workflow's trace, a test send and a preview.

Campaigns are validated with the same `validate_campaign` as the ValidateCampaign step, before
anything starts; a rejected request stores nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from bulkmail import control as operations
from bulkmail.adapters import control
from bulkmail.adapters.wiring import custom_fields_in_use, idempotency_layer, stores, transport_for
from bulkmail.audience import audience_problems, with_segment
from bulkmail.clock import SYSTEM_CLOCK
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import (
    CampaignInvalid,
    CampaignNotFound,
    ExecutionExists,
    ExecutionNotFound,
    InvalidTransition,
    SecretNotConfigured,
    SendError,
)
from bulkmail.http.request import ApiError, json_body, page_args, responses
from bulkmail.models import CampaignStatus, Contact
from bulkmail.rendering import RenderedEmail, build_mime, render
from bulkmail.trace import path as trace_path
from bulkmail.trace import progress_samples
from bulkmail.trace import steps as trace_steps
from bulkmail.validation import email_problem, parse_timestamp, submitted_fields, validate_campaign
from bulkmail.workflow import queued_record

EDITABLE_FIELDS = ("campaign_name", "subject", "body", "body_html")
EDITABLE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.QUEUED, CampaignStatus.PROCESSING, CampaignStatus.PAUSED)
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_TRACE_STEPS = 500  # the latest laps; `path` summarises them all
MAX_TEST_RECIPIENTS = 10

router = Router()


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"environment variable {name} is required by the API function")
    return value


def _execution_input(campaign: dict[str, Any]) -> dict[str, Any]:
    """What ValidateCampaign accepts again: the schema's fields (created_at and send_at are ours)."""
    return submitted_fields(campaign)


def _create_campaign(request: dict[str, Any]) -> dict[str, Any]:
    campaign = validate_campaign(request["body"], now=SYSTEM_CLOCK.now(), custom_fields=custom_fields_in_use())
    campaign_id = campaign["campaign_id"]
    try:
        stores().campaigns.get(campaign_id)
    except CampaignNotFound:
        pass
    else:
        raise ApiError(409, "campaign_id", f"{campaign_id} already exists")
    # ---- audience (issue 15): a segment's lists and conditions are copied into the campaign ----
    campaign = with_segment(campaign, stores().contacts)
    # ---- end audience ----
    nobody = audience_problems(campaign, stores().contacts)
    if nobody:
        raise ApiError(422, "list", "", errors=nobody)
    if "send_at" in campaign:
        return _schedule_campaign(campaign)
    # Stored before the execution starts, so that it can be read, paused or cancelled from the moment
    # this answers (PersistCampaign then adopts the record of its own execution). The conditional
    # create also makes a second POST of the same id, while the first is starting, a 409.
    machine = _env("STATE_MACHINE_ARN")
    arn = control.execution_arn(machine, campaign_id)
    if not stores().campaigns.create(queued_record(campaign, arn, stores().settings)):
        raise ApiError(409, "campaign_id", f"{campaign_id} already exists")
    try:
        control.start_execution(machine, campaign_id, _execution_input(campaign))
    except ExecutionExists:  # an execution of this name ran before (its campaign was never stored)
        stores().campaigns.table.delete_item(Key={"campaign_id": campaign_id})
        raise ApiError(409, "campaign_id", f"{campaign_id} already exists") from None
    except Exception:
        stores().campaigns.table.delete_item(Key={"campaign_id": campaign_id})  # nothing half-made stays
        raise
    return {"campaign_id": campaign_id, "status": CampaignStatus.QUEUED.value, "execution_arn": arn}


def _schedule_campaign(campaign: dict[str, Any]) -> dict[str, Any]:
    """Store the campaign as scheduled (so it can be read, edited, cancelled) and schedule its start."""
    campaign_id = campaign["campaign_id"]
    group = _env("SCHEDULE_GROUP")
    record = {
        **campaign,
        "status": CampaignStatus.SCHEDULED.value,
        "schedule_name": campaign_id,
        "schedule_group": group,
        "updated_at": SYSTEM_CLOCK.now().isoformat(timespec="milliseconds"),
    }
    if not stores().campaigns.create(record):
        raise ApiError(409, "campaign_id", f"{campaign_id} already exists")
    when = parse_timestamp(campaign["send_at"])
    assert when is not None  # validate_campaign checked send_at
    try:
        control.schedule_execution(
            group,
            campaign_id,
            when,
            _env("STATE_MACHINE_ARN"),
            _env("SCHEDULER_ROLE_ARN"),
            _execution_input(campaign),
            _env("SCHEDULE_DEAD_LETTER_ARN"),
        )
    except Exception:
        stores().campaigns.table.delete_item(Key={"campaign_id": campaign_id})  # nothing half-made stays
        raise
    return {"campaign_id": campaign_id, "status": CampaignStatus.SCHEDULED.value, "schedule_name": campaign_id}


def _idempotent_create(key: str, body: dict[str, Any]) -> dict[str, Any]:
    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="body", expires_after_seconds=IDEMPOTENCY_SECONDS
    )
    if router.lambda_context is not None:
        config.register_lambda_context(router.lambda_context)
    guarded = idempotent_function(
        data_keyword_argument="request", persistence_store=idempotency_layer(), config=config
    )(_create_campaign)
    result: dict[str, Any] = guarded(request={"key": key, "body": body})
    return result


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
    return Response(status_code=202, content_type="application/json", body=json.dumps(result))


def _with_progress(record: dict[str, Any]) -> dict[str, Any]:
    total, done = record.get("total_contacts") or 0, record.get("processed_count") or 0
    record["progress"] = round(done / total, 4) if total else (1.0 if record.get("status") == "completed" else 0.0)
    record.pop("fanout_cursor", None)
    return record


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
    items, last = control.list_page(stores().campaigns.table_name, limit, cursor, ("campaign_id",), status=status)
    return {"campaigns": [_with_progress(i) for i in items], "next_token": control.encode_cursor(last)}


def _starting(campaign_id: str) -> dict[str, Any]:
    """A campaign whose execution has started but not yet stored it (executions are named after campaigns)."""
    arn = control.execution_arn(_env("STATE_MACHINE_ARN"), campaign_id)
    try:
        execution = control.describe_execution(arn)
    except ExecutionNotFound:
        raise CampaignNotFound(campaign_id) from None
    if execution["status"] == "RUNNING":
        return {
            "campaign_id": campaign_id,
            "status": CampaignStatus.QUEUED.value,
            "execution_arn": arn,
            "progress": 0.0,
        }
    # Ended without storing the campaign: rejected by ValidateCampaign, or not persisted.
    return {
        "campaign_id": campaign_id,
        "status": CampaignStatus.FAILED.value,
        "execution_arn": arn,
        "error": execution.get("error", ""),
        "cause": execution.get("cause", ""),
        "progress": 0.0,
    }


@router.get(
    "/campaigns/<campaign_id>",
    summary="A campaign: record, counters, status, progress",
    tags=["campaigns"],
    responses=responses(404),
)
def get_campaign(campaign_id: str) -> dict[str, Any]:
    try:
        return _with_progress(stores().campaigns.get(campaign_id))
    except CampaignNotFound:
        return _starting(campaign_id)


@router.patch(
    "/campaigns/<campaign_id>",
    summary="Edit name, subject or bodies until the campaign ends (reaches pending sends)",
    tags=["campaigns"],
    responses=responses(400, 404, 409, 413),
)
def patch_campaign(campaign_id: str) -> dict[str, Any]:
    changes = json_body(router.current_event)
    not_editable = sorted(set(changes) - set(EDITABLE_FIELDS))
    if not_editable:
        raise CampaignInvalid(
            [
                {"field": f, "message": f"cannot be edited (editable: {', '.join(EDITABLE_FIELDS)})"}
                for f in not_editable
            ]
        )
    if not changes:
        raise ApiError(400, "$", f"name at least one of {', '.join(EDITABLE_FIELDS)}")
    record = stores().campaigns.get(campaign_id)
    merged = {**submitted_fields(record), **changes}
    # The same rules as a new campaign (raises CampaignInvalid); only EDITABLE_FIELDS come from the client.
    validate_campaign(merged, now=SYSTEM_CLOCK.now(), trusted=True, custom_fields=custom_fields_in_use())
    allowed = tuple(s.value for s in EDITABLE_STATUSES)
    if not control.update_if_status(
        stores().campaigns.table_name,
        campaign_id,
        {**changes, "updated_at": SYSTEM_CLOCK.now().isoformat(timespec="milliseconds")},
        allowed,
    ):
        raise ApiError(409, "status", f"a {stores().campaigns.get(campaign_id)['status']} campaign cannot be edited")
    return _with_progress(stores().campaigns.get(campaign_id))


def _operation(campaign_id: str, operation: Callable[..., dict[str, Any]], **adapters: Any) -> dict[str, Any]:
    """Run one of bulkmail.control's operations on a campaign; a status it does not apply to is a 409."""
    previous = stores().campaigns.get(campaign_id)["status"]  # 404 for an unknown campaign
    try:
        record = operation(campaign_id, campaigns=stores().campaigns, **adapters)
    except InvalidTransition as exc:
        raise ApiError(409, "status", str(exc)) from None
    return {"campaign_id": campaign_id, "status": record["status"], "previous_status": previous}


@router.post(
    "/campaigns/<campaign_id>/pause",
    summary="Pause a queued or processing campaign",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def pause_campaign(campaign_id: str) -> dict[str, Any]:
    return _operation(campaign_id, operations.pause)


@router.post(
    "/campaigns/<campaign_id>/resume",
    summary="Resume a paused campaign: exactly the recipients not yet sent are sent",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def resume_campaign(campaign_id: str) -> dict[str, Any]:
    return _operation(campaign_id, operations.resume, ledger=stores().ledger, queue=stores().queue)


@router.post(
    "/campaigns/<campaign_id>/cancel",
    summary="Cancel a campaign: every recipient not yet sent is skipped (a scheduled one never starts)",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def cancel_campaign(campaign_id: str) -> dict[str, Any]:
    result = _operation(campaign_id, operations.cancel, ledger=stores().ledger, queue=stores().queue)
    if result["previous_status"] == CampaignStatus.SCHEDULED.value:
        # Cancelled first, then the schedule: if it fires in between, PersistCampaign refuses a
        # cancelled campaign, so it never starts either way.
        record = stores().campaigns.get(campaign_id)
        result["schedule_deleted"] = control.delete_schedule(record["schedule_group"], record["schedule_name"])
    return result


@router.post(
    "/campaigns/<campaign_id>/resend-failed",
    summary="Start a new campaign to this one's failed recipients only; once: a repeat answers with the first re-send",
    tags=["campaigns"],
    status_code=202,
    responses=responses(404, 409, ok=202),
)
def resend_failed(campaign_id: str) -> dict[str, Any]:
    try:
        campaign = validate_campaign(
            operations.resend_failed_input(campaign_id, campaigns=stores().campaigns, ledger=stores().ledger),
            now=SYSTEM_CLOCK.now(),
            trusted=True,
            custom_fields=None,  # the original's placeholders were checked when it was created
        )
    except InvalidTransition as exc:
        raise ApiError(409, "status", str(exc)) from None
    # One re-send per campaign: the first call records its id on the original (a conditional write);
    # a repeat, concurrent or later, finds it and answers with that re-send instead of starting another.
    resend_id = control.claim_resend(stores().campaigns.table_name, campaign_id, campaign["campaign_id"])
    try:
        record = stores().campaigns.get(resend_id)
        return {
            "campaign_id": resend_id,
            "resend_of": campaign_id,
            "status": record["status"],
            "execution_arn": record.get("execution_arn"),
        }
    except CampaignNotFound:
        pass
    # Not stored yet: starting, or the first call stopped before it started. Stored before it starts
    # (so it can be cancelled from this answer on; a racing call's create finds it), and the execution
    # is named after the re-send, so of racing starts only one runs.
    machine = _env("STATE_MACHINE_ARN")
    resend = {**campaign, "campaign_id": resend_id}
    stores().campaigns.create(queued_record(resend, control.execution_arn(machine, resend_id), stores().settings))
    arn = control.start_execution_once(machine, resend_id, _execution_input(resend))
    return {
        "campaign_id": resend_id,
        "resend_of": campaign_id,
        "status": CampaignStatus.QUEUED.value,
        "execution_arn": arn,
    }


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
    items, last = control.list_page(
        stores().settings.deliveries_table,
        limit,
        cursor,
        ("campaign_id", "email"),
        key_condition=("campaign_id", campaign_id),
        status=status,
    )
    return {"deliveries": items, "next_token": control.encode_cursor(last)}


@router.get(
    "/campaigns/<campaign_id>/trace",
    summary="The campaign's path through the workflow's states, with timings, and its progress samples",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def trace_campaign(campaign_id: str) -> dict[str, Any]:
    record = get_campaign(campaign_id)  # 404 for an unknown campaign; a starting one has its execution
    arn = record.get("execution_arn")
    if not arn:
        raise ApiError(409, "status", f"a {record['status']} campaign has no execution yet")
    # One GetExecutionHistory request per 1,000 events: a few for a long campaign (≤ 25,000 events).
    events = control.execution_history(arn)
    execution = control.describe_execution(arn)
    every_step = trace_steps(events)
    return {
        "campaign_id": campaign_id,
        "execution_arn": arn,
        "execution_status": execution["status"],
        "path": trace_path(every_step),
        "progress": progress_samples(events),
        "steps": [vars(s) for s in every_step[-MAX_TRACE_STEPS:]],
        "steps_omitted": max(0, len(every_step) - MAX_TRACE_STEPS),
    }


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
    campaign = validate_campaign(
        {**document, "campaign_id": campaign_id}, now=now, custom_fields=custom_fields_in_use()
    )
    items, rejected = normalise_contacts([{**contact_doc, "email": to[0]}])
    if rejected:
        raise ApiError(400, "contact", rejected[0]["error"])
    try:
        transport = transport_for(campaign)
    except (SecretNotConfigured, GetParameterError, TransformParameterError, ValueError) as exc:
        raise ApiError(
            400, "aws_secret_name", f"cannot use the secret {campaign.get('aws_secret_name')!r}: {exc}"
        ) from None
    sent = []
    for address in to:
        contact = Contact.from_item({**items[0], "email": address.strip().lower()})
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
    campaign = validate_campaign(document, now=SYSTEM_CLOCK.now(), custom_fields=custom_fields_in_use())
    items, rejected = normalise_contacts([contact_doc])
    if rejected:
        raise ApiError(400, "contact", rejected[0]["error"])
    rendered = render(campaign, Contact.from_item(items[0]))
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}
