"""The `bulkmail` command."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _demo(args: argparse.Namespace) -> int:
    from bulkmail_local.demo import run_demo, summarise_path

    # With --json, stdout carries only the final record: everything for people goes to stderr.
    console = Console(stderr=args.json)
    if args.contacts is not None and args.contacts < 0:
        console.print("[red]--contacts must be 0 or more[/red]")
        return 2
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · skipped {task.fields[skipped]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("queued", total=None, sent=0, failed=0, skipped=0)

        def progress(record: dict) -> None:
            bar.update(task, description=record["status"], total=record.get("total_contacts") or None,
                       completed=record["processed_count"], sent=record["sent_count"],
                       failed=record["failed_count"], skipped=record["skipped_count"])

        result = run_demo(contacts=args.contacts, outbox=Path(args.outbox), progress=progress)
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
    table.add_row("duration", f"{result.seconds:.1f} s ({c.get('sent_count', 0) / max(result.seconds, 1e-9):.0f} emails/s)")
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
        console.print(f"[red]campaign did not complete cleanly: {result.execution.get('error')} "
                      f"{result.execution.get('cause', '')}[/red]")
    return 0 if ok else 1


def _chaos(args: argparse.Namespace) -> int:
    from bulkmail_local.chaos import run_chaos

    console = Console(stderr=True)
    seeds = range(args.seed, args.seed + args.seeds)
    results = []
    for seed in seeds:
        outbox = Path(args.outbox) / f"seed-{seed}"
        result = run_chaos(contacts=args.contacts, seed=seed, outbox=outbox)
        results.append(result)
        console.print(f"seed {seed:>4} {result['scenario']:<18} {'ok ' if result['ok'] else 'BAD'} "
                      f"sent {result['final']['sent_count']} failed {result['final']['failed_count']} "
                      f"skipped {result['final']['skipped_count']} · duplicates {result['duplicates']} "
                      f"(crash window {result['crash_window_duplicates']}+{result['crash_window_unrecorded']}) · lost {result['lost']} · "
                      f"counter mismatches {result['counter_mismatches']} · faults {sum(result['faults_injected'].values())}")
    if args.json:
        if len(results) == 1:
            print(json.dumps(results[0], sort_keys=True))
        else:
            totals = {k: sum(r[k] for r in results) for k in ("duplicates", "crash_window_duplicates", "lost",
                                                              "counter_mismatches", "crash_window_unrecorded")}
            faults: dict[str, int] = {}
            for r in results:
                for k, v in r["faults_injected"].items():
                    faults[k] = faults.get(k, 0) + v
            print(json.dumps({"seeds": len(results), "ok": sum(r["ok"] for r in results), **totals,
                              "faults_injected": faults, "results": results}, sort_keys=True))
    return 0 if all(r["ok"] for r in results) else 1


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("each size must be 1 or more")
    return sizes


def _bench(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.campaigns import run_bench
    from bulkmail_local.bench.report import print_report

    console = Console(stderr=args.json, width=None if sys.stderr.isatty() else 132)  # wide tables in logs
    result = run_bench(args.sizes, seed_contacts=args.seed_contacts or None, outbox=Path(args.outbox),
                       progress=lambda line: console.print(f"[dim]{line}[/dim]"))
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
        f"{result['seconds']} s · throttled {result['throttled']} · sent {result['sent']} · failed {result['failed']}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def _redrive(args: argparse.Namespace) -> int:
    import boto3

    from bulkmail.adapters import queue

    console = Console(stderr=True)
    queue_url, dlq_url = args.queue_url, args.dlq_url
    if args.stack:
        cfn = boto3.client("cloudformation", endpoint_url=args.endpoint_url)
        outputs = {o["OutputKey"]: o["OutputValue"]
                   for o in cfn.describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])}
        queue_url, dlq_url = outputs.get("SendQueueUrl"), outputs.get("SendDeadLetterQueueUrl")
    if not (queue_url and dlq_url):
        console.print("[red]give --stack NAME, or both --queue-url and --dlq-url[/red]")
        return 2
    moved = queue.redrive(dlq_url, queue_url, sqs=boto3.client("sqs", endpoint_url=args.endpoint_url))
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
        with LocalStack(api_port=args.api_port, aws_port=args.aws_port, outbox=Path(args.outbox),
                        state_dir=Path(args.state_dir), reset=args.reset, worker_timeout=args.worker_timeout) as stack:
            rt = stack.runtime
            console.print(f"[bold]bulkmail serve[/bold] · dashboard {stack.api_url}/ · API {stack.api_url} · "
                          f"AWS {stack.aws_url} · outbox {args.outbox}/")
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
        console.print(f"[red]{exc}[/red]")
        return 1
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
        console.print(f"[red]cannot find the API of stack {args.stack}: {exc}[/red]")
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with DashboardProxy(api_url, port=args.port) as proxy:
            console.print(f"[bold]bulkmail dashboard[/bold] · {proxy.url}/ · API {api_url} (each request signed "
                          f"with your AWS credentials) · Ctrl-C stops")
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


def _api_call(fn) -> int:
    from bulkmail_local.client import ApiFailure
    try:
        result = fn()
    except ApiFailure as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        return 1
    except OSError as exc:
        Console(stderr=True).print(f"[red]cannot reach the API: {exc}[/red]")
        return 1
    if result is not None:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


def _contacts_import(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    return _api_call(lambda: _client(args).request("POST", "/contacts/import", body=data,
                                                   headers={"Content-Type": "text/csv"}))


def _campaigns_send(args: argparse.Namespace) -> int:
    campaign = {"campaign_name": args.name, "subject": args.subject, "from_email": args.from_email,
                "body": Path(args.body_file).read_text()}
    if args.html_file:
        campaign["body_html"] = Path(args.html_file).read_text()
    if args.list:
        campaign["list"] = args.list
    if args.at:
        campaign["send_at"] = args.at
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    return _api_call(lambda: _client(args).request("POST", "/campaigns", json_body=campaign, headers=headers))


_FINAL = {"completed", "cancelled", "failed"}


def _campaigns_status(args: argparse.Namespace) -> int:
    import time

    from bulkmail_local.client import ApiFailure

    client = _client(args)
    path = f"/campaigns/{args.campaign_id}"
    if not args.watch:
        return _api_call(lambda: client.request("GET", path))
    console = Console(stderr=True)
    deadline = time.monotonic() + args.timeout
    record: dict = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · skipped {task.fields[skipped]}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("waiting", total=None, sent=0, failed=0, skipped=0)
        while time.monotonic() < deadline:
            try:
                record = client.request("GET", path)
            except ApiFailure as exc:
                if exc.status != 404:  # 404 until the workflow has stored the campaign
                    console.print(f"[red]{exc}[/red]")
                    return 1
            else:
                bar.update(task, description=record["status"], total=record.get("total_contacts") or None,
                           completed=record.get("processed_count", 0), sent=record.get("sent_count", 0),
                           failed=record.get("failed_count", 0), skipped=record.get("skipped_count", 0))
                if record["status"] in _FINAL:
                    break
            time.sleep(args.interval)
        else:
            console.print(f"[red]still {record.get('status', 'unknown')} after {args.timeout:.0f} s[/red]")
            return 1
    print(json.dumps(record, indent=2, sort_keys=True, default=str))
    return 0 if record["status"] == "completed" else 1


def _campaigns_action(args: argparse.Namespace) -> int:
    return _api_call(lambda: _client(args).request("POST", f"/campaigns/{args.campaign_id}/{args.action}"))


def _trace(args: argparse.Namespace) -> int:
    from bulkmail_local.client import ApiFailure

    try:
        trace = _client(args).request("GET", f"/campaigns/{args.campaign_id}/trace")
    except ApiFailure as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        return 1
    table = Table(title=f"{args.campaign_id} · {trace['execution_arn'].rsplit(':', 1)[-1]} · {trace['execution_status']}")
    for column in ("#", "state", "at (s)", "took (s)"):
        table.add_column(column, justify="right" if column != "state" else "left")
    first = trace["steps_omitted"] + 1
    for i, step in enumerate(trace["steps"], first):
        table.add_row(str(i), step["state"], f"{step['started']:.3f}",
                      "running" if step["seconds"] is None else f"{step['seconds']:.3f}")
    console = Console()
    if trace["steps_omitted"]:
        console.print(f"(the first {trace['steps_omitted']} steps are left out)")
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bulkmail", description="Serverless bulk email campaigns on AWS.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a real campaign on the embedded runtime (no AWS account needed)")
    demo.add_argument("--contacts", type=int, metavar="N",
                      help="generate N contacts instead of importing events/contacts.json")
    demo.add_argument("--json", action="store_true", help="print the final campaign record as JSON on the last line")
    demo.add_argument("--outbox", default="outbox", help="where sent mail is written as .eml (default: outbox/)")
    demo.set_defaults(run=_demo)

    chaos = commands.add_parser("chaos", help="run campaigns under injected faults and audit the outcome")
    chaos.add_argument("--contacts", type=int, default=300, metavar="N")
    chaos.add_argument("--seed", type=int, default=1, help="first seed (faults are reproducible per seed)")
    chaos.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds to run")
    chaos.add_argument("--outbox", default="outbox/chaos", help="sent mail, as .eml, under DIR/seed-S/")
    chaos.add_argument("--json", action="store_true", help="last stdout line: the audit as one JSON object")
    chaos.set_defaults(run=_chaos)

    dlq = commands.add_parser("dlq", help="the send queue's dead-letter queue").add_subparsers(dest="dlq", required=True)
    redrive = dlq.add_parser("redrive", help="move dead-lettered batches back to the send queue; their "
                                             "recipients (recorded as failed, dead-lettered) are sent again")
    redrive.add_argument("--stack", help="a deployed stack's name (its outputs give the queue URLs)")
    redrive.add_argument("--queue-url")
    redrive.add_argument("--dlq-url")
    redrive.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:4566 for `bulkmail serve`")
    redrive.set_defaults(run=_redrive)

    bench_command = commands.add_parser(
        "bench", help="campaigns at several sizes on the embedded runtime: time, AWS requests and cost per email, "
                      "against the seed's per-email design")
    bench_command.add_argument("--sizes", type=_sizes, default=[2000, 10000, 50000],
                               help="contacts per campaign, comma-separated (default 2000,10000,50000)")
    bench_command.add_argument("--seed-contacts", type=int, default=2000,
                               help="contacts for the seed design's run (0 skips it; default 2000)")
    bench_command.add_argument("--outbox", default="outbox/bench")
    bench_command.add_argument("--json", action="store_true", help="the last line of stdout is the result as JSON")
    bench_command.set_defaults(run=_bench)
    bench = bench_command.add_subparsers(dest="bench")
    pacing = bench.add_parser("pacing", help="a campaign against an SES that throttles above --rate")
    pacing.add_argument("--rate", type=float, required=True, help="emails per second (SES maximum send rate)")
    pacing.add_argument("--seconds", type=float, default=20)
    pacing.add_argument("--outbox", default="outbox/bench")
    pacing.add_argument("--json", action="store_true")
    pacing.set_defaults(run=_bench_pacing)

    serve = commands.add_parser("serve", help="run the whole stack locally: the API, an AWS endpoint, workers")
    serve.add_argument("--api-port", type=int, default=8000, help="the management API's port (default 8000)")
    serve.add_argument("--aws-port", type=int, default=4566, help="the emulated AWS endpoint's port (default 4566)")
    serve.add_argument("--outbox", default="outbox", help="where sent mail is written as .eml (default: outbox/)")
    serve.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                       help=f"where the emulated account is kept across restarts (default: {DEFAULT_STATE_DIR}/)")
    serve.add_argument("--reset", action="store_true", help="start with an empty account (deletes the state kept in --state-dir)")
    serve.add_argument("--worker-timeout", type=_positive_int, metavar="SECONDS",
                       help="the send worker's timeout (default: the template's 120 s); a batch held by a killed "
                            "worker is sent again 1.5 × this later")
    serve.set_defaults(run=_serve)

    dashboard = commands.add_parser("dashboard", help="the web dashboard for a deployed stack, on 127.0.0.1 "
                                                      "(API calls signed with your AWS credentials)")
    where = dashboard.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the deployed stack's name (its ApiUrl output is the API)")
    where.add_argument("--api-url", help="the management API's URL, instead of --stack")
    dashboard.add_argument("--port", type=int, default=8080, help="the local port (default 8080)")
    dashboard.set_defaults(run=_dashboard)

    def api_options(p: argparse.ArgumentParser) -> None:
        from bulkmail_local.client import DEFAULT_API_URL
        p.add_argument("--api-url", default=os.environ.get("BULKMAIL_API_URL", DEFAULT_API_URL),
                       help="the management API (default: $BULKMAIL_API_URL or bulkmail serve's)")

    contacts = commands.add_parser("contacts", help="manage contacts").add_subparsers(dest="action", required=True)
    imp = contacts.add_parser("import", help="import a CSV file (email, first_name, last_name, company, lists)")
    imp.add_argument("file")
    api_options(imp)
    imp.set_defaults(run=_contacts_import)

    campaigns = commands.add_parser("campaigns", help="send and steer campaigns").add_subparsers(dest="action", required=True)
    send = campaigns.add_parser("send", help="start a campaign (now, or --at a time)")
    send.add_argument("--name", required=True)
    send.add_argument("--subject", required=True)
    send.add_argument("--body-file", required=True)
    send.add_argument("--html-file")
    send.add_argument("--from", dest="from_email", default="noreply@example.com")
    send.add_argument("--list", help="send to this list's subscribed contacts (default: every subscribed contact)")
    send.add_argument("--at", help="ISO-8601 time with offset, e.g. 2026-12-01T09:00:00+01:00")
    send.add_argument("--idempotency-key", help="retrying with the same key never starts a second campaign")
    api_options(send)
    send.set_defaults(run=_campaigns_send)
    status = campaigns.add_parser("status", help="a campaign's record, counters and progress")
    status.add_argument("campaign_id")
    status.add_argument("--watch", action="store_true", help="a progress bar until the campaign ends")
    status.add_argument("--timeout", type=float, default=3600, help="give up watching after this many seconds")
    status.add_argument("--interval", type=float, default=0.5, help="seconds between polls when watching")
    api_options(status)
    status.set_defaults(run=_campaigns_status)
    for action in ("pause", "resume", "cancel", "resend-failed"):
        p = campaigns.add_parser(action, help=f"{action} a campaign")
        p.add_argument("campaign_id")
        api_options(p)
        p.set_defaults(run=_campaigns_action)

    trace = commands.add_parser("trace", help="a campaign's path through the workflow, with timings")
    trace.add_argument("campaign_id")
    api_options(trace)
    trace.set_defaults(run=_trace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
