"""The `bulkmail` command. Every error is one line on stderr that says what to do; --json gives the
machine-readable form of what is otherwise a table for people."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class CliError(Exception):
    """A one-line message for the user (what went wrong, and what to do); `code` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(
            f"cannot read the {what} {path}: {exc.strerror or exc} — give the path of an existing file"
        ) from None


def _text(path: str, what: str) -> str:
    try:
        return _read(path, what).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"the {what} {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with where to read more."""

    def error(self, message: str):  # argparse's hook; never returns
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _DefaultsShown(argparse.HelpFormatter):
    """Each option's default at the end of its help, when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _demo(args: argparse.Namespace) -> int:
    from bulkmail_local.demo import run_demo, summarise_path

    # With --json, stdout carries only the final record: everything for people goes to stderr.
    console = Console(stderr=args.json)
    if args.contacts is not None and args.contacts < 0:
        raise CliError("--contacts must be 0 or more", 2)
    last: dict = {}
    with (
        _stopping_on_ctrl_c(console, "stopping the demo: the batch being sent finishes, nothing more is sent …"),
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · skipped {task.fields[skipped]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar,
    ):
        task = bar.add_task("queued", total=None, sent=0, failed=0, skipped=0)

        def progress(record: dict) -> None:
            last.update(record)
            bar.update(
                task,
                description=record["status"],
                total=record.get("total_contacts") or None,
                completed=record["processed_count"],
                sent=record["sent_count"],
                failed=record["failed_count"],
                skipped=record["skipped_count"],
            )

        try:
            result = run_demo(contacts=args.contacts, outbox=Path(args.outbox), progress=progress)
        except KeyboardInterrupt:
            if not last:
                raise CliError(
                    "interrupted: the demo stopped before its campaign started; nothing was sent", 130
                ) from None
            folder = Path(args.outbox) / str(last.get("campaign_id"))
            written = len(list(folder.glob("*.eml"))) if folder.is_dir() else 0
            raise CliError(
                f"interrupted: the demo stopped, nothing more is sent; {written} emails are in {folder}/ "
                f"(last seen: {_counts(last)}); its emulated account is gone (a demo keeps nothing)",
                130,
            ) from None
        if result.campaign:
            progress(result.campaign)

    c = result.campaign
    table = Table(title=f"Campaign {c.get('campaign_id')} — {c.get('campaign_name')}", show_header=False)
    table.add_row("status", str(c.get("status")))
    table.add_row("execution", result.execution["status"])
    table.add_row("recipients", str(c.get("total_contacts")))
    table.add_row("sent", str(c.get("sent_count")))
    table.add_row("failed", str(c.get("failed_count")))
    reasons = ", ".join(f"{r}: {n}" for r, n in sorted(result.skipped_reasons.items()))
    table.add_row("skipped", f"{c.get('skipped_count')}" + (f" ({reasons})" if reasons else ""))
    table.add_row(
        "duration", f"{result.seconds:.1f} s ({c.get('sent_count', 0) / max(result.seconds, 1e-9):.0f} emails/s)"
    )
    table.add_row("outbox", f"{result.outbox}/ ({result.eml_files} .eml files)")
    table.add_row("path", summarise_path(result.state_path))
    if result.rejected_contacts:
        table.add_row("rejected contacts", str(len(result.rejected_contacts)))
    console.print(table)
    if args.json:
        print(json.dumps(c, default=str, sort_keys=True))
    accounted = c.get("sent_count", 0) + c.get("failed_count", 0) + c.get("skipped_count", 0)
    ok = c.get("status") == "completed" and accounted == c.get("total_contacts")
    if not ok:
        console.print(
            f"[red]campaign did not complete cleanly: {result.execution.get('error')} "
            f"{result.execution.get('cause', '')}[/red]"
        )
    return 0 if ok else 1


def _counts(record: dict) -> str:
    return (
        f"campaign {record.get('campaign_id')} {record.get('status')}: {record.get('sent_count', 0)} sent, "
        f"{record.get('failed_count', 0)} failed, {record.get('skipped_count', 0)} skipped of "
        f"{record.get('total_contacts', 0)}"
    )


class _stopping_on_ctrl_c:
    """While inside: the first Ctrl-C says what happens now and stops the work (KeyboardInterrupt);
    a second one is ignored, so that the stop (workers finishing their batch) is not cut short."""

    def __init__(self, console: Console, notice: str):
        self.console, self.notice = console, notice

    def _interrupt(self, *_: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.console.print(self.notice)
        raise KeyboardInterrupt

    def __enter__(self) -> _stopping_on_ctrl_c:
        self.previous = signal.signal(signal.SIGINT, self._interrupt)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self.previous)


def _chaos(args: argparse.Namespace) -> int:
    from bulkmail_local.chaos import run_chaos

    console = Console(stderr=True)
    seeds = range(args.seed, args.seed + args.seeds)
    results = []
    for seed in seeds:
        outbox = Path(args.outbox) / f"seed-{seed}"
        result = run_chaos(contacts=args.contacts, seed=seed, outbox=outbox)
        results.append(result)
        console.print(
            f"seed {seed:>4} {result['scenario']:<18} {'ok ' if result['ok'] else 'BAD'} "
            f"sent {result['final']['sent_count']} failed {result['final']['failed_count']} "
            f"skipped {result['final']['skipped_count']} · duplicates {result['duplicates']} "
            f"(crash window {result['crash_window_duplicates']}+{result['crash_window_unrecorded']}) · "
            f"lost {result['lost']} · "
            f"counter mismatches {result['counter_mismatches']} · faults {sum(result['faults_injected'].values())}"
            + (
                f" · re-send of {r['original_failed']}: sent {r['final']['sent_count']} failed "
                f"{r['final']['failed_count']}, family duplicates {r['family_duplicates']}"
                if (r := result.get("resend"))
                else ""
            )
        )
    if args.json:
        if len(results) == 1:
            print(json.dumps(results[0], sort_keys=True))
        else:
            totals = {
                k: sum(r[k] for r in results)
                for k in (
                    "duplicates",
                    "crash_window_duplicates",
                    "lost",
                    "counter_mismatches",
                    "crash_window_unrecorded",
                )
            }
            faults: dict[str, int] = {}
            for r in results:
                for k, v in r["faults_injected"].items():
                    faults[k] = faults.get(k, 0) + v
            print(
                json.dumps(
                    {
                        "seeds": len(results),
                        "ok": sum(r["ok"] for r in results),
                        **totals,
                        "faults_injected": faults,
                        "results": results,
                    },
                    sort_keys=True,
                )
            )
    return 0 if all(r["ok"] for r in results) else 1


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("each size must be 1 or more")
    return sizes


def _body_file(text: str) -> Path:
    path = Path(text)
    try:
        body = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc}") from None
    if not body.strip():
        raise argparse.ArgumentTypeError(f"{text} is empty")
    return path


def _bench(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.campaigns import run_bench
    from bulkmail_local.bench.report import print_report

    console = Console(stderr=args.json, width=None if sys.stderr.isatty() else 132)  # wide tables in logs
    result = run_bench(
        args.sizes,
        seed_contacts=args.seed_contacts or None,
        outbox=Path(args.outbox),
        body_file=args.body_file,
        progress=lambda line: console.print(f"[dim]{line}[/dim]"),
    )
    print_report(result, console)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    ok = all(r["status"] == "completed" and r["sent"] == r["contacts"] for r in result["sizes"])
    return 0 if ok else 1


def _bench_pacing(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.pacing import bench_pacing

    result = bench_pacing(rate=args.rate, seconds=args.seconds, outbox=Path(args.outbox))
    Console(stderr=args.json).print(
        f"target {result['target']}/s · achieved {result['achieved']}/s ({result['achieved_ratio']:.0%}) over "
        f"{result['seconds']} s · throttled {result['throttled']} · sent {result['sent']} · failed {result['failed']}"
    )
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _bench_audience(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.audience import bench_audience

    result = bench_audience(args.contacts, args.members, args.segment, Path(args.outbox))
    Console(stderr=args.json).print(
        f"{result['segment_members']}-member segment of a {result['list_members']}-member list in a "
        f"{result['contacts']}-contact table: sent {result['sent']} · audience read units "
        f"{result['audience_read_units']} {result['read_units_by_function']} · one Scan of the table "
        f"{result['full_table_scan_read_units']}"
    )
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _aws_failure(exc: Exception, endpoint_url: str | None) -> CliError:
    """botocore's errors as one line that says what to do."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        local = "bulkmail serve's endpoint takes any key: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
        aws = "run `aws configure` or set AWS_PROFILE"
        loopback = endpoint_url and any(h in endpoint_url for h in ("//127.0.0.1", "//localhost"))
        return CliError(
            f"no AWS credentials found: {local if loopback else aws}"
            + ("" if endpoint_url else f" (for bulkmail serve: --endpoint-url http://127.0.0.1:4566; {local})")
        )
    if isinstance(exc, NoRegionError):
        return CliError("no AWS region set: set AWS_DEFAULT_REGION (e.g. us-east-1) or run `aws configure`")
    if isinstance(exc, EndpointConnectionError):
        return CliError(
            f"cannot reach AWS at {exc.kwargs.get('endpoint_url')}: check --endpoint-url, or that bulkmail serve runs"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return CliError(f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}")
    return CliError(f"AWS request failed: {exc}")


def _redrive(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from bulkmail.adapters import queue

    console = Console(stderr=True)
    if not (args.stack or (args.queue_url and args.dlq_url)):
        raise CliError("give --stack NAME, or both --queue-url and --dlq-url", 2)
    try:
        queue_url, dlq_url = args.queue_url, args.dlq_url
        if args.stack:
            cfn = boto3.client("cloudformation", endpoint_url=args.endpoint_url)
            outputs = {
                o["OutputKey"]: o["OutputValue"]
                for o in cfn.describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
            }
            queue_url, dlq_url = outputs.get("SendQueueUrl"), outputs.get("SendDeadLetterQueueUrl")
            if not (queue_url and dlq_url):
                raise CliError(
                    f"stack {args.stack} has no SendQueueUrl / SendDeadLetterQueueUrl outputs: is it a bulkmail stack?"
                )
        moved = queue.redrive(dlq_url, queue_url, sqs=boto3.client("sqs", endpoint_url=args.endpoint_url))
    except (BotoCoreError, ClientError) as exc:
        raise _aws_failure(exc, args.endpoint_url) from None
    if args.json:
        print(json.dumps({"moved": moved}))
    else:
        console.print(f"moved {moved} message(s) from the dead-letter queue back to the send queue")
    return 0


# --- the local stack and the API ------------------------------------------------------------------
DEFAULT_STATE_DIR = ".bulkmail-state"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from bulkmail_local.runtime.persistence import StateUnavailable
    from bulkmail_local.serve import LocalStack, describe_resumed

    console = Console(stderr=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
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
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    import signal
    import threading

    from botocore.exceptions import BotoCoreError, ClientError

    from bulkmail_local.client import stack_api_url
    from bulkmail_local.dashboard import DashboardProxy

    console = Console(stderr=True)
    try:
        api_url = args.api_url or stack_api_url(args.stack)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        reason = _aws_failure(exc, None) if isinstance(exc, (BotoCoreError, ClientError)) else exc
        raise CliError(f"cannot find the API of stack {args.stack}: {reason}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with DashboardProxy(api_url, port=args.port) as proxy:
            console.print(
                f"[bold]bulkmail dashboard[/bold] · {proxy.url}/ · API {api_url} (each request signed "
                f"with your AWS credentials) · Ctrl-C stops"
            )
            print(json.dumps({"dashboard_url": proxy.url, "api_url": api_url}), flush=True)
            while not stop.wait(timeout=0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _client(args: argparse.Namespace):
    from bulkmail_local.client import ApiClient

    return ApiClient(base_url=args.api_url)


def _api(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; its failure as a CliError naming what to do."""
    from bulkmail_local.client import ApiFailure, ApiUnreachable, CredentialsMissing

    try:
        return _client(args).request(method, path, **kwargs)
    except ApiFailure as exc:
        raise CliError(str(exc)) from None
    except ApiUnreachable as exc:
        raise CliError(
            f"{exc} — is `bulkmail serve` running? (another API: --api-url URL or BULKMAIL_API_URL)"
        ) from None
    except CredentialsMissing as exc:
        raise CliError(str(exc)) from None
    except ValueError:  # a 2xx that is not JSON: something else answers at that URL
        raise CliError(f"the answer from {args.api_url}{path} is not JSON: is --api-url the bulkmail API?") from None


def _output(args: argparse.Namespace, result: Any, human: Callable[[Console], None]) -> int:
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    else:
        human(Console())
    return 0


def _fields(title: str, record: dict[str, Any], names: tuple[str, ...]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for name in names:
        value = record.get(name)
        if value not in (None, "", [], {}):
            table.add_row(name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
    return table


def _contacts_import(args: argparse.Namespace) -> int:
    data = _read(args.file, "CSV file")
    result = _api(args, "POST", "/contacts/import", body=data, headers={"Content-Type": "text/csv"})

    def human(console: Console) -> None:
        console.print(f"imported {result['imported']} contact(s) from {args.file}")
        if result["rejected"]:
            table = Table(title=f"{len(result['rejected'])} row(s) rejected", title_justify="left")
            for column in ("line", "email", "reason"):
                table.add_column(column)
            for row in result["rejected"]:
                table.add_row(str(row["line"]), row.get("email") or "", row["error"])
            console.print(table)

    return _output(args, result, human)


CONTACT_FIELDS = (
    "email",
    "status",
    "first_name",
    "last_name",
    "company",
    "lists",
    "attributes",
    "suppressed_at",
    "suppression",
    "created_at",
    "updated_at",
)


def _contacts_get(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    contact = _api(args, "GET", f"/contacts/{quote(args.email, safe='')}")
    return _output(args, contact, lambda console: console.print(_fields(contact["email"], contact, CONTACT_FIELDS)))


# ---- audience (issue 15): lists, segments, contacts export ----
def _path_part(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _lists(args: argparse.Namespace) -> int:
    if args.action == "create":
        body = {"list_id": args.list_id, **({"name": args.name} if args.name else {})}
        if args.description:
            body["description"] = args.description
        result = _api(args, "POST", "/lists", json_body=body)
    elif args.action == "delete":
        _api(args, "DELETE", f"/lists/{_path_part(args.list_id)}")
        result = {"deleted": args.list_id}
    elif args.action == "get":
        result = _api(args, "GET", f"/lists/{_path_part(args.list_id)}")
    else:
        result = _api(args, "GET", "/lists")

    def human(console: Console) -> None:
        rows = result.get("lists", [result]) if "deleted" not in result else []
        if "deleted" in result:
            console.print(f"deleted list {result['deleted']} (its members stay on their other lists)")
            return
        table = Table(title="lists", title_justify="left")
        for column in ("list_id", "name", "members", "subscribed", "description"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(row.get(c, "")) for c in ("list_id", "name", "members", "subscribed", "description")))
        console.print(table)

    return _output(args, result, human)


def _condition(text: str) -> dict[str, Any]:
    """FIELD:OP[:VALUE] as a segment condition; VALUE is JSON when it parses (numbers, true, [..])."""
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not FIELD:OP[:VALUE] (e.g. plan:eq:pro, seats:gt:10)")
    condition: dict[str, Any] = {"field": parts[0], "op": parts[1]}
    if len(parts) == 3:
        try:
            condition["value"] = json.loads(parts[2])
        except ValueError:
            condition["value"] = parts[2]
    return condition


def _segments(args: argparse.Namespace) -> int:
    if args.action == "create":
        body = {"segment_id": args.segment_id, "lists": args.lists, "match": args.match or []}
        result = _api(args, "POST", "/segments", json_body=body)
    elif args.action == "delete":
        _api(args, "DELETE", f"/segments/{_path_part(args.segment_id)}")
        result = {"deleted": args.segment_id}
    elif args.action == "get":
        result = _api(args, "GET", f"/segments/{_path_part(args.segment_id)}")
    elif args.action == "count":
        result = _api(args, "GET", f"/segments/{_path_part(args.segment_id)}/count")
    else:
        result = _api(args, "GET", "/segments")

    def human(console: Console) -> None:
        if "deleted" in result:
            console.print(f"deleted segment {result['deleted']}")
        elif "count" in result:
            console.print(f"{result['count']} subscribed contact(s) match ({result['read_units']} read units)")
        else:
            table = Table(title="segments", title_justify="left")
            for column in ("segment_id", "lists", "match"):
                table.add_column(column)
            for row in result.get("segments", [result]):
                match = " and ".join(f"{c['field']} {c['op']} {json.dumps(c.get('value', True))}" for c in row["match"])
                table.add_row(row["segment_id"], ", ".join(row["lists"]), match or "(everyone subscribed)")
            console.print(table)

    return _output(args, result, human)


def _contacts_export(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    from bulkmail_local.client import ApiUnreachable

    query = f"?{urlencode({'list': args.list})}" if args.list else ""
    try:
        status, _, raw = _client(args).send("GET", f"/contacts/export{query}")
    except ApiUnreachable as exc:
        raise CliError(f"{exc} — is `bulkmail serve` running?") from None
    if status >= 400:
        try:
            errors = json.loads(raw)["errors"]
            raise CliError("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        except (ValueError, KeyError, TypeError):
            raise CliError(f"the API answered {status}") from None
    if args.output in (None, "-"):
        sys.stdout.write(raw.decode())
    else:
        Path(args.output).write_bytes(raw)
        rows = max(raw.count(b"\n") - 1, 0)
        print(f"wrote {rows} contact(s) to {args.output}", file=sys.stderr)
    return 0


# ---- end audience ----


def _sender(args: argparse.Namespace) -> dict[str, str]:
    """--from "Name <addr>" or a plain address, and --from-name: the campaign's from_email and from_name."""
    from email.utils import parseaddr

    if not args.from_email:
        raise CliError(
            '--from is required: the sender, e.g. --from news@example.com or --from "News <news@example.com>" '
            "(or set BULKMAIL_FROM)",
            2,
        )
    name, address = parseaddr(args.from_email)
    if not address or "@" not in address:
        name, address = "", args.from_email.strip()  # the API names the problem
    if name and args.from_name:
        raise CliError(f"two sender names: {name!r} in --from and {args.from_name!r} in --from-name; give one", 2)
    name = args.from_name or name
    return {"from_email": address, **({"from_name": name} if name else {})}


def _campaigns_send(args: argparse.Namespace) -> int:
    campaign = {
        "campaign_name": args.name,
        "subject": args.subject,
        **_sender(args),
        "body": _text(args.body_file, "body file"),
    }
    if args.html_file:
        campaign["body_html"] = _text(args.html_file, "HTML file")
    if args.list:
        campaign["list"] = args.list
    if args.segment:
        campaign["segment"] = args.segment
    if args.at:
        campaign["send_at"] = args.at
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    result = _api(args, "POST", "/campaigns", json_body=campaign, headers=headers)

    def human(console: Console) -> None:
        when = f"scheduled for {args.at}" if result["status"] == "scheduled" else result["status"]
        console.print(
            f"campaign {result['campaign_id']} {when} — follow it: "
            f"bulkmail campaigns status {result['campaign_id']} --watch"
        )

    return _output(args, result, human)


_FINAL = {"completed", "cancelled", "failed"}
CAMPAIGN_FIELDS = (
    "campaign_id",
    "campaign_name",
    "status",
    "subject",
    "from_name",
    "from_email",
    "list",
    "send_at",
    "total_contacts",
    "sent_count",
    "failed_count",
    "skipped_count",
    "progress",
    "resend_of",
    "error",
    "cause",
    "created_at",
    "updated_at",
)


def _campaign_table(record: dict[str, Any]) -> Table:
    return _fields(f"Campaign {record['campaign_id']}", record, CAMPAIGN_FIELDS[1:])


def _campaigns_status(args: argparse.Namespace) -> int:
    import time

    path = f"/campaigns/{args.campaign_id}"
    if not args.watch:
        found = _api(args, "GET", path)
        return _output(args, found, lambda console: console.print(_campaign_table(found)))
    console = Console(stderr=True)
    deadline = time.monotonic() + args.timeout
    record: dict[str, Any] = {}
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · skipped {task.fields[skipped]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:  # the table follows
            task = bar.add_task("waiting", total=None, sent=0, failed=0, skipped=0)
            while time.monotonic() < deadline:
                record = _api(args, "GET", path)
                bar.update(
                    task,
                    description=record["status"],
                    total=record.get("total_contacts") or None,
                    completed=record.get("processed_count", 0),
                    sent=record.get("sent_count", 0),
                    failed=record.get("failed_count", 0),
                    skipped=record.get("skipped_count", 0),
                )
                if record["status"] in _FINAL:
                    break
                time.sleep(args.interval)
            else:
                raise CliError(
                    f"still {record.get('status', 'unknown')} after {args.timeout:.0f} s: "
                    f"{_counts(record) if record else ''} — watch again, or give --timeout"
                )
    except KeyboardInterrupt:
        raise CliError(
            f"stopped watching; {_counts(record) if record else f'campaign {args.campaign_id}'} goes on "
            f"without you (to stop it: bulkmail campaigns pause or cancel {args.campaign_id})",
            130,
        ) from None
    _output(args, record, lambda out: out.print(_campaign_table(record)))
    return 0 if record["status"] == "completed" else 1


def _campaigns_action(args: argparse.Namespace) -> int:
    result = _api(args, "POST", f"/campaigns/{args.campaign_id}/{args.action}")

    def human(console: Console) -> None:
        if args.action == "resend-failed":
            console.print(
                f"campaign {result['campaign_id']} {result['status']}: a re-send of {args.campaign_id} "
                f"to its failed recipients — follow it: bulkmail campaigns status {result['campaign_id']} --watch"
            )
        else:
            console.print(f"campaign {args.campaign_id}: {result['previous_status']} → {result['status']}")

    return _output(args, result, human)


def _deliveries(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    def page_after(token: str | None) -> dict[str, Any]:
        query = {
            "limit": args.limit,
            **({"status": args.status} if args.status else {}),
            **({"next_token": token} if token else {}),
        }
        return _api(args, "GET", f"/campaigns/{args.campaign_id}/deliveries?{urlencode(query)}")

    page = page_after(args.next_token)
    rows = list(page["deliveries"])
    while args.all and page.get("next_token"):
        page = page_after(page["next_token"])
        rows += page["deliveries"]
    token = page.get("next_token")
    result = {"deliveries": rows, "next_token": token}

    def human(console: Console) -> None:
        table = Table(
            title=f"{len(rows)} deliver{'y' if len(rows) == 1 else 'ies'} of {args.campaign_id}"
            + (f" ({args.status})" if args.status else ""),
            title_justify="left",
        )
        for column in ("email", "status", "reason", "updated"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["email"], row.get("status", ""), row.get("reason", ""), str(row.get("updated_at", "")))
        console.print(table)
        if token:
            console.print(f"more: --all, or --next-token {token}")

    return _output(args, result, human)


def _trace(args: argparse.Namespace) -> int:
    trace = _api(args, "GET", f"/campaigns/{args.campaign_id}/trace")

    def human(console: Console) -> None:
        execution = trace["execution_arn"].rsplit(":", 1)[-1]
        named = args.campaign_id if execution == args.campaign_id else f"{args.campaign_id} · execution {execution}"
        table = Table(title=f"{named} · {trace['execution_status']}", title_justify="left")
        for column in ("#", "state", "at (s)", "took (s)"):
            table.add_column(column, justify="right" if column != "state" else "left")
        for i, step in enumerate(trace["steps"], trace["steps_omitted"] + 1):
            table.add_row(
                str(i),
                step["state"],
                f"{step['started']:.3f}",
                "running" if step["seconds"] is None else f"{step['seconds']:.3f}",
            )
        if trace["steps_omitted"]:
            console.print(f"(the first {trace['steps_omitted']} steps are left out)")
        console.print(table)

    return _output(args, trace, human)


def build_parser() -> argparse.ArgumentParser:
    from bulkmail_local.client import DEFAULT_API_URL

    parser = _Parser(
        prog="bulkmail", description="Serverless bulk email campaigns on AWS.", formatter_class=_DefaultsShown
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group, name: str, text: str) -> argparse.ArgumentParser:
        return group.add_parser(name, help=text, description=text, formatter_class=_DefaultsShown)

    def json_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    demo = command(commands, "demo", "run a real campaign on the embedded runtime (no AWS account needed)")
    demo.add_argument(
        "--contacts", type=int, metavar="N", help="generate N contacts instead of importing events/contacts.json"
    )
    demo.add_argument("--json", action="store_true", help="print the final campaign record as JSON on the last line")
    demo.add_argument("--outbox", default="outbox", help="where sent mail is written as .eml")
    demo.set_defaults(run=_demo)

    chaos = command(commands, "chaos", "run campaigns under injected faults and audit the outcome")
    chaos.add_argument("--contacts", type=int, default=300, metavar="N", help="contacts per campaign")
    chaos.add_argument("--seed", type=int, default=1, help="first seed (faults are reproducible per seed)")
    chaos.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds to run")
    chaos.add_argument("--outbox", default="outbox/chaos", help="sent mail, as .eml, under DIR/seed-S/")
    chaos.add_argument("--json", action="store_true", help="last stdout line: the audit as one JSON object")
    chaos.set_defaults(run=_chaos)

    dlq = command(commands, "dlq", "the send queue's dead-letter queue").add_subparsers(
        dest="dlq", required=True, metavar="ACTION"
    )
    redrive = command(
        dlq,
        "redrive",
        "move dead-lettered batches back to the send queue; their recipients "
        "(recorded as failed, dead-lettered) are sent again",
    )
    redrive.add_argument("--stack", help="a deployed stack's name (its outputs give the queue URLs)")
    redrive.add_argument("--queue-url", help="the send queue's URL, instead of --stack")
    redrive.add_argument("--dlq-url", help="the dead-letter queue's URL, instead of --stack")
    redrive.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:4566 for `bulkmail serve` (default: AWS itself)")
    json_option(redrive)
    redrive.set_defaults(run=_redrive)

    bench_command = command(
        commands,
        "bench",
        "campaigns at several sizes on the embedded runtime: time, AWS requests "
        "and cost per email, against the seed's per-email design",
    )
    bench_command.add_argument(
        "--sizes",
        type=_sizes,
        default=[2000, 10000, 50000],
        metavar="N,N,…",
        help="contacts per campaign, comma-separated",
    )
    bench_command.add_argument(
        "--seed-contacts", type=int, default=2000, help="contacts for the seed design's run (0 skips it)"
    )
    bench_command.add_argument(
        "--body-file",
        type=_body_file,
        help="the campaign's body: an HTML (or text) file; default: the 60 KB sample newsletter",
    )
    bench_command.add_argument("--outbox", default="outbox/bench", help="where sent mail is written as .eml")
    bench_command.add_argument("--json", action="store_true", help="the last line of stdout is the result as JSON")
    bench_command.set_defaults(run=_bench)
    bench = bench_command.add_subparsers(dest="bench", metavar="KIND")
    pacing = command(bench, "pacing", "a campaign against an SES that throttles above --rate")
    pacing.add_argument("--rate", type=float, required=True, help="emails per second (SES maximum send rate)")
    pacing.add_argument("--seconds", type=float, default=20, help="how long to send")
    pacing.add_argument("--outbox", default="outbox/bench", help="where sent mail is written as .eml")
    pacing.add_argument("--json", action="store_true", help="the last line of stdout is the result as JSON")
    pacing.set_defaults(run=_bench_pacing)
    # ---- audience (issue 15) ----
    audience = command(bench, "audience", "the read units of a campaign to a segment (the membership index)")
    audience.add_argument("--contacts", type=int, default=50_000, help="contacts in the table")
    audience.add_argument("--members", type=int, default=1_000, help="of them on the segment's list")
    audience.add_argument("--segment", type=int, default=1_000, help="of those matching the segment")
    audience.add_argument("--outbox", default="outbox/bench", help="where sent mail is written as .eml")
    audience.add_argument("--json", action="store_true", help="the last line of stdout is the result as JSON")
    audience.set_defaults(run=_bench_audience)
    # ---- end audience ----

    serve = command(commands, "serve", "run the whole stack locally: the API, an AWS endpoint, workers")
    serve.add_argument("--api-port", type=int, default=8000, help="the management API's and dashboard's port")
    serve.add_argument("--aws-port", type=int, default=4566, help="the emulated AWS endpoint's port")
    serve.add_argument("--outbox", default="outbox", help="where sent mail is written as .eml")
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
    serve.set_defaults(run=_serve)

    dashboard = command(
        commands,
        "dashboard",
        "the web dashboard for a deployed stack, on 127.0.0.1 (API calls signed with your AWS credentials)",
    )
    where = dashboard.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (its ApiUrl output is the API)")
    where.add_argument("--api-url", help="the management API's URL, instead of --stack")
    dashboard.add_argument("--port", type=int, default=8080, help="the local port")
    dashboard.set_defaults(run=_dashboard)

    def api_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--api-url",
            default=os.environ.get("BULKMAIL_API_URL", DEFAULT_API_URL),
            help="the management API: bulkmail serve's, or a deployed stack's ApiUrl (signed with your "
            "AWS credentials); $BULKMAIL_API_URL sets the default",
        )
        json_option(p)

    contacts = command(commands, "contacts", "import and look up contacts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    imp = command(
        contacts,
        "import",
        "import a CSV file (header: email, first_name, last_name, company, lists; lists separated by ;)",
    )
    imp.add_argument("file", help="the CSV file")
    api_options(imp)
    imp.set_defaults(run=_contacts_import)
    get = command(contacts, "get", "one contact: status (subscribed, unsubscribed, …), lists, fields")
    get.add_argument("email")
    api_options(get)
    get.set_defaults(run=_contacts_get)

    # ---- audience (issue 15) ----
    export = command(contacts, "export", "every contact (of --list) as CSV, custom fields as columns")
    export.add_argument("--list", help="only this list's contacts")
    export.add_argument("--output", "-o", help="a file to write (default: stdout)")
    api_options(export)
    export.set_defaults(run=_contacts_export)

    lists = command(commands, "lists", "lists: create, show with member counts, delete").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = command(lists, "list", "every list with its member and subscribed counts")
    api_options(p)
    p.set_defaults(run=_lists)
    p = command(lists, "create", "create a list")
    p.add_argument("list_id")
    p.add_argument("--name", help="a display name (default: the id)")
    p.add_argument("--description")
    api_options(p)
    p.set_defaults(run=_lists)
    for action, text in (("get", "one list with its counts"), ("delete", "delete a list (members stay on others)")):
        p = command(lists, action, text)
        p.add_argument("list_id")
        api_options(p)
        p.set_defaults(run=_lists)

    segments = command(commands, "segments", "segments: contacts of lists matching conditions").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = command(segments, "list", "every segment")
    api_options(p)
    p.set_defaults(run=_segments)
    p = command(segments, "create", "create a segment")
    p.add_argument("segment_id")
    p.add_argument("--list", dest="lists", action="append", required=True, help="a list it draws on (repeatable)")
    p.add_argument(
        "--match",
        action="append",
        type=_condition,
        metavar="FIELD:OP[:VALUE]",
        help="a condition, ANDed (repeatable); OP: eq, neq, in, contains, exists, lt, gt; e.g. plan:eq:pro",
    )
    api_options(p)
    p.set_defaults(run=_segments)
    for action, text in (
        ("get", "one segment"),
        ("count", "how many subscribed contacts it matches now, and the read units that cost"),
        ("delete", "delete a segment"),
    ):
        p = command(segments, action, text)
        p.add_argument("segment_id")
        api_options(p)
        p.set_defaults(run=_segments)
    # ---- end audience ----

    campaigns = command(commands, "campaigns", "send and steer campaigns").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    send = command(campaigns, "send", "start a campaign (now, or --at a time)")
    send.add_argument("--name", required=True, help="the campaign's name (for you; not in the email)")
    send.add_argument("--subject", required=True, help="the subject; placeholders like {{first_name}} work")
    send.add_argument("--body-file", required=True, help="the text body, a UTF-8 file")
    send.add_argument("--html-file", help="an HTML body too, a UTF-8 file")
    send.add_argument(
        "--from",
        dest="from_email",
        default=os.environ.get("BULKMAIL_FROM"),
        help='the sender: an address of your SES identity, or "Name <address>" (required; '
        "$BULKMAIL_FROM sets a default)",
    )
    send.add_argument("--from-name", help='the sender\'s display name, e.g. "Acme News"')
    send.add_argument("--list", help="send to this list's subscribed contacts (default: every subscribed contact)")
    send.add_argument("--segment", help="send to the subscribed contacts this segment matches, instead of a list")
    send.add_argument("--at", help="ISO-8601 time with offset, e.g. 2026-12-01T09:00:00+01:00 (default: now)")
    send.add_argument("--idempotency-key", help="retrying with the same key never starts a second campaign")
    api_options(send)
    send.set_defaults(run=_campaigns_send)
    status = command(campaigns, "status", "a campaign's record, counters and progress")
    status.add_argument("campaign_id")
    status.add_argument("--watch", action="store_true", help="a progress bar until the campaign ends")
    status.add_argument("--timeout", type=float, default=3600, help="give up watching after this many seconds")
    status.add_argument("--interval", type=float, default=0.5, help="seconds between polls when watching")
    api_options(status)
    status.set_defaults(run=_campaigns_status)
    for action, text in (
        ("pause", "pause a queued or processing campaign (what is being sent finishes)"),
        ("resume", "resume a paused campaign: exactly the recipients not yet sent are sent"),
        ("cancel", "cancel a campaign: every recipient not yet sent is skipped"),
        ("resend-failed", "start a new campaign to this one's failed recipients only"),
    ):
        p = command(campaigns, action, text)
        p.add_argument("campaign_id")
        api_options(p)
        p.set_defaults(run=_campaigns_action)

    deliveries = command(commands, "deliveries", "a campaign's delivery ledger: each recipient's outcome")
    deliveries.add_argument("campaign_id")
    deliveries.add_argument("--status", choices=("sent", "failed", "skipped"), help="only these outcomes")
    deliveries.add_argument("--limit", type=int, default=50, help="rows per page (1 to 500)")
    deliveries.add_argument("--all", action="store_true", help="every page, not only the first")
    deliveries.add_argument("--next-token", help="the page after the one that printed this token")
    api_options(deliveries)
    deliveries.set_defaults(run=_deliveries)

    trace = command(commands, "trace", "a campaign's path through the workflow, with timings")
    trace.add_argument("campaign_id")
    api_options(trace)
    trace.set_defaults(run=_trace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as exc:
        print(f"bulkmail: {exc}", file=sys.stderr)  # one line, whatever the terminal's width
        return exc.code
    except KeyboardInterrupt:
        print("bulkmail: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
