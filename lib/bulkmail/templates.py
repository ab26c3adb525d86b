"""Stored templates: what a template may hold, and how a campaign that names one gets its content.

A campaign with `template_id` (and optionally `template_version`) takes the template's subject and
bodies, and any of them it gives itself overrides the template's. This happens once, when the
campaign is created: the campaign stores the content and the version it came from, so a later edit
of the template does not change a campaign already queued or scheduled.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Protocol

from bulkmail.errors import CampaignInvalid, TemplateNotFound
from bulkmail.rendering import template_problems
from bulkmail.validation import schema_errors

CONTENT = ("subject", "body_html", "body")


class Templates(Protocol):
    """Reads stored templates (adapters/templates.TemplateStore)."""

    def get(self, template_id: str, version: int | None = None) -> dict[str, Any]:
        """A version (the newest when None); raises TemplateNotFound."""
        ...


def validate_template(document: Any) -> dict[str, Any]:
    """The template as stored (its fields only), or CampaignInvalid naming every field at fault."""
    if not isinstance(document, dict):
        raise CampaignInvalid([{"field": "$", "message": "the template must be a JSON object"}])
    errors = schema_errors(document, "template")
    if not errors:
        errors = [
            {"field": field, "message": problem}
            for field in CONTENT
            if field in document
            for problem in template_problems(document[field])
        ]
    if errors:
        raise CampaignInvalid(errors)
    return {k: document[k] for k in ("template_id", "name", *CONTENT) if k in document}


def apply_template(document: dict[str, Any], templates: Templates) -> dict[str, Any]:
    """The campaign document with its template's content filled in (a document without
    `template_id` is returned as it is). The campaign's own subject or bodies win; a campaign that
    gives its own HTML but no text gets no text from the template (it would describe other HTML),
    so its text part is made from its HTML."""
    template_id = document.get("template_id")
    if template_id is None:
        if "template_version" in document:
            raise CampaignInvalid([{"field": "template_version", "message": "needs template_id"}])
        return document
    if not isinstance(template_id, str) or not template_id:
        raise CampaignInvalid([{"field": "template_id", "message": "must be a template's id (a string)"}])
    version = document.get("template_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise CampaignInvalid([{"field": "template_version", "message": "must be a version number (1, 2, ...)"}])
    try:
        template = templates.get(template_id, version)
    except TemplateNotFound as exc:
        raise CampaignInvalid(
            [{"field": "template_version" if version else "template_id", "message": str(exc)}]
        ) from None
    content = {k: template[k] for k in CONTENT if template.get(k)}
    if "body_html" in document and "body" not in document:
        content.pop("body", None)
    return {**content, **document, "template_version": int(template["version"])}


# --- the starter templates (package data: bulkmail/starters/) -----------------------------------
@cache
def starter_templates() -> tuple[dict[str, Any], ...]:
    """The starter templates shipped with bulkmail: newsletter, announcement, plain."""
    folder = resources.files("bulkmail.starters")
    index: list[dict[str, Any]] = json.loads(folder.joinpath("index.json").read_text())
    return tuple(
        {
            **entry,
            "body_html": folder.joinpath(f"{entry['template_id']}.html").read_text(),
            "body": folder.joinpath(f"{entry['template_id']}.txt").read_text(),
        }
        for entry in index
    )
