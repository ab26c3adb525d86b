"""The management API: one Powertools REST resolver, the errors it answers with, and its OpenAPI document.

The routes live in one module per resource under `bulkmail.http` (each a Powertools `Router`); this
module includes them. Every rejection is a JSON body `{"errors": [{"field", "message"}]}` with 400 (bad
input), 404 (unknown id), 409 (state does not allow it), 413 (too large) or 415 (wrong media type); a
rejected request stores nothing.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from bulkmail.contact_import import CSV_COLUMNS
from bulkmail.errors import (
    BadCursor,
    CampaignExists,
    CampaignInvalid,
    CampaignNotFound,
    CampaignTooLarge,
    InputInvalid,
    InvalidTransition,
    NoAudience,
)
from bulkmail.http import campaigns, contact_data, contacts, lists, segments
from bulkmail.http.contacts import MAX_CONTACTS_PER_REQUEST
from bulkmail.http.request import ApiError, error_response
from bulkmail.validation import INTERNAL_FIELDS, load_schema

app = APIGatewayRestResolver()


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


@app.exception_handler(CampaignExists)
def _campaign_exists(exc: CampaignExists) -> Response[str]:
    return error_response(409, [{"field": "campaign_id", "message": str(exc)}])


@app.exception_handler(InvalidTransition)
def _invalid_transition(exc: InvalidTransition) -> Response[str]:
    return error_response(409, [{"field": "status", "message": str(exc)}])


@app.exception_handler(NoAudience)
def _no_audience(exc: NoAudience) -> Response[str]:
    return error_response(422, exc.errors)


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


app.include_router(contacts.router)
app.include_router(campaigns.router)
# ---- audience (issue 15) ----
app.include_router(lists.router)
app.include_router(segments.router)
app.include_router(contact_data.router)


@app.exception_handler(InputInvalid)
def _input_invalid(exc: InputInvalid) -> Response[str]:
    return error_response(exc.status, exc.errors)


# ---- end audience ----


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
