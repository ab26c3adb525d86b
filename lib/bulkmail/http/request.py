"""What every HTTP route shares: the request body read safely, paging arguments, and the OpenAPI
description of the error shape. Routes live in one module per resource, each a Powertools `Router`
included by the app in `bulkmail.api`; a route raises `ApiError` (or a domain error from
`bulkmail.errors`) and the app turns it into `{"errors": [{"field", "message"}]}`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from bulkmail.adapters.dynamo import decode_cursor
from bulkmail.errors import ApiError as ApiError  # routes raise it from here

MAX_JSON_BYTES = (
    2 * 1024 * 1024
)  # content is capped at 250 KB of UTF-8; sent as \u escapes (6 bytes a character) up to 1.5 MB
DEFAULT_PAGE = 50
MAX_PAGE = 500

_ERROR_TEXT = {
    400: "Bad input: every problem, each naming its field",
    404: "Unknown campaign, contact or route",
    409: "The campaign's state does not allow it, or the id exists",
    413: "Too large (request body, more than 1,000 contacts, or a campaign over what its item or Step Functions "
    "carries)",
    415: "Not text/csv",
    422: "Idempotency-Key reused with a different body; or a list nobody was imported into, or no subscribed contact "
    "to send to",
    502: "The email service refused the send",
}


def responses(*codes: int, ok: int = 200) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses: the success code, and each error code with {"errors": [{"field", "message"}]}."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}
    success: dict[int, Any] = {ok: {"description": {200: "OK", 201: "Created", 202: "Accepted", 204: "Deleted"}[ok]}}
    if ok != 204:
        success[ok]["content"] = {"application/json": {"schema": {"type": "object"}}}
    return {**success, **{code: {"description": _ERROR_TEXT[code], "content": body} for code in codes}}


def json_response(status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(document), headers=headers)


def error_response(status: int, errors: list[dict[str, str]], headers: dict[str, str] | None = None) -> Response[str]:
    return json_response(status, {"errors": errors}, headers)


def no_content() -> Response[str]:
    """204: done, nothing to say (a delete)."""
    return Response(status_code=204, content_type="application/json", body="")


def csv_download(text: str, filename: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=text,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def path_email(raw: str) -> str:
    """A contact's address from the URL path, as it is stored."""
    return unquote(raw).strip().lower()


# Byte-order marks say the encoding (UTF-32's before UTF-16's: they begin alike).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _charset(event: BaseProxyEvent) -> str | None:
    content_type = event.headers.get("content-type", "") or ""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def raw_body(event: BaseProxyEvent, limit: int) -> str:
    """The request body as text: UTF-8, unless a byte-order mark or the Content-Type's charset says
    otherwise; bytes that are not text in that encoding are a 400, not a guess."""
    try:
        raw = (
            base64.b64decode(event.body or "", validate=True)
            if event.is_base64_encoded
            else (event.body or "").encode("utf-8", "surrogatepass")
        )
    except binascii.Error:
        raise ApiError(400, "$", "the body is marked base64 but is not") from None
    if len(raw) > limit:
        raise ApiError(413, "$", f"the request body is {len(raw)} bytes; the limit is {limit}")
    encoding = next((codec for bom, codec in _BOMS if raw.startswith(bom)), None) or _charset(event) or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ApiError(400, "Content-Type", f"unknown charset {encoding!r}") from None
    hint = "send UTF-8, or name the encoding in Content-Type (e.g. text/csv; charset=windows-1252)"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, "$", f"the body is not {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start}; {hint}"
        ) from None
    if "\x00" in text:  # UTF-16 without a byte-order mark reads as UTF-8 full of NULs
        raise ApiError(400, "$", f"the body holds NUL characters (UTF-16 without a byte-order mark?); {hint}")
    return text


def json_body(event: BaseProxyEvent, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    body = raw_body(event, limit)
    if not body.strip():
        raise ApiError(400, "$", "a JSON object body is required")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "$", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ApiError(400, "$", "the body must be a JSON object")
    return document


def page_args(event: BaseProxyEvent) -> tuple[int, dict[str, Any] | None]:
    raw = event.get_query_string_value("limit", str(DEFAULT_PAGE))
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "limit", f"must be an integer, not {raw!r}") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, "limit", f"must be between 1 and {MAX_PAGE}")
    return limit, decode_cursor(event.get_query_string_value("next_token", None))
