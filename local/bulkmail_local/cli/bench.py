"""`bulkmail bench` and its kinds (pacing, tracking, audience): measured campaigns on the embedded runtime."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bulkmail_local.cli.common import Commands, command, outbox_option


def _result_options(parser: argparse.ArgumentParser) -> None:
    """Every bench writes its mail to the same outbox and can give its result as JSON."""
    outbox_option(parser, "outbox/bench")
    parser.add_argument("--json", action="store_true", help="the last line of stdout is the result as JSON")


def _print_result(args: argparse.Namespace, result: dict[str, Any], line: str) -> None:
    """The result in a line for people (on stderr with --json) and, with --json, as JSON on stdout's last line."""
    Console(stderr=args.json).print(line)
    if args.json:
        print(json.dumps(result, sort_keys=True))


def register(commands: Commands) -> None:
    bench_command = command(
        commands,
        "bench",
        "campaigns at several sizes on the embedded runtime: time, AWS requests "
        "and cost per email, against the seed's per-email design",
        _bench,
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
    bench = bench_command.add_subparsers(dest="bench", metavar="KIND")
    pacing = command(bench, "pacing", "a campaign against an SES that throttles above --rate", _bench_pacing)
    pacing.add_argument("--rate", type=float, required=True, help="emails per second (SES maximum send rate)")
    pacing.add_argument("--seconds", type=float, default=20, help="how long to send")
    tracking = command(
        bench, "tracking", "a tracked campaign, opens and clicks: what tracking adds per 1M emails", _bench_tracking
    )
    tracking.add_argument("--contacts", type=int, default=2000, help="contacts in the campaign")
    tracking.add_argument("--opens", type=float, default=0.3, help="share of the recipients who open")
    tracking.add_argument("--clicks", type=float, default=0.05, help="share of the recipients who click")
    audience = command(
        bench, "audience", "the read units of a campaign to a segment (the membership index)", _bench_audience
    )
    audience.add_argument("--contacts", type=int, default=50_000, help="contacts in the table")
    audience.add_argument("--members", type=int, default=1_000, help="of them on the segment's list")
    audience.add_argument("--segment", type=int, default=1_000, help="of those matching the segment")
    for each in (bench_command, *bench.choices.values()):  # after each one's own options in its help
        _result_options(each)


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


def _bench_tracking(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.tracking import bench_tracking

    result = bench_tracking(args.contacts, opens=args.opens, clicks=args.clicks, outbox=Path(args.outbox))
    cost = result["cost_per_million"]
    _print_result(
        args,
        result,
        f"{result['sent']:,} sent · opens {args.opens:.0%} · clicks {args.clicks:.0%} · "
        f"{result['feedback_invocations_per_email']} FeedbackFunction invocations per email · "
        f"per 1M emails: SES ${cost['ses']:.2f}, everything else ${cost['non_ses_total']:.2f} "
        f"(DynamoDB writes ${cost['dynamodb_writes']:.2f}, FeedbackFunction ${cost['feedback_lambda']:.2f})",
    )
    return 0 if result["execution"] == "SUCCEEDED" and result["sent"] == args.contacts else 1


def _bench_pacing(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.pacing import bench_pacing

    result = bench_pacing(rate=args.rate, seconds=args.seconds, outbox=Path(args.outbox))
    _print_result(
        args,
        result,
        f"target {result['target']}/s · achieved {result['achieved']}/s ({result['achieved_ratio']:.0%}) over "
        f"{result['seconds']} s · throttled {result['throttled']} · sent {result['sent']} · failed {result['failed']}",
    )
    return 0


def _bench_audience(args: argparse.Namespace) -> int:
    from bulkmail_local.bench.audience import bench_audience

    result = bench_audience(args.contacts, args.members, args.segment, Path(args.outbox))
    _print_result(
        args,
        result,
        f"{result['segment_members']}-member segment of a {result['list_members']}-member list in a "
        f"{result['contacts']}-contact table: sent {result['sent']} · audience read units "
        f"{result['audience_read_units']} {result['read_units_by_function']} · one Scan of the table "
        f"{result['full_table_scan_read_units']}",
    )
    return 0
