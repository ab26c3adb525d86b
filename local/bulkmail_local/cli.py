"""The `bulkmail` command."""
from __future__ import annotations

import argparse
import json
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
                      f"(crash window {result['crash_window_duplicates']}) · lost {result['lost']} · "
                      f"counter mismatches {result['counter_mismatches']} · faults {sum(result['faults_injected'].values())}")
    if args.json:
        if len(results) == 1:
            print(json.dumps(results[0], sort_keys=True))
        else:
            totals = {k: sum(r[k] for r in results) for k in ("duplicates", "crash_window_duplicates", "lost",
                                                              "counter_mismatches")}
            faults: dict[str, int] = {}
            for r in results:
                for k, v in r["faults_injected"].items():
                    faults[k] = faults.get(k, 0) + v
            print(json.dumps({"seeds": len(results), "ok": sum(r["ok"] for r in results), **totals,
                              "faults_injected": faults, "results": results}, sort_keys=True))
    return 0 if all(r["ok"] for r in results) else 1


def _bench_pacing(args: argparse.Namespace) -> int:
    from bulkmail_local.bench import bench_pacing

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

    bench = commands.add_parser("bench", help="benchmarks on the embedded runtime").add_subparsers(
        dest="bench", required=True)
    pacing = bench.add_parser("pacing", help="a campaign against an SES that throttles above --rate")
    pacing.add_argument("--rate", type=float, required=True, help="emails per second (SES maximum send rate)")
    pacing.add_argument("--seconds", type=float, default=20)
    pacing.add_argument("--outbox", default="outbox/bench")
    pacing.add_argument("--json", action="store_true")
    pacing.set_defaults(run=_bench_pacing)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
