"""The `bulkmail` command. Every error is one line on stderr that says what to do; --json gives the
machine-readable form of what is otherwise a table for people. Each module here adds its commands
(`register`) beside the code that runs them."""

from __future__ import annotations

import argparse
import sys

from bulkmail_local.cli import audience, bench, campaigns, demo, dlq, serve
from bulkmail_local.cli.common import CliError, DefaultsShown, Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bulkmail", description="Serverless bulk email campaigns on AWS.", formatter_class=DefaultsShown
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, dlq, bench, serve, audience, campaigns):  # the order --help lists them in
        module.register(commands)
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
