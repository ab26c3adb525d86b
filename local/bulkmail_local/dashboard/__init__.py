"""The web dashboard: static pages that call the management API from the same origin.

`bulkmail serve` serves them beside the local API; `bulkmail dashboard --stack NAME` serves them on
loopback and forwards every other request to a deployed stack's API, signed with the user's own AWS
credentials (SigV4) — so there is no public web app and nothing new to secure.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from bulkmail_local.client import ApiClient
from bulkmail_local.loopback import LoopbackRequestHandler, Refusal, body_length, foreign, needs_api_body_type

STATIC = Path(__file__).parent / "static"
ASSET_PREFIX = "/dashboard/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Same-origin only; email previews render in a sandboxed iframe, whose inline styles are the email's own.
_SECURITY = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# What a browser's request carries on to the API: nothing else (no cookies, no origin of a loopback page).
_FORWARDED = {"content-type", "idempotency-key", "accept"}
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


def static_file(method: str, target: str) -> tuple[int, dict[str, str], bytes] | None:
    """The dashboard's answer for `target`, or None when the request is for the API."""
    if method not in ("GET", "HEAD"):
        return None
    route = urlsplit(target).path
    if route in ("/", "/index.html"):
        name = "index.html"
    elif route == "/favicon.ico":  # asked for by browsers whatever the page names
        name = "favicon.svg"
    elif route.startswith(ASSET_PREFIX):
        name = route[len(ASSET_PREFIX) :]
    else:
        return None
    if name not in {p.name for p in STATIC.iterdir()}:  # only the files shipped: no path tricks
        return (
            404,
            {"Content-Type": "application/json"},
            json.dumps({"errors": [{"field": "path", "message": f"no dashboard file {name}"}]}).encode(),
        )
    file = STATIC / name
    return 200, {"Content-Type": _TYPES.get(file.suffix, "application/octet-stream"), **_SECURITY}, file.read_bytes()


def _proxy_handler(api: ApiClient) -> type[BaseHTTPRequestHandler]:
    class DashboardProxyHandler(LoopbackRequestHandler):
        server_version = "bulkmail-dashboard"
        logger_name = "bulkmail.dashboard"

        def _serve(self) -> None:
            length = body_length(self.headers, MAX_REQUEST_BYTES)
            if isinstance(length, Refusal):  # not signed, not sent
                return self._refuse(length)
            refused = foreign(self.command, self.headers, self.port)
            if refused is not None:
                return self._refuse(refused)
            body = self.rfile.read(length) if length else None
            static = static_file(self.command, self.path)
            if static is not None:
                return self._reply(*static)
            refused = needs_api_body_type(self.command, self.headers)
            if refused is not None:
                return self._refuse(refused)
            headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARDED}
            try:
                status, answer_headers, answer = api.send(self.command, self.path, body, headers)
            except OSError as exc:
                status, answer_headers = 502, {"Content-Type": "application/json"}
                answer = json.dumps({"errors": [{"field": "$", "message": f"cannot reach the API: {exc}"}]}).encode()
            self._reply(status, answer_headers, answer)

    return DashboardProxyHandler


class DashboardProxy:
    """`with DashboardProxy(api_url) as proxy:` serves the dashboard on `proxy.url`, every API call signed."""

    def __init__(self, api_url: str, *, port: int = 8080, host: str = "127.0.0.1"):
        self.api = ApiClient(base_url=api_url, sign=True)
        self._http = ThreadingHTTPServer((host, port), _proxy_handler(self.api))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="bulkmail-dashboard", daemon=True)

    def __enter__(self) -> DashboardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.shutdown()
        self._thread.join(timeout=10)
        self._http.server_close()

    @property
    def url(self) -> str:
        host, port = cast(tuple[str, int], self._http.server_address[:2])
        return f"http://{host}:{port}"
