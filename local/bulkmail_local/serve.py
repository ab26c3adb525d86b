"""`bulkmail serve`: the embedded runtime as a long-running local stack on 127.0.0.1.

- the dashboard at / (bulkmail_local.dashboard), calling
- the management API over real HTTP: each request becomes an API Gateway REST proxy event for the
  same ApiFunction handler that template.yaml deploys (one request at a time, as one Lambda container);
- moto's threaded server, so the AWS CLI and boto3 reach the same emulated account;
- the workers (the emulated SQS event source) and due one-time schedules, running on their own.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bulkmail_local.dashboard import static_file
from bulkmail_local.loopback import (
    HOP_BY_HOP,
    LoopbackMotoServer,
    LoopbackRequestHandler,
    Refusal,
    body_length,
    foreign,
    needs_api_body_type,
)
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.apigw import ApiGateway
from bulkmail_local.runtime.persistence import DurableState, Resumed
from bulkmail_local.runtime.ses_events import PIXEL, SesEvents

HOST = "127.0.0.1"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


# Paths served by the public API (no auth on AWS): the unsubscribe links in every email, the archive, signup.
PUBLIC_PREFIXES = {
    "/unsubscribe/": "UnsubscribeFunction",
    "/archive/": "UnsubscribeFunction",
    "/subscribe": "UnsubscribeFunction",
}
# SES's open and click links, answered by the embedded SES itself (runtime.ses_events).
TRACKING_PREFIX = "/track/"


def _handler_class(
    gateways: dict[str, ApiGateway],
    lock: threading.Lock,
    flush_outbox: Callable[[], Any],
    ses_events: Callable[[], SesEvents | None] = lambda: None,
) -> type[BaseHTTPRequestHandler]:
    """`gateways`: the function behind each public path prefix, and "" for the management API.
    `ses_events`: SES's open and click links (on AWS, SES's tracking domain answers them)."""

    class ApiRequestHandler(LoopbackRequestHandler):
        server_version = "bulkmail-serve"
        logger_name = "bulkmail.serve"

        def _serve(self) -> None:
            length = body_length(self.headers, MAX_REQUEST_BYTES)
            if isinstance(length, Refusal):
                if length.status == 413:  # read what was sent, so the client sees the answer
                    self._discard(min(int(self.headers["Content-Length"]), 4 * MAX_REQUEST_BYTES))
                    length = Refusal(413, "$", "Request Too Long")  # API Gateway's own words
                return self._refuse(length)
            refused = foreign(self.command, self.headers, self.port)
            if refused is not None:
                return self._refuse(refused)
            body = self.rfile.read(length) if length else None
            static = static_file(self.command, self.path)  # the dashboard, at /
            if static is not None:
                return self._reply(*static)
            tracker = ses_events()
            if tracker is not None and self.path.startswith(TRACKING_PREFIX):
                return self._reply(*tracking_answer(tracker, self.command, self.path, self.headers))
            prefix = next((p for p in gateways if p and self.path.startswith(p)), "")
            # The public pages (unsubscribe) take the form posts mail clients send; the API only JSON or CSV.
            refused = None if prefix else needs_api_body_type(self.command, self.headers)
            if refused is not None:
                return self._refuse(refused)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            with lock:  # one container: the resolver holds the current event while it runs
                response = gateways[prefix].request(self.command, self.path, body=body, headers=headers)
            flush_outbox()  # test sends go out through the API, not through a worker batch
            self._reply(response.status, response.headers, response.body)

        def _discard(self, remaining: int) -> None:
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)

        do_OPTIONS = LoopbackRequestHandler.do_GET  # API Gateway answers OPTIONS too

    return ApiRequestHandler


def tracking_answer(tracker: SesEvents, method: str, path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    """What SES's tracking domain answers: an open link the 1×1 image, a click link a redirect to its
    URL; each publishes its event first (EventBridge → FeedbackFunction)."""
    kind, _, token = path[len(TRACKING_PREFIX) :].partition("/")
    token = token.split("?", 1)[0]
    user_agent = str(headers.get("User-Agent", ""))
    no_store = {"Cache-Control": "no-store"}
    if method == "GET" and kind == "open" and tracker.opened(token, user_agent):
        return 200, {"Content-Type": "image/gif", **no_store}, PIXEL
    if method == "GET" and kind == "click":
        url = tracker.clicked(token, user_agent)
        if url is not None:
            return 302, {"Location": url, **no_store}, b""
    return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"Not a tracking link\n"


def _worker_timeout(seconds: int | None) -> dict[str, Any]:
    if seconds is None:
        return {}
    return {
        "function_timeouts": {"SendEmailsFunction": seconds},
        "visibility_timeout": 6 * seconds,
        "environment": {"LEASE_SECONDS": str(math.ceil(1.5 * seconds))},
    }


def describe_resumed(resumed: Resumed | None, state_dir: Path, seconds: float) -> str:
    """One line for `bulkmail serve`: where the state lives, what came back, how to start afresh."""
    if resumed is None:
        return "state: in memory only (gone when serve stops)"
    where = f"state: {state_dir.resolve()}/"
    if resumed.fresh:
        return f"{where} (new, kept across restarts) · `bulkmail serve --reset` starts afresh"
    going_on = resumed.continued + resumed.restarted
    return (
        f"{where} · loaded {resumed.items} items, {resumed.messages} queued messages, {resumed.schedules} "
        f"schedules · up in {seconds:.1f} s · "
        + (f"campaigns going on: {', '.join(going_on)}" if going_on else "no campaign was running")
        + " · `bulkmail serve --reset` starts afresh"
    )


class LocalStack:
    """Start with `with LocalStack(...) as stack:`; `stack.api_url` and `stack.aws_url` are live inside."""

    def __init__(
        self,
        *,
        api_port: int = 8000,
        aws_port: int = 4566,
        outbox: Path = Path("outbox"),
        parameters: dict[str, Any] | None = None,
        state_dir: Path | None = None,
        reset: bool = False,
        worker_timeout: int | None = None,
    ):
        """`state_dir`: keep the account there, across restarts (None: in memory only); `reset`: start it
        afresh. `worker_timeout`: the send worker's timeout instead of the template's; the claim on a batch
        lapses 1.5 × it later and SQS redelivers after 6 × (the template's ratios), so a lower one brings a
        killed worker's batch back sooner."""
        self.api_port = api_port
        self.aws_port = aws_port
        self.outbox = outbox
        self.parameters = parameters
        self.state_dir = state_dir
        self.reset = reset
        self.worker_timeout = worker_timeout
        self.runtime: EmbeddedRuntime | None = None
        self._moto: LoopbackMotoServer | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    def _ses_events(self) -> SesEvents | None:
        return self.runtime.ses_events if self.runtime is not None else None

    def _flush_outbox(self) -> None:
        if self.runtime is not None:
            self.runtime.outbox.flush()

    def __enter__(self) -> LocalStack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        # The HTTP port first (bound, not yet listening): the unsubscribe links in mail must point at it.
        gateways: dict[str, ApiGateway] = {}
        self._http = ThreadingHTTPServer(
            (HOST, self.api_port),
            _handler_class(gateways, threading.Lock(), self._flush_outbox, self._ses_events),
            bind_and_activate=False,
        )
        self._http.daemon_threads = True
        self._http.server_bind()
        self.api_port = self._http.server_address[1]
        state = None
        try:
            state = DurableState(self.state_dir, reset=self.reset) if self.state_dir is not None else None
            self.runtime = EmbeddedRuntime(
                outbox=self.outbox,
                parameters=self.parameters,
                public_url=f"http://{HOST}:{self.api_port}",
                state=state,
                **_worker_timeout(self.worker_timeout),
            )
            self.runtime.__enter__()
        except BaseException:
            if state is not None:
                state.close()
            self._http.server_close()
            raise
        try:
            self._moto = LoopbackMotoServer(ip_address=HOST, port=self.aws_port, verbose=False)
            self._moto.start()
            self.aws_port = self._moto.get_host_and_port()[1]
            by_id = {f.logical_id: f for f in self.runtime.functions.values()}
            gateways[""] = ApiGateway(by_id["ApiFunction"])
            gateways.update({prefix: ApiGateway(by_id[fn]) for prefix, fn in PUBLIC_PREFIXES.items()})
            self._http.server_activate()
            self._http_thread = threading.Thread(target=self._http.serve_forever, name="bulkmail-api", daemon=True)
            self._http_thread.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._http is not None:
            if self._http_thread is not None:  # shutdown() waits for serve_forever, which may not have started
                self._http.shutdown()
                self._http_thread.join(timeout=10)
            self._http.server_close()
        if self._moto is not None and self._moto._server is not None:
            self._moto.stop()
        if self.runtime is not None:
            self.runtime.__exit__(*exc)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def aws_url(self) -> str:
        return f"http://{HOST}:{self.aws_port}"
