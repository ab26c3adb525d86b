"""`bulkmail campaigns`, `deliveries` and `trace`: send and steer campaigns, and see what became of them."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from bulkmail_local.cli.api import api, api_options, fields_table, output
from bulkmail_local.cli.common import (
    CliError,
    Commands,
    campaign_counts,
    campaign_progress,
    command,
    command_group,
    read_text,
)


def register(commands: Commands) -> None:
    campaigns = command_group(commands, "campaigns", "send and steer campaigns")
    send = command(campaigns, "send", "start a campaign (now, or --at a time)", _campaigns_send)
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
    status = command(campaigns, "status", "a campaign's record, counters and progress", _campaigns_status)
    status.add_argument("campaign_id")
    status.add_argument("--watch", action="store_true", help="a progress bar until the campaign ends")
    status.add_argument("--timeout", type=float, default=3600, help="give up watching after this many seconds")
    status.add_argument("--interval", type=float, default=0.5, help="seconds between polls when watching")
    for action, text in (
        ("pause", "pause a queued or processing campaign (what is being sent finishes)"),
        ("resume", "resume a paused campaign: exactly the recipients not yet sent are sent"),
        ("cancel", "cancel a campaign: every recipient not yet sent is skipped"),
        ("resend-failed", "start a new campaign to this one's failed recipients only"),
    ):
        command(campaigns, action, text, _campaigns_action).add_argument("campaign_id")

    deliveries = command(commands, "deliveries", "a campaign's delivery ledger: each recipient's outcome", _deliveries)
    deliveries.add_argument("campaign_id")
    deliveries.add_argument("--status", choices=("sent", "failed", "skipped"), help="only these outcomes")
    deliveries.add_argument("--limit", type=int, default=50, help="rows per page (1 to 500)")
    deliveries.add_argument("--all", action="store_true", help="every page, not only the first")
    deliveries.add_argument("--next-token", help="the page after the one that printed this token")

    trace = command(commands, "trace", "a campaign's path through the workflow, with timings", _trace)
    trace.add_argument("campaign_id")

    for each in (*campaigns.choices.values(), deliveries, trace):  # each calls the API: its options come last
        api_options(each)


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
        "body": read_text(args.body_file, "body file"),
    }
    if args.html_file:
        campaign["body_html"] = read_text(args.html_file, "HTML file")
    if args.list:
        campaign["list"] = args.list
    if args.segment:
        campaign["segment"] = args.segment
    if args.at:
        campaign["send_at"] = args.at
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    result = api(args, "POST", "/campaigns", json_body=campaign, headers=headers)

    def human(console: Console) -> None:
        when = f"scheduled for {args.at}" if result["status"] == "scheduled" else result["status"]
        console.print(
            f"campaign {result['campaign_id']} {when} — follow it: "
            f"bulkmail campaigns status {result['campaign_id']} --watch"
        )

    return output(args, result, human)


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
    return fields_table(f"Campaign {record['campaign_id']}", record, CAMPAIGN_FIELDS[1:])


def _campaigns_status(args: argparse.Namespace) -> int:
    import time

    path = f"/campaigns/{args.campaign_id}"
    if not args.watch:
        found = api(args, "GET", path)
        return output(args, found, lambda console: console.print(_campaign_table(found)))
    console = Console(stderr=True)
    deadline = time.monotonic() + args.timeout
    record: dict[str, Any] = {}
    try:
        with campaign_progress(console, transient=True) as bar:  # the table follows
            task = bar.add_task("waiting", total=None, sent=0, failed=0, skipped=0)
            while time.monotonic() < deadline:
                record = api(args, "GET", path)
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
                    f"{campaign_counts(record) if record else ''} — watch again, or give --timeout"
                )
    except KeyboardInterrupt:
        raise CliError(
            f"stopped watching; {campaign_counts(record) if record else f'campaign {args.campaign_id}'} goes on "
            f"without you (to stop it: bulkmail campaigns pause or cancel {args.campaign_id})",
            130,
        ) from None
    output(args, record, lambda out: out.print(_campaign_table(record)))
    return 0 if record["status"] == "completed" else 1


def _campaigns_action(args: argparse.Namespace) -> int:
    result = api(args, "POST", f"/campaigns/{args.campaign_id}/{args.action}")

    def human(console: Console) -> None:
        if args.action == "resend-failed":
            console.print(
                f"campaign {result['campaign_id']} {result['status']}: a re-send of {args.campaign_id} "
                f"to its failed recipients — follow it: bulkmail campaigns status {result['campaign_id']} --watch"
            )
        else:
            console.print(f"campaign {args.campaign_id}: {result['previous_status']} → {result['status']}")

    return output(args, result, human)


def _deliveries(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    def page_after(token: str | None) -> dict[str, Any]:
        query = {
            "limit": args.limit,
            **({"status": args.status} if args.status else {}),
            **({"next_token": token} if token else {}),
        }
        return api(args, "GET", f"/campaigns/{args.campaign_id}/deliveries?{urlencode(query)}")

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

    return output(args, result, human)


def _trace(args: argparse.Namespace) -> int:
    trace = api(args, "GET", f"/campaigns/{args.campaign_id}/trace")

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

    return output(args, trace, human)
