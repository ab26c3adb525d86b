"""A small client for the management API: `bulkmail serve` on loopback, or a deployed stack (SigV4)."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_API_URL = "http://127.0.0.1:8000"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class ApiFailure(Exception):
    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        errors = body.get("errors") if isinstance(body, dict) else None
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) if errors else json.dumps(body)
        super().__init__(f"HTTP {status}: {detail}")


class CredentialsMissing(RuntimeError):
    """A deployed API needs SigV4 and no AWS credentials were found."""


class ApiUnreachable(OSError):
    """No answer from the API: the message names the URL tried."""

    def __init__(self, url: str, reason: object):
        self.url = url
        super().__init__(f"cannot reach the API at {url}: {reason}")


def sigv4_headers(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus SigV4 (service execute-api) with the user's own AWS credentials.

    The region is the API's own (from its execute-api host name), else the session's.
    """
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise CredentialsMissing(
            f"no AWS credentials to sign the request to {url} (the API takes IAM auth): "
            "run `aws configure` or set AWS_PROFILE"
        )
    host = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    region = host.group(1) if host else session.region_name or "us-east-1"
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


@dataclass
class ApiClient:
    base_url: str = os.environ.get("BULKMAIL_API_URL", DEFAULT_API_URL)
    timeout: float = 30.0
    sign: bool | None = None  # None: sign unless the API is on loopback (`bulkmail serve` takes no auth)

    def _signed_headers(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        sign = self.sign if self.sign is not None else urlsplit(url).hostname not in _LOOPBACK
        return sigv4_headers(method, url, body, headers) if sign else headers

    def send(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request as it is: (status, headers, body), whatever the status."""
        url = self.base_url.rstrip("/") + path
        signed = self._signed_headers(method, url, body, dict(headers or {}))
        req = urllib.request.Request(url, data=body, method=method, headers=signed)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()
        except urllib.error.URLError as exc:
            raise ApiUnreachable(url, exc.reason) from None
        except (OSError, ValueError) as exc:  # a reset, a timeout, or an --api-url that is not a URL
            raise ApiUnreachable(url, exc) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
        if json_body is not None or (method != "GET" and "Content-Type" not in headers):
            headers["Content-Type"] = "application/json"  # even with no body: what a page of another site cannot send
        status, _, raw = self.send(method, path, body, headers)
        if status >= 400:
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiFailure(status, parsed)
        return json.loads(raw) if raw else None


def stack_api_url(stack: str, cloudformation=None) -> str:
    """The `ApiUrl` output of a deployed stack."""
    import boto3

    cfn = cloudformation or boto3.client("cloudformation")
    outputs = {
        o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    }
    if "ApiUrl" not in outputs:
        raise RuntimeError(f"stack {stack} has no ApiUrl output (outputs: {', '.join(sorted(outputs)) or 'none'})")
    return outputs["ApiUrl"]
