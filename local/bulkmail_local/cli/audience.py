"""`bulkmail contacts`, `lists` and `segments`: the audience, through the management API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from bulkmail_local.cli.api import api, api_options, client, fields_table, output
from bulkmail_local.cli.common import CliError, Commands, command, command_group, read_bytes


def register(commands: Commands) -> None:
    contacts = command_group(commands, "contacts", "import and look up contacts")
    imp = command(
        contacts,
        "import",
        "import a CSV file (header: email, first_name, last_name, company, lists; lists separated by ;)",
        _contacts_import,
    )
    imp.add_argument("file", help="the CSV file")
    get = command(contacts, "get", "one contact: status (subscribed, unsubscribed, …), lists, fields", _contacts_get)
    get.add_argument("email")
    export = command(contacts, "export", "every contact (of --list) as CSV, custom fields as columns", _contacts_export)
    export.add_argument("--list", help="only this list's contacts")
    export.add_argument("--output", "-o", help="a file to write (default: stdout)")

    lists = command_group(commands, "lists", "lists: create, show with member counts, delete")
    command(lists, "list", "every list with its member and subscribed counts", _lists)
    create = command(lists, "create", "create a list", _lists)
    create.add_argument("list_id")
    create.add_argument("--name", help="a display name (default: the id)")
    create.add_argument("--description")
    for action, text in (("get", "one list with its counts"), ("delete", "delete a list (members stay on others)")):
        command(lists, action, text, _lists).add_argument("list_id")

    segments = command_group(commands, "segments", "segments: contacts of lists matching conditions")
    command(segments, "list", "every segment", _segments)
    create = command(segments, "create", "create a segment", _segments)
    create.add_argument("segment_id")
    create.add_argument("--list", dest="lists", action="append", required=True, help="a list it draws on (repeatable)")
    create.add_argument(
        "--match",
        action="append",
        type=_condition,
        metavar="FIELD:OP[:VALUE]",
        help="a condition, ANDed (repeatable); OP: eq, neq, in, contains, exists, lt, gt; e.g. plan:eq:pro",
    )
    for action, text in (
        ("get", "one segment"),
        ("count", "how many subscribed contacts it matches now, and the read units that cost"),
        ("delete", "delete a segment"),
    ):
        command(segments, action, text, _segments).add_argument("segment_id")

    for group in (contacts, lists, segments):  # each command calls the API: its options come last in its help
        for each in group.choices.values():
            api_options(each)


def _contacts_import(args: argparse.Namespace) -> int:
    data = read_bytes(args.file, "CSV file")
    result = api(args, "POST", "/contacts/import", body=data, headers={"Content-Type": "text/csv"})

    def human(console: Console) -> None:
        console.print(f"imported {result['imported']} contact(s) from {args.file}")
        if result["rejected"]:
            table = Table(title=f"{len(result['rejected'])} row(s) rejected", title_justify="left")
            for column in ("line", "email", "reason"):
                table.add_column(column)
            for row in result["rejected"]:
                table.add_row(str(row["line"]), row.get("email") or "", row["error"])
            console.print(table)

    return output(args, result, human)


def _contacts_get(args: argparse.Namespace) -> int:
    from bulkmail.segments import CONTACT_FIELDS  # not at the top: it loads the JSON schemas, slow at every start

    contact = api(args, "GET", f"/contacts/{_path_part(args.email)}")
    # A contact's own fields (those a segment matches), then its lists, attributes and suppression.
    rows = (*CONTACT_FIELDS, "lists", "attributes", "suppressed_at", "suppression")
    return output(args, contact, lambda console: console.print(fields_table(contact["email"], contact, rows)))


def _contacts_export(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    from bulkmail_local.client import ApiUnreachable

    query = f"?{urlencode({'list': args.list})}" if args.list else ""
    try:
        status, _, raw = client(args).send("GET", f"/contacts/export{query}")
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


def _path_part(text: str) -> str:
    return quote(text, safe="")


def _read_or_delete(args: argparse.Namespace, collection: str, item_id: str | None) -> Any:
    """The answer to `list` (no id), `get`, `count` or `delete` ({"deleted": id}) on /lists or /segments."""
    if item_id is None:
        return api(args, "GET", f"/{collection}")
    path = f"/{collection}/{_path_part(item_id)}"
    if args.action == "delete":
        api(args, "DELETE", path)
        return {"deleted": item_id}
    return api(args, "GET", f"{path}/count" if args.action == "count" else path)


def _lists(args: argparse.Namespace) -> int:
    if args.action == "create":
        body = {"list_id": args.list_id, **({"name": args.name} if args.name else {})}
        if args.description:
            body["description"] = args.description
        result = api(args, "POST", "/lists", json_body=body)
    else:
        result = _read_or_delete(args, "lists", getattr(args, "list_id", None))

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

    return output(args, result, human)


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
        result = api(args, "POST", "/segments", json_body=body)
    else:
        result = _read_or_delete(args, "segments", getattr(args, "segment_id", None))

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

    return output(args, result, human)
