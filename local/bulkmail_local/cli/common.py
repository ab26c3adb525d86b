"""What every `bulkmail` command shares: its one-line errors, the parser and its help, reading the
user's files, a campaign's progress."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# What add_subparsers returns: where each module adds its commands (a string: not subscriptable at run time).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Run = Callable[[argparse.Namespace], int]  # a command's handler: its exit status


class CliError(Exception):
    """A one-line message for the user (what went wrong, and what to do); `code` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def read_bytes(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(
            f"cannot read the {what} {path}: {exc.strerror or exc} — give the path of an existing file"
        ) from None


def read_text(path: str, what: str) -> str:
    try:
        return read_bytes(path, what).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"the {what} {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, with where to read more."""

    def error(self, message: str) -> NoReturn:  # argparse's hook
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class DefaultsShown(argparse.HelpFormatter):
    """Each option's default at the end of its help, when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def command(group: Commands, name: str, text: str, run: Run | None = None) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=text, description=text, formatter_class=DefaultsShown)
    if run:
        parser.set_defaults(run=run)
    return parser


def command_group(group: Commands, name: str, text: str, dest: str = "action") -> Commands:
    """A command whose actions are commands of their own, e.g. `bulkmail lists create`."""
    return command(group, name, text).add_subparsers(dest=dest, required=True, metavar="ACTION")


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def outbox_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--outbox", default=default, help="where sent mail is written as .eml")


def campaign_progress(console: Console, *, transient: bool) -> Progress:
    """A campaign's progress bar: its status, processed of total, and its sent, failed and skipped counts."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · skipped {task.fields[skipped]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def campaign_counts(record: dict[str, Any]) -> str:
    return (
        f"campaign {record.get('campaign_id')} {record.get('status')}: {record.get('sent_count', 0)} sent, "
        f"{record.get('failed_count', 0)} failed, {record.get('skipped_count', 0)} skipped of "
        f"{record.get('total_contacts', 0)}"
    )


def aws_failure(exc: Exception, endpoint_url: str | None) -> CliError:
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
