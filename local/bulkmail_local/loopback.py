"""Who may drive a server on loopback: its own page and the programs of this machine, not other sites.

One set of rules for every local server bulkmail starts — `bulkmail serve`'s API and dashboard, its AWS
endpoint (moto's server, which itself answers any Origin with CORS allowed) and the `bulkmail dashboard`
proxy, which signs what it forwards with the user's own AWS credentials:

- the Host must be this server's loopback address: a foreign name resolved to 127.0.0.1 is DNS rebinding;
- an Origin, when a browser sends one (every POST, every CORS request), must be the server's own;
- a request a browser marks as coming from another site (Sec-Fetch-Site) is refused, except a plain
  navigation to a page (a link to the dashboard, an unsubscribe link opened from webmail);
- a state-changing API request must carry a body type a page on another origin cannot send without a
  CORS preflight (which these servers never grant): JSON or CSV, even when the body is empty.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol, cast

from moto.server import ThreadedMotoServer

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_CONTENT_TYPES = frozenset({"application/json", "text/csv", "application/csv"})


@dataclass(frozen=True)
class Refusal:
    status: int
    field: str
    message: str

    def body(self) -> bytes:
        return json.dumps({"errors": [{"field": self.field, "message": self.message}]}).encode()


class Headers(Protocol):
    """A request's headers: a Mapping (WSGI, tests) or http.server's email.message.Message."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def _lower(headers: Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def foreign(method: str, headers: Headers, port: int) -> Refusal | None:
    """A 403 for a request that is not from this server's own page or a local program, else None."""
    h = _lower(headers)
    host = h.get("host", "")
    own = {f"127.0.0.1:{port}", f"localhost:{port}"} | ({"127.0.0.1", "localhost"} if port == 80 else set())
    if host not in own:
        return Refusal(403, "Host", f"{host!r} is not this server's address (http://127.0.0.1:{port})")
    origin = h.get("origin")
    if origin is not None and origin != f"http://{host}":
        return Refusal(403, "Origin", f"{origin} is another site: only this server's own page may call it")
    site = h.get("sec-fetch-site")
    navigation = h.get("sec-fetch-mode") == "navigate" and method in ("GET", "HEAD")
    if site not in (None, "same-origin", "none") and not navigation:
        return Refusal(403, "Sec-Fetch-Site", f"a {site} request: only this server's own page may call it")
    return None


def needs_api_body_type(method: str, headers: Headers) -> Refusal | None:
    """A 415 for a state-changing request whose Content-Type a cross-origin page could send unchecked
    (text/plain, forms) or that has none: the dashboard and the CLI send application/json (or text/csv)."""
    if method not in STATE_CHANGING:
        return None
    content_type = _lower(headers).get("content-type", "").split(";")[0].strip().lower()
    if content_type in API_CONTENT_TYPES:
        return None
    return Refusal(
        415,
        "Content-Type",
        f"a {method} must be sent as application/json (or text/csv for an import), "
        f"not {content_type or 'without a Content-Type'}",
    )


def body_length(headers: Headers, limit: int) -> int | Refusal:
    """The Content-Length to read, or the refusal of a length that is missing-but-needed, negative,
    not a number, chunked (never read here, so it would be taken for the next request) or over `limit`."""
    h = _lower(headers)
    if "transfer-encoding" in h:
        return Refusal(411, "Transfer-Encoding", "chunked bodies are not accepted: send a Content-Length")
    raw = h.get("content-length")
    if raw is None or raw.strip() == "":
        return 0
    if not raw.strip().isdigit():
        return Refusal(400, "Content-Length", f"must be a whole number of bytes, not {raw!r}")
    length = int(raw)
    if length > limit:
        return Refusal(413, "$", f"the request body is {length} bytes; the limit is {limit}")
    return length


def guarded_wsgi(app: Callable[..., Any], port: Callable[[], int]) -> Callable[..., Any]:
    """`app` behind `foreign`: what the AWS endpoint answers to a browser page of another site is a 403."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]):
        headers = {key[5:].replace("_", "-"): value for key, value in environ.items() if key.startswith("HTTP_")}
        refused = foreign(environ.get("REQUEST_METHOD", ""), headers, port())
        if refused is None:
            return app(environ, start_response)
        body = refused.body()
        start_response(
            f"{refused.status} Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return guarded


# Headers that describe one hop (this connection), never copied onto another.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class LoopbackRequestHandler(BaseHTTPRequestHandler):
    """What `bulkmail serve` and the `bulkmail dashboard` proxy answer alike: a refusal closes the
    connection (its body is left unread), replies carry no hop-by-hop header of another connection,
    and requests are logged to `logger_name`, not to stderr. Subclasses define `_serve`."""

    protocol_version = "HTTP/1.1"
    logger_name = "bulkmail"

    def _serve(self) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    @property
    def port(self) -> int:
        return cast(HTTPServer, self.server).server_port

    def _refuse(self, refusal: Refusal) -> None:
        self.close_connection = True  # the body, if any, is left unread
        self._reply(refusal.status, {"Content-Type": "application/json"}, refusal.body())

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger(self.logger_name).info("%s - %s", self.address_string(), format % args)


class LoopbackMotoServer(ThreadedMotoServer):
    """moto's threaded server with its WSGI app behind `foreign` (moto's own CORS allows every Origin)."""

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = guarded_wsgi(DomainDispatcherApplication(create_backend_app), lambda: self.get_host_and_port()[1])
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler, fd=self._listening.fileno()
        )
        self._listening.close()  # the server holds its own copy
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        # Bound here, so that a port in use is an OSError for the caller; inside moto's thread werkzeug
        # would print and exit that thread, and start() would wait for ever.
        self._listening = socket.create_server((self._ip_address, self._port))
        super().start()
