"""The commands that call the management API: its URL option, the call, and what it answers as a table
for people or, with --json, as JSON for programs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from bulkmail_local.cli.common import CliError, json_option

if TYPE_CHECKING:
    from bulkmail_local.client import ApiClient


def api_options(parser: argparse.ArgumentParser) -> None:
    import os

    from bulkmail_local.client import DEFAULT_API_URL

    parser.add_argument(
        "--api-url",
        default=os.environ.get("BULKMAIL_API_URL", DEFAULT_API_URL),
        help="the management API: bulkmail serve's, or a deployed stack's ApiUrl (signed with your "
        "AWS credentials); $BULKMAIL_API_URL sets the default",
    )
    json_option(parser)


def client(args: argparse.Namespace) -> ApiClient:
    from bulkmail_local.client import ApiClient

    return ApiClient(base_url=args.api_url)


def api(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; its failure as a CliError naming what to do."""
    from bulkmail_local.client import ApiFailure, ApiUnreachable, CredentialsMissing

    try:
        return client(args).request(method, path, **kwargs)
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


def output(args: argparse.Namespace, result: Any, human: Callable[[Console], None]) -> int:
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    else:
        human(Console())
    return 0


def fields_table(title: str, record: dict[str, Any], names: tuple[str, ...]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    for name in names:
        value = record.get(name)
        if value not in (None, "", [], {}):
            table.add_row(name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
    return table
