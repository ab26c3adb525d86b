"""Routes of stored templates: each POST or PUT stores a new version; versions never change.

POST /templates                        a new template (version 1); 409 if the id exists
PUT  /templates/{template_id}          its next version; 404 if there is none yet
GET  /templates                        the newest version of each (summaries)
GET  /templates/{template_id}          the newest version (or ?version=N) and every version's summary
POST /templates/{template_id}/preview  rendered for a contact: subject, text, html
GET  /starter-templates                the starter templates bulkmail ships (newsletter, announcement, plain)
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail.adapters.wiring import template_store
from bulkmail.clock import now_iso
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import TemplateBusy, TemplateExists, TemplateNotFound
from bulkmail.http.request import ApiError, json_body, json_response, responses
from bulkmail.models import Contact
from bulkmail.rendering import render
from bulkmail.templates import CONTENT, starter_templates, validate_template

router = Router()


def _version_arg(raw: str | None, field: str = "version") -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, field, "must be a version number (1, 2, ...)")
    return int(raw)


# The schema's template ids: anything else is not stored (and is not sent to DynamoDB, whose key limits
# would answer a long one with an error).
_TEMPLATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _get(template_id: str, version: int | None) -> dict[str, Any]:
    if not _TEMPLATE_ID.fullmatch(template_id):
        raise ApiError(404, "template_id", f"template {template_id[:64]!r} not found")
    try:
        return template_store().get(template_id, version)
    except TemplateNotFound as exc:
        raise ApiError(404, "version" if version else "template_id", str(exc)) from None


def _store(document: dict[str, Any], *, new: bool) -> dict[str, Any]:
    template = validate_template(document)  # CampaignInvalid: the app's 400 naming each field
    try:
        return template_store().add_version(template, now_iso(), new=new)
    except TemplateExists as exc:
        raise ApiError(409, "template_id", str(exc)) from None
    except TemplateNotFound as exc:
        raise ApiError(404, "template_id", f"{exc}: POST /templates creates it") from None
    except TemplateBusy as exc:
        raise ApiError(409, "template_id", str(exc)) from None


@router.post(
    "/templates",
    summary="Store a new template (version 1): template_id, subject, body_html, body (optional), name",
    tags=["templates"],
    status_code=201,
    responses=responses(400, 409, 413, ok=201),
)
def post_template() -> Response[str]:
    item = _store(json_body(router.current_event), new=True)
    return json_response(201, item)


@router.put(
    "/templates/<template_id>",
    summary="Store the template's next version (a campaign created earlier keeps the version it took)",
    tags=["templates"],
    responses=responses(400, 404, 409, 413),
)
def put_template(template_id: str) -> dict[str, Any]:
    document = json_body(router.current_event)
    if document.get("template_id", template_id) != template_id:
        raise ApiError(400, "template_id", f"must be {template_id!r}, the template in the path (or absent)")
    return _store({**document, "template_id": template_id}, new=False)


@router.get(
    "/templates",
    summary="The newest version of every template (without bodies)",
    tags=["templates"],
    responses=responses(),
)
def list_templates() -> dict[str, Any]:
    return {"templates": template_store().latest_summaries()}


@router.get(
    "/templates/<template_id>",
    summary="A template: its newest version (or ?version=N) and the summary of every version",
    tags=["templates"],
    responses=responses(400, 404),
)
def get_template(template_id: str) -> dict[str, Any]:
    version = _version_arg(router.current_event.get_query_string_value("version", None))
    item = _get(template_id, version)
    return {**item, "versions": template_store().versions(template_id)}


@router.post(
    "/templates/<template_id>/preview",
    summary="Render a template (newest, or version) for a contact: subject, text, html",
    tags=["templates"],
    responses=responses(400, 404, 413),
)
def preview_template(template_id: str) -> dict[str, Any]:
    document = json_body(router.current_event)
    contact_doc = document.get("contact")
    if not isinstance(contact_doc, dict):
        raise ApiError(400, "contact", "is required: the contact to render the template for")
    raw_version = document.get("version")
    if raw_version is not None and (not isinstance(raw_version, int) or isinstance(raw_version, bool)):
        raise ApiError(400, "version", "must be a version number (1, 2, ...)")
    template = _get(template_id, _version_arg(None if raw_version is None else str(raw_version)))
    items, rejected = normalise_contacts([contact_doc])
    if rejected:
        raise ApiError(400, f"contact.{rejected[0]['field']}".rstrip(".$"), rejected[0]["error"])
    campaign = {
        "campaign_id": "preview",
        "campaign_name": str(document.get("campaign_name") or template.get("name") or template_id),
        **{k: template[k] for k in CONTENT if template.get(k)},
    }
    rendered = render(campaign, Contact.from_item(items[0]))
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html, "version": template["version"]}


@router.get(
    "/starter-templates",
    summary="The starter templates bulkmail ships: newsletter, announcement, plain (subject and bodies)",
    tags=["templates"],
    responses=responses(),
)
def list_starter_templates() -> dict[str, Any]:
    return {"templates": list(starter_templates())}
