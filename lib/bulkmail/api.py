"""The management API: one Powertools REST resolver, routes that call the stores.

Every rejection is a JSON body `{"errors": [{"field", "message"}]}` with 400 (bad input), 404 (unknown
id), 409 (state does not allow it), 413 (too large) or 415 (wrong media type); a rejected request
stores nothing. Campaigns are validated with the same `validate_campaign` as the ValidateCampaign
step, before anything starts.

This module is the HTTP edge (it reaches AWS through `bulkmail.adapters`), not the domain core.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from bulkmail import control as operations
from bulkmail.adapters import control
from bulkmail.adapters.wiring import idempotency_layer, stores, template_store, transport_for
from bulkmail.audience import audience_problems
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import (
    BadCursor,
    CampaignInvalid,
    CampaignNotFound,
    CampaignTooLarge,
    ExecutionExists,
    ExecutionNotFound,
    InvalidTransition,
    SecretNotConfigured,
    SendError,
)
from bulkmail.http import reports, templates
from bulkmail.http.request import ApiError, error_response, json_body, page_args, raw_body, responses
from bulkmail.models import CampaignStatus, Contact
from bulkmail.rendering import RenderedEmail, build_mime, render
from bulkmail.templates import apply_template
from bulkmail.trace import path as trace_path
from bulkmail.trace import progress_samples
from bulkmail.trace import steps as trace_steps
from bulkmail.validation import (
    INTERNAL_FIELDS,
    email_problem,
    load_schema,
    parse_timestamp,
    submitted_fields,
    validate_campaign,
)
from bulkmail.workflow import queued_record

MAX_CONTACTS_PER_REQUEST = 1_000
MAX_CSV_BYTES = 5 * 1024 * 1024  # under Lambda's 6 MB synchronous payload
CSV_COLUMNS = ("email", "first_name", "last_name", "company", "lists", "opted_in_at")
EDITABLE_FIELDS = ("campaign_name", "subject", "body", "body_html")
EDITABLE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.QUEUED, CampaignStatus.PROCESSING, CampaignStatus.PAUSED)
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_TRACE_STEPS = 500  # the latest laps; `path` summarises them all

app = APIGatewayRestResolver()
app.include_router(templates.router)
app.include_router(reports.router)  # GET /campaigns/{id}/report


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response[str]:
    return error_response(exc.status, exc.errors)


@app.exception_handler(CampaignInvalid)
def _campaign_invalid(exc: CampaignInvalid) -> Response[str]:
    return error_response(400, exc.errors)


@app.exception_handler(CampaignTooLarge)
def _campaign_too_large(exc: CampaignTooLarge) -> Response[str]:
    return error_response(413, exc.errors)


@app.exception_handler(CampaignNotFound)
def _campaign_not_found(exc: CampaignNotFound) -> Response[str]:
    return error_response(404, [{"field": "campaign_id", "message": str(exc)}])


@app.exception_handler(BadCursor)
def _bad_cursor(exc: BadCursor) -> Response[str]:
    return error_response(400, [{"field": "next_token", "message": "is not a token this API handed out"}])


@app.exception_handler(IdempotencyValidationError)
def _idempotency_mismatch(exc: IdempotencyValidationError) -> Response[str]:
    return error_response(
        422, [{"field": "Idempotency-Key", "message": "was already used with a different request body"}]
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _idempotency_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response[str]:
    return error_response(409, [{"field": "Idempotency-Key", "message": "the first request is still in progress"}])


@app.not_found
def _no_route(exc: Exception) -> Response[str]:
    return error_response(
        404, [{"field": "path", "message": f"no route {app.current_event.http_method} {app.current_event.path}"}]
    )


# --- request helpers ------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"environment variable {name} is required by the API function")
    return value


# --- contacts -------------------------------------------------------------------------------------
@app.post(
    "/contacts",
    summary="Add or update up to 1,000 contacts: all of them, or none (400 naming each one at fault)",
    tags=["contacts"],
    responses=responses(400, 413),
)
def post_contacts() -> dict[str, Any]:
    document = json_body(app.current_event, MAX_CSV_BYTES)
    contacts = document.get("contacts")
    if not isinstance(contacts, list):
        raise ApiError(400, "contacts", "is required and must be an array of contacts")
    if len(contacts) > MAX_CONTACTS_PER_REQUEST:
        raise ApiError(413, "contacts", f"{len(contacts)} contacts; at most {MAX_CONTACTS_PER_REQUEST} per request")
    items, rejected = normalise_contacts(contacts)
    if rejected:  # nothing is stored: the request is the unit
        raise ApiError(
            400,
            "contacts",
            "",
            errors=[
                {"field": f"contacts[{r['index']}].{r['field']}".replace(".$", ""), "message": r["error"]}
                for r in rejected
            ],
        )
    return {"imported": stores().contacts.put_many(items), "rejected": []}


def parse_csv(text: str) -> tuple[list[dict[str, Any]], list[int], dict[int, str]]:
    """Rows as contact documents, the line each started on (the header is line 1), and row problems."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # spreadsheets often start with a BOM
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "email" not in header:
        raise ApiError(400, "email", "the CSV header row must name an email column")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise ApiError(
            400,
            unknown[0] or "$",
            f"unknown CSV column(s) {', '.join(map(repr, unknown))} (known: {', '.join(CSV_COLUMNS)})",
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ApiError(400, repeated[0], f"the CSV header names column(s) {', '.join(repeated)} more than once")
    reader.fieldnames = header
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: dict[int, str] = {}
    line = reader.line_num + 1
    for row in reader:
        if row.pop(None, None):
            problems[len(rows)] = f"$: the row has more cells than the header's {len(header)}"
        doc: dict[str, Any] = {k: (v or "").strip() for k, v in row.items() if (v or "").strip()}
        if "lists" in doc:
            doc["lists"] = sorted({p.strip() for p in doc["lists"].split(";") if p.strip()})
        rows.append(doc)
        lines.append(line)
        line = reader.line_num + 1
    return rows, lines, problems


@app.post(
    "/contacts/import",
    summary="Import contacts from CSV (email, first_name, last_name, company, lists)",
    tags=["contacts"],
    responses=responses(400, 413, 415),
)
def import_contacts() -> dict[str, Any]:
    content_type = (app.current_event.headers.get("content-type", "") or "").lower()
    if content_type.split(";")[0].strip() not in ("text/csv", "application/csv"):
        raise ApiError(415, "Content-Type", f"must be text/csv, not {content_type or 'absent'!r}")
    text = raw_body(app.current_event, MAX_CSV_BYTES)
    try:
        rows, lines, problems = parse_csv(text)
    except csv.Error as exc:
        raise ApiError(400, "$", f"the CSV cannot be read: {exc}") from None
    well_formed = [i for i in range(len(rows)) if i not in problems]
    items, rejected = normalise_contacts(
        [rows[i] for i in well_formed], label=lambda index: f"line {lines[well_formed[index]]}"
    )
    report = [{"line": lines[i], "email": rows[i].get("email"), "field": "$", "error": problems[i]} for i in problems]
    report += [
        {"line": lines[well_formed[r["index"]]], "email": r["email"], "field": r["field"], "error": r["error"]}
        for r in rejected
    ]
    imported = stores().contacts.put_many(items)
    return {"imported": imported, "rejected": sorted(report, key=lambda r: r["line"])}


@app.get("/contacts/<email>", summary="One contact", tags=["contacts"], responses=responses(404))
def get_contact(email: str) -> dict[str, Any]:
    email = unquote(email).strip().lower()
    item = stores().contacts.get_item(email)
    if item is None:
        raise ApiError(404, "email", f"Contact {email} not found")
    return item


@app.delete(
    "/contacts/<email>",
    summary="Delete a contact (a suppressed address stays suppressed)",
    tags=["contacts"],
    status_code=204,
    responses=responses(404, ok=204),
)
def delete_contact(email: str) -> Response[str]:
    email = unquote(email).strip().lower()
    if not stores().contacts.delete(email, _now().isoformat(timespec="seconds")):
        raise ApiError(404, "email", f"Contact {email} not found")
    return Response(status_code=204, content_type="application/json", body="")


# --- campaigns ------------------------------------------------------------------------------------
def _execution_input(campaign: dict[str, Any]) -> dict[str, Any]:
    """What ValidateCampaign accepts again: the schema's fields (created_at and send_at are ours)."""
    return submitted_fields(campaign)


def _create_campaign(request: dict[str, Any]) -> dict[str, Any]:
    # A template is resolved here, once: the stored campaign keeps the content and its version.
    campaign = validate_campaign(apply_template(request["body"], template_store()), now=_now())
    campaign_id = campaign["campaign_id"]
    try:
        stores().campaigns.get(campaign_id)
    except CampaignNotFound:
        pass
    else:
        raise ApiError(409, "campaign_id", f"{campaign_id} already exists")
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
        "updated_at": _now().isoformat(timespec="milliseconds"),
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
    if app.lambda_context is not None:
        config.register_lambda_context(app.lambda_context)
    guarded = idempotent_function(
        data_keyword_argument="request", persistence_store=idempotency_layer(), config=config
    )(_create_campaign)
    result: dict[str, Any] = guarded(request={"key": key, "body": body})
    return result


@app.post(
    "/campaigns",
    summary="Start a campaign now, or schedule it with send_at (honours Idempotency-Key)",
    tags=["campaigns"],
    status_code=202,
    responses=responses(400, 409, 413, 422, ok=202),
)
def post_campaign() -> Response[str]:
    body = json_body(app.current_event)
    key = app.current_event.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key.strip()) <= 255:
        raise ApiError(400, "Idempotency-Key", "must be 1 to 255 characters")
    result = _idempotent_create(key.strip(), body) if key else _create_campaign({"body": body})
    return Response(status_code=202, content_type="application/json", body=json.dumps(result))


def _with_progress(record: dict[str, Any]) -> dict[str, Any]:
    total, done = record.get("total_contacts") or 0, record.get("processed_count") or 0
    record["progress"] = round(done / total, 4) if total else (1.0 if record.get("status") == "completed" else 0.0)
    record.pop("fanout_cursor", None)
    return record


@app.get(
    "/campaigns",
    summary="Campaigns, a page at a time (limit, next_token, status)",
    tags=["campaigns"],
    responses=responses(400),
)
def list_campaigns() -> dict[str, Any]:
    limit, cursor = page_args(app.current_event)
    status = app.current_event.get_query_string_value("status", None)
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


@app.get(
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


@app.patch(
    "/campaigns/<campaign_id>",
    summary="Edit name, subject or bodies until the campaign ends (reaches pending sends)",
    tags=["campaigns"],
    responses=responses(400, 404, 409, 413),
)
def patch_campaign(campaign_id: str) -> dict[str, Any]:
    changes = json_body(app.current_event)
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
    validate_campaign(merged, now=_now(), trusted=True)
    allowed = tuple(s.value for s in EDITABLE_STATUSES)
    if not control.update_if_status(
        stores().campaigns.table_name,
        campaign_id,
        {**changes, "updated_at": _now().isoformat(timespec="milliseconds")},
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


@app.post(
    "/campaigns/<campaign_id>/pause",
    summary="Pause a queued or processing campaign",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def pause_campaign(campaign_id: str) -> dict[str, Any]:
    return _operation(campaign_id, operations.pause)


@app.post(
    "/campaigns/<campaign_id>/resume",
    summary="Resume a paused campaign: exactly the recipients not yet sent are sent",
    tags=["campaigns"],
    responses=responses(404, 409),
)
def resume_campaign(campaign_id: str) -> dict[str, Any]:
    return _operation(campaign_id, operations.resume, ledger=stores().ledger, queue=stores().queue)


@app.post(
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


@app.post(
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
            now=_now(),
            trusted=True,
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


@app.get(
    "/campaigns/<campaign_id>/deliveries",
    summary="The delivery ledger, a page at a time (status=sent|failed|skipped)",
    tags=["campaigns"],
    responses=responses(400, 404),
)
def list_deliveries(campaign_id: str) -> dict[str, Any]:
    stores().campaigns.get(campaign_id)  # 404 for an unknown campaign
    limit, cursor = page_args(app.current_event)
    status = app.current_event.get_query_string_value("status", None)
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


@app.get(
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


MAX_TEST_RECIPIENTS = 10


@app.post(
    "/campaigns/test",
    summary="Send a test email of a campaign to a few addresses (counted nowhere)",
    tags=["campaigns"],
    responses=responses(400, 413, 502),
)
def test_send_campaign() -> dict[str, Any]:
    document = json_body(app.current_event)
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
    stamp = _now().strftime("%Y%m%d%H%M%S")
    campaign = validate_campaign(
        apply_template({**document, "campaign_id": f"test-{stamp}-{uuid.uuid4().hex[:6]}"}, template_store()),
        now=_now(),
    )
    campaign.update(track_opens=False, track_clicks=False)  # a test send counts in no report
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


@app.post(
    "/campaigns/preview",
    summary="Render a campaign for one contact: subject, text, html",
    tags=["campaigns"],
    responses=responses(400, 413),
)
def preview_campaign() -> dict[str, Any]:
    document = json_body(app.current_event)
    contact_doc = document.pop("contact", None)
    if contact_doc is None:
        raise ApiError(400, "contact", "is required: the contact to render the campaign for")
    document.pop("send_at", None)
    campaign = validate_campaign(apply_template(document, template_store()), now=_now())
    items, rejected = normalise_contacts([contact_doc])
    if rejected:
        raise ApiError(400, "contact", rejected[0]["error"])
    rendered = render(campaign, Contact.from_item(items[0]))
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}


# --- the OpenAPI document -------------------------------------------------------------------------
def openapi_document() -> dict[str, Any]:
    """The resolver's OpenAPI document, with the one campaign and contact schemas and IAM auth added."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="bulkmail management API",
            version="0.1.0",
            description="Contacts and campaigns. Every route is signed with SigV4 (IAM, service execute-api).",
        )
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("campaign", "contact"):
        schema = {k: v for k, v in load_schema(name).items() if k not in ("$schema", "$id")}
        schemas[name.capitalize()] = schema
    schemas["Campaign"]["properties"] = {
        k: v for k, v in schemas["Campaign"]["properties"].items() if k not in INTERNAL_FIELDS
    }  # bulkmail's own, refused from clients
    schemas["Errors"] = {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            }
        },
    }
    components["securitySchemes"] = {
        "sigv4": {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}
    }
    document["security"] = [{"sigv4": []}]
    json_body = {"application/json": {"schema": {"$ref": "#/components/schemas/Campaign"}}}
    paths = document["paths"]
    paths["/campaigns"]["post"]["requestBody"] = {"required": True, "content": json_body}
    for operation in (op for path in paths.values() for op in path.values()):
        operation["responses"].get("204", {}).pop("content", None)  # a 204 has no body, whatever the handler returns
    paths["/campaigns"]["post"]["parameters"] = [
        {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255}}
    ]
    paths["/contacts"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["contacts"],
                    "properties": {
                        "contacts": {
                            "type": "array",
                            "maxItems": MAX_CONTACTS_PER_REQUEST,
                            "items": {"$ref": "#/components/schemas/Contact"},
                        }
                    },
                }
            }
        },
    }
    paths["/contacts/import"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": f"header row: {', '.join(CSV_COLUMNS)}; lists separated by ';'",
                }
            }
        },
    }
    return document


if __name__ == "__main__":  # python -m bulkmail.api > docs/openapi.json
    print(json.dumps(openapi_document(), indent=2, sort_keys=True))
