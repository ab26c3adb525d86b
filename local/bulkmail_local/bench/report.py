"""The benchmark's figures as tables, for people (the JSON has them all)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_report(result: dict[str, Any], console: Console) -> None:
    sizes = result["sizes"]
    runs = Table(title="Campaigns on the embedded runtime (one process, this machine)")
    for column in (
        "contacts",
        "whole run",
        "send phase",
        "emails/s",
        "non-SES req/email",
        "DynamoDB RU / WU per email",
        "transitions",
        "history events",
    ):
        runs.add_column(column, justify="right")
    for r in sizes:
        w = r["workflow"]
        runs.add_row(
            f"{r['contacts']:,}",
            f"{r['whole_seconds']} s",
            f"{r['send_seconds']} s",
            f"{r['emails_per_second']}",
            f"{r['non_ses_requests_per_email']}",
            f"{r['dynamodb_units_per_email']['read']} / {r['dynamodb_units_per_email']['write']}",
            f"{w['state_transitions']}",
            f"{w['history_events']}",
        )
    seed = result["seed_design"]
    if seed:
        runs.add_row(
            f"seed design {seed['contacts']:,}",
            f"{seed['whole_seconds']} s",
            "",
            f"{seed['emails_per_second']}",
            f"{seed['non_ses_requests_per_email']}",
            "",
            "",
            "",
        )
    console.print(runs)

    largest = sizes[-1]
    requests = Table(
        title=f"AWS requests per email at {largest['contacts']:,} contacts"
        + (" (and the seed design's)" if seed else "")
    )
    requests.add_column("operation")
    requests.add_column("bulkmail", justify="right")
    if seed:
        requests.add_column("seed design", justify="right")
    ops = sorted(set(largest["requests_per_email"]) | set(seed["requests_per_email"] if seed else ()))
    for op in ops:
        row = [op, f"{largest['requests_per_email'].get(op, 0):.4f}"]
        if seed:
            row.append(f"{seed['requests_per_email'].get(op, 0):.4f}")
        requests.add_row(*row)
    invocations = sum(largest["lambda_invocations"].values()) / max(1, largest["sent"])
    requests.add_row(
        "lambda invocations",
        f"{invocations:.4f}",
        *([f"{seed['lambda_invocations'] / max(1, seed['sent']):.4f}"] if seed else []),
    )
    console.print(requests)

    w = largest["workflow"]
    console.print(
        f"Step Functions at {largest['contacts']:,}: {w['pages']} pages × {w['events_per_page']} events, "
        f"{w['polls']} polls × {w['events_per_poll']} events, {w['events_fixed']} fixed "
        f"(transitions: {w['transitions_per_page']}/page, {w['transitions_per_poll']}/poll)"
    )

    d = result["deployment"]
    cost = Table(
        title=f"Projected cost per 1M emails (USD, list prices of {result['prices_as_of']}; "
        f"template defaults: {d['send_rate']:g}/s, {d['worker_concurrency']} workers × "
        f"{d['worker_memory_mb']} MB, polls every {d['poll_seconds']:g} s)"
    )
    cost.add_column("line")
    for r in sizes:
        cost.add_column(f"{r['contacts']:,}", justify="right")
    for line in largest["cost_per_million"]:
        fmt = "{:.1%}" if line == "non_ses_share_of_ses" else "{:.4f}"
        cost.add_row(line, *(fmt.format(r["cost_per_million"][line]) for r in sizes))
    console.print(cost)
    console.print(
        f"Content {result['body_bytes']:,} bytes · render + MIME {result['render_ms_per_email']} ms/email · busiest "
        f"item {largest['busiest_item']['table']} {largest['busiest_item']['key']}: "
        f"{result['busiest_item_write_units_per_email']} write units/email (ceiling "
        f"{result['ceiling_emails_per_second']} emails/s at 30 % of its 1,000/s) · audience reads "
        f"{result['audience_read_units']} units · non-SES ${result['non_ses_cost_per_million']} per 1M "
        f"(SES ${result['ses_cost_per_million']})"
    )
    if result["speedup_vs_seed"]:
        console.print(
            f"[bold]{result['speedup_vs_seed']}×[/bold] the seed design's emails/s at {seed['contacts']:,} contacts"
        )
