"""API Gateway's part, emulated: an HTTP request as a REST API proxy event, the response back out.

Used by `bulkmail serve` (real HTTP on loopback) and by tests that call the API function directly.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bulkmail_local.runtime.lambdas import LocalFunction

STAGE = "v1"


def proxy_event(
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    account: str = "123456789012",
) -> dict[str, Any]:
    """The REST API (v1) Lambda proxy event for one request; `target` is path plus query string."""
    split = urlsplit(target)
    path = unquote(split.path) or "/"
    if path.startswith(f"/{STAGE}/"):
        path = path[len(STAGE) + 1 :]
    query = parse_qs(split.query, keep_blank_values=True)
    headers = dict(headers or {})
    raw = body.encode() if isinstance(body, str) else (body or b"")
    try:
        text, is_b64 = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(raw).decode(), True
    return {
        "resource": path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method.upper(),
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "accountId": account,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userArn": f"arn:aws:iam::{account}:user/local"},
        },
        "body": text if raw else None,
        "isBase64Encoded": is_b64,
    }


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def response_from(result: dict[str, Any]) -> ApiResponse:
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return ApiResponse(int(result["statusCode"]), headers, raw)


class ApiGateway:
    """Calls the API function as API Gateway's proxy integration would."""

    def __init__(self, function: LocalFunction):
        self.function = function

    def request(
        self,
        method: str,
        target: str,
        *,
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        try:
            result = self.function.invoke(proxy_event(method, target, headers, body))
        except Exception as exc:  # noqa: BLE001 — an unhandled function error: API Gateway answers 502
            return ApiResponse(
                502,
                {"Content-Type": "application/json"},
                json.dumps({"message": "Internal server error", "error": type(exc).__name__}).encode(),
            )
        return response_from(result)
