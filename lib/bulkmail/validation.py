"""Campaign validation: the one jsonschema file plus the rules a schema cannot say.

Used by ValidateCampaign (and later the API) so that every entry point rejects the same things
with the same messages. Errors name the field and the problem.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from bulkmail.errors import CampaignInvalid
from bulkmail.rendering import TEMPLATE_FIELDS, template_problems

# Deliberately plain: one @, a dot in the domain, no spaces or angle brackets. SES has the last word.
_EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
MAX_CONTENT_BYTES = 250_000  # subject + bodies; keeps the campaign item well under DynamoDB's 400 KB


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


@lru_cache(maxsize=None)
def load_schema(name: str = "campaign") -> dict[str, Any]:
    return json.loads(resources.files("bulkmail.schema").joinpath(f"{name}.schema.json").read_text())


def submitted_fields(record: dict[str, Any], *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stored campaign as a user would submit it again: the schema's fields, without send_at (its
    time has passed once the campaign exists) and without `leave_out`; what we added stays behind."""
    fields = set(load_schema()["properties"]) - {"send_at", *leave_out}
    return {k: v for k, v in record.items() if k in fields}


@lru_cache(maxsize=None)
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name), format_checker=FormatChecker())


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
        elif err.validator == "pattern" and field in ("subject", "from_email", "from_name", "reply_to"):
            errors.append({"field": field, "message": "must not contain CR or LF characters"})
        elif err.validator == "type":
            errors.append({"field": field, "message": f"must be of type {err.validator_value}"})
        elif err.validator == "enum":
            allowed = ", ".join(repr(v) for v in err.validator_value)
            errors.append({"field": field, "message": f"must be one of {allowed}, not {err.instance!r}"})
        else:
            errors.append({"field": field, "message": err.message})
    return errors


def validate_campaign(document: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Return the campaign normalised (defaults filled, id generated) or raise CampaignInvalid."""
    if not isinstance(document, dict):
        raise CampaignInvalid([{"field": "$", "message": "the campaign must be a JSON object"}])
    errors = schema_errors(document)
    if errors:
        raise CampaignInvalid(errors)

    campaign = dict(document)
    campaign.setdefault("email_service", "ses")
    campaign.setdefault("smtp_port", load_schema()["properties"]["smtp_port"]["default"])
    now = now or datetime.now(timezone.utc)

    for field in ("from_email", "reply_to"):
        if campaign.get(field) and not is_email(campaign[field]):
            errors.append({"field": field, "message": f"{campaign[field]!r} is not a valid email address"})
    for field in ("subject", "body", "body_html"):
        if field in campaign:
            errors.extend({"field": field, "message": problem} for problem in template_problems(campaign[field]))
    size = sum(len(campaign.get(f, "").encode()) for f in ("subject", "body", "body_html"))
    if size > MAX_CONTENT_BYTES:
        errors.append({"field": "body", "message": f"subject and bodies are {size} bytes; the limit is {MAX_CONTENT_BYTES}"})
    if campaign["email_service"] == "smtp":
        if not campaign.get("smtp_server"):
            errors.append({"field": "smtp_server", "message": "is required when email_service is 'smtp'"})
        if not campaign.get("aws_secret_name"):
            errors.append({"field": "aws_secret_name",
                           "message": "No AWS secret name configured in campaign: SMTP needs a login secret"})
    if "send_at" in campaign:
        when = datetime.fromisoformat(campaign["send_at"].replace("Z", "+00:00"))
        if when.tzinfo is None:
            errors.append({"field": "send_at", "message": "must carry a UTC offset, e.g. 2026-12-01T09:00:00+01:00"})
        elif when <= now:
            errors.append({"field": "send_at", "message": f"{campaign['send_at']} is in the past"})
    if errors:
        raise CampaignInvalid(errors)

    campaign.setdefault("campaign_id", f"campaign_{now.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:8]}")
    campaign.setdefault("created_at", now.isoformat(timespec="seconds"))
    return campaign


__all__ = ["validate_campaign", "schema_errors", "load_schema", "is_email", "TEMPLATE_FIELDS"]
