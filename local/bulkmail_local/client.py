"""A small client for the management API: `bulkmail serve` on loopback, or a deployed stack (SigV4)."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_API_URL = "http://127.0.0.1:8000"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ApiFailure(Exception):
    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        errors = body.get("errors") if isinstance(body, dict) else None
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) if errors else json.dumps(body)
        super().__init__(f"HTTP {status}: {detail}")


@dataclass
class ApiClient:
    base_url: str = os.environ.get("BULKMAIL_API_URL", DEFAULT_API_URL)
    timeout: float = 30.0

    def _signed_headers(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        """SigV4 (service execute-api) with the user's own credentials, for a deployed stack."""
        if urlsplit(url).hostname in _LOOPBACK:
            return headers
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials found to sign the request (IAM auth)")
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", session.region_name or "us-east-1").add_auth(request)
        return dict(request.headers.items())

    def request(self, method: str, path: str, *, json_body: Any = None, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        url = self.base_url.rstrip("/") + path
        headers = self._signed_headers(method, url, body, headers)
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiFailure(exc.code, parsed) from None
        return json.loads(raw) if raw else None
