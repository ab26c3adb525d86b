"""`bulkmail serve` (the whole stack on 127.0.0.1) and `bulkmail dashboard` (the dashboard of a deployed
stack): each runs until Ctrl-C or SIGTERM, and prints one JSON line with its URLs for programs."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from bulkmail_local.cli.common import CliError, Commands, aws_failure, command, outbox_option

DEFAULT_STATE_DIR = ".bulkmail-state"


def register(commands: Commands) -> None:
    serve = command(commands, "serve", "run the whole stack locally: the API, an AWS endpoint, workers", _serve)
    serve.add_argument("--api-port", type=int, default=8000, help="the management API's and dashboard's port")
    serve.add_argument("--aws-port", type=int, default=4566, help="the emulated AWS endpoint's port")
    outbox_option(serve, "outbox")
    serve.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help="where the emulated account is kept across restarts"
    )
    serve.add_argument(
        "--reset", action="store_true", help="start with an empty account (deletes the state kept in --state-dir)"
    )
    serve.add_argument(
        "--worker-timeout",
        type=_positive_int,
        metavar="SECONDS",
        help="the send worker's timeout (default: the template's 120 s); a batch held by a killed "
        "worker is sent again 1.5 × this later",
    )

    dashboard = command(
        commands,
        "dashboard",
        "the web dashboard for a deployed stack, on 127.0.0.1 (API calls signed with your AWS credentials)",
        _dashboard,
    )
    where = dashboard.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (its ApiUrl output is the API)")
    where.add_argument("--api-url", help="the management API's URL, instead of --stack")
    dashboard.add_argument("--port", type=int, default=8080, help="the local port")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


@contextmanager
def _stopped_by_signal() -> Iterator[threading.Event]:
    """While inside, SIGINT and SIGTERM set the event (the server stops cleanly) instead of interrupting."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(args: argparse.Namespace) -> int:
    import time

    from bulkmail_local.runtime.persistence import StateUnavailable
    from bulkmail_local.serve import LocalStack, describe_resumed

    console = Console(stderr=True)
    with _stopped_by_signal() as stop:
        try:
            started = time.monotonic()
            with LocalStack(
                api_port=args.api_port,
                aws_port=args.aws_port,
                outbox=Path(args.outbox),
                state_dir=Path(args.state_dir),
                reset=args.reset,
                worker_timeout=args.worker_timeout,
            ) as stack:
                rt = stack.runtime
                assert rt is not None  # started by LocalStack.__enter__
                console.print(
                    f"[bold]bulkmail serve[/bold] · dashboard {stack.api_url}/ · API {stack.api_url} · "
                    f"AWS {stack.aws_url} · outbox {args.outbox}/"
                )
                console.print(describe_resumed(rt.resumed, Path(args.state_dir), time.monotonic() - started))
                for logical_id in ("CampaignsTable", "ContactsTable", "DeliveriesTable", "SendQueue"):
                    console.print(f"  {logical_id}: {rt.physical[logical_id]}")
                console.print(f"  CampaignStateMachine: {rt.state_machine_arn}")
                console.print(f"  try: aws --endpoint-url {stack.aws_url} dynamodb list-tables · Ctrl-C stops")
                print(json.dumps({"api_url": stack.api_url, "aws_url": stack.aws_url}), flush=True)
                while not stop.wait(timeout=0.5):
                    pass
                console.print("stopping …")
        except StateUnavailable as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:  # a port in use
            raise CliError(
                f"cannot start: {exc.strerror or exc} — is another bulkmail serve running on port {args.api_port} "
                f"or {args.aws_port}? Stop it, or choose --api-port / --aws-port"
            ) from None
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from bulkmail_local.client import stack_api_url
    from bulkmail_local.dashboard import DashboardProxy

    console = Console(stderr=True)
    try:
        api_url = args.api_url or stack_api_url(args.stack)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        reason = aws_failure(exc, None) if isinstance(exc, (BotoCoreError, ClientError)) else exc
        raise CliError(f"cannot find the API of stack {args.stack}: {reason}") from None
    with _stopped_by_signal() as stop, DashboardProxy(api_url, port=args.port) as proxy:
        console.print(
            f"[bold]bulkmail dashboard[/bold] · {proxy.url}/ · API {api_url} (each request signed "
            f"with your AWS credentials) · Ctrl-C stops"
        )
        print(json.dumps({"dashboard_url": proxy.url, "api_url": api_url}), flush=True)
        while not stop.wait(timeout=0.5):
            pass
    return 0
