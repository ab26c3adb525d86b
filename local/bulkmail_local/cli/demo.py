"""`bulkmail demo` and `bulkmail chaos`: campaigns on the embedded runtime, no AWS account needed."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bulkmail_local.cli.common import CliError, Commands, campaign_counts, campaign_progress, command, outbox_option


def register(commands: Commands) -> None:
    demo = command(commands, "demo", "run a real campaign on the embedded runtime (no AWS account needed)", _demo)
    demo.add_argument(
        "--contacts", type=int, metavar="N", help="generate N contacts instead of importing events/contacts.json"
    )
    demo.add_argument("--json", action="store_true", help="print the final campaign record as JSON on the last line")
    outbox_option(demo, "outbox")

    chaos = command(commands, "chaos", "run campaigns under injected faults and audit the outcome", _chaos)
    chaos.add_argument("--contacts", type=int, default=300, metavar="N", help="contacts per campaign")
    chaos.add_argument("--seed", type=int, default=1, help="first seed (faults are reproducible per seed)")
    chaos.add_argument("--seeds", type=int, default=1, help="how many consecutive seeds to run")
    chaos.add_argument("--outbox", default="outbox/chaos", help="sent mail, as .eml, under DIR/seed-S/")
    chaos.add_argument("--json", action="store_true", help="last stdout line: the audit as one JSON object")


def _demo(args: argparse.Namespace) -> int:
    from bulkmail_local.demo import run_demo, summarise_path

    # With --json, stdout carries only the final record: everything for people goes to stderr.
    console = Console(stderr=args.json)
    if args.contacts is not None and args.contacts < 0:
        raise CliError("--contacts must be 0 or more", 2)
    last: dict[str, Any] = {}
    with (
        _stopping_on_ctrl_c(console, "stopping the demo: the batch being sent finishes, nothing more is sent …"),
        campaign_progress(console, transient=False) as bar,
    ):
        task = bar.add_task("queued", total=None, sent=0, failed=0, skipped=0)

        def progress(record: dict[str, Any]) -> None:
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
                f"(last seen: {campaign_counts(last)}); its emulated account is gone (a demo keeps nothing)",
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
