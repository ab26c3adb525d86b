"""Campaign validation: the one jsonschema file plus the rules a schema cannot say.

Used by ValidateCampaign (and later the API) so that every entry point rejects the same things
with the same messages. Errors name the field and the problem.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from jsonschema import Draft202012Validator, FormatChecker

from bulkmail.clock import SYSTEM_CLOCK
from bulkmail.errors import CampaignInvalid, CampaignTooLarge
from bulkmail.models import STATE_PAYLOAD_BYTES, Campaign, state_json
from bulkmail.rendering import TEMPLATE_FIELDS, template_problems

MAX_CONTENT_BYTES = 250_000  # subject + bodies; keeps the campaign item well under DynamoDB's 400 KB
CONTENT_FIELDS = ("subject", "body", "body_html")
# Set by bulkmail itself (a re-send's audience, a segment's), never taken from a client.
INTERNAL_FIELDS = {
    "resend_of": "is set by bulkmail (POST /campaigns/{id}/resend-failed), not by clients",
    "audience": "is set by bulkmail from the campaign's segment, not by clients",
}


def email_problem(value: Any) -> str | None:
    """Why `value` is not an address SES would send to (ASCII before the @: SES has no SMTPUTF8), or None."""
    if not isinstance(value, str):
        return "must be a string"
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return f"{value!r} is not a valid email address: {exc}"
    return None


def is_email(value: Any) -> bool:
    return email_problem(value) is None


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 date-time (lower-case 't' and 'z' included) as an aware datetime; None if it is not one."""
    try:
        when = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


@cache
def load_schema(name: str = "campaign") -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(resources.files("bulkmail.schema").joinpath(f"{name}.schema.json").read_text())
    return schema


def submitted_fields(record: Mapping[str, Any], *, leave_out: tuple[str, ...] = ()) -> Campaign:
    """A stored campaign as a user would submit it again: the schema's fields, without send_at (its
    time has passed once the campaign exists) and without `leave_out`; what we added stays behind."""
    fields = set(load_schema()["properties"]) - {"send_at", *leave_out}
    return cast(Campaign, {k: v for k, v in record.items() if k in fields})


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name), format_checker=FormatChecker())


_BOUNDS = {"maxLength": "characters", "minLength": "characters", "maxItems": "items", "minItems": "items"}


def _excerpt(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def schema_errors(document: Any, name: str = "campaign") -> list[dict[str, str]]:
    """Every schema violation as {"field", "message"}, in a stable order."""
    errors = []
    for err in sorted(_validator(name).iter_errors(document), key=lambda e: list(e.path)):
        field = ".".join(str(p) for p in err.path) or "$"
        if err.validator == "required":
            missing = err.message.split("'")[1]
            errors.append({"field": missing if field == "$" else f"{field}.{missing}", "message": "is required"})
        elif err.validator == "anyOf" and field == "$" and all("required" in alt for alt in err.validator_value):
            # {body} or {body_html}: name the first field, and the alternative
            names = [alt["required"][0] for alt in err.validator_value]
            errors.append({"field": names[0], "message": f"is required (or {', '.join(names[1:])})"})
        elif err.validator == "additionalProperties":
            for extra in sorted(set(err.instance) - set(err.schema.get("properties", {}))):
                errors.append({"field": extra, "message": "is not a known field"})
        elif err.validator == "not" and "description" in err.validator_value:
            errors.append({"field": field, "message": f"must not contain {err.validator_value['description']}"})
        elif err.validator == "type":
            errors.append({"field": field, "message": f"must be of type {err.validator_value}"})
        elif err.validator == "enum":
            allowed = ", ".join(repr(v) for v in err.validator_value)
            errors.append({"field": field, "message": f"must be one of {allowed}, not {_excerpt(err.instance)}"})
        elif err.validator in _BOUNDS:
            size, unit = len(err.instance), _BOUNDS[err.validator]
            errors.append(
                {
                    "field": field,
                    "message": f"is too {'long' if err.validator.startswith('max') else 'short'}: {size} {unit}; "
                    f"at {'most' if err.validator.startswith('max') else 'least'} {err.validator_value}",
                }
            )
        else:  # jsonschema quotes the value: never echo a large one back
            errors.append(
                {
                    "field": field,
                    "message": err.message
                    if len(err.message) <= 300
                    else f"{_excerpt(err.instance)} does not satisfy {err.validator} {_excerpt(err.validator_value)}",
                }
            )
    return errors


def validate_campaign(
    document: Any,
    *,
    now: datetime | None = None,
    trusted: bool = False,
    custom_fields: Iterable[str] | None = (),
) -> Campaign:
    """Return the campaign normalised (defaults filled, id generated) or raise CampaignInvalid
    (CampaignTooLarge when it is too large to store or to carry through the workflow).

    `trusted`: the input comes from bulkmail itself (the workflow), which may set INTERNAL_FIELDS.
    `custom_fields`: the contacts' custom fields in use, which templates may name; None: any name
    (the workflow's check of what the API already checked)."""
    if not isinstance(document, dict):
        raise CampaignInvalid([{"field": "$", "message": "the campaign must be a JSON object"}])
    errors = schema_errors(document)
    if not trusted:
        errors += [{"field": f, "message": message} for f, message in INTERNAL_FIELDS.items() if f in document]
    if errors:
        raise CampaignInvalid(errors)

    campaign = dict(document)
    fields = None if custom_fields is None else frozenset(custom_fields)
    campaign.setdefault("email_service", "ses")
    campaign.setdefault("smtp_port", load_schema()["properties"]["smtp_port"]["default"])
    now = now or SYSTEM_CLOCK.now()

    for field in ("from_email", "reply_to"):
        problem = email_problem(campaign[field]) if campaign.get(field) else None
        if problem:
            errors.append({"field": field, "message": problem})
    for field in CONTENT_FIELDS:
        if field in campaign:
            errors.extend(
                {"field": field, "message": problem} for problem in template_problems(campaign[field], fields)
            )
    if campaign["email_service"] == "smtp":
        if not campaign.get("smtp_server"):
            errors.append({"field": "smtp_server", "message": "is required when email_service is 'smtp'"})
        if not campaign.get("aws_secret_name"):
            errors.append(
                {
                    "field": "aws_secret_name",
                    "message": "No AWS secret name configured in campaign: SMTP needs a login secret",
                }
            )
    if "send_at" in campaign:
        when = parse_timestamp(campaign["send_at"])
        if when is None:
            errors.append(
                {
                    "field": "send_at",
                    "message": "must be an RFC 3339 date-time with a UTC offset, e.g. 2026-12-01T09:00:00+01:00",
                }
            )
        elif when <= now:
            errors.append({"field": "send_at", "message": f"{campaign['send_at']} is in the past"})
    if errors:
        raise CampaignInvalid(errors)

    campaign.setdefault("campaign_id", f"campaign_{now.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:8]}")
    campaign.setdefault("created_at", now.isoformat(timespec="seconds"))
    too_large = size_problems(campaign)
    if too_large:
        raise CampaignTooLarge(too_large)
    return cast(Campaign, campaign)  # every field's type is the schema's


def size_problems(campaign: dict[str, Any]) -> list[dict[str, str]]:
    """The campaign against what stores and carries it: its content in the campaign item, and the
    state ValidateCampaign hands the workflow ({"campaign": ...}), counted as Step Functions counts it
    (UTF-8 bytes of the JSON sent; the execution input is a part of it)."""
    largest = max((f for f in CONTENT_FIELDS if f in campaign), key=lambda f: len(campaign[f].encode()))
    problems = []
    content = sum(len(campaign.get(f, "").encode()) for f in CONTENT_FIELDS)
    if content > MAX_CONTENT_BYTES:
        problems.append(
            {
                "field": largest,
                "message": f"subject and bodies are {content} bytes (UTF-8); the limit is {MAX_CONTENT_BYTES}",
            }
        )
    state = len(state_json({"campaign": campaign}).encode())
    if state > STATE_PAYLOAD_BYTES:
        problems.append(
            {
                "field": largest,
                "message": f"the campaign is {state} bytes as the workflow carries it "
                f"(UTF-8 JSON); Step Functions' limit is {STATE_PAYLOAD_BYTES}",
            }
        )
    return problems


__all__ = [
    "TEMPLATE_FIELDS",
    "email_problem",
    "is_email",
    "load_schema",
    "parse_timestamp",
    "schema_errors",
    "validate_campaign",
]
