"""`bulkmail dlq redrive`: the send queue's dead-lettered batches back to the send queue."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from bulkmail_local.cli.common import CliError, Commands, aws_failure, command, command_group, json_option


def register(commands: Commands) -> None:
    dlq = command_group(commands, "dlq", "the send queue's dead-letter queue", dest="dlq")
    redrive = command(
        dlq,
        "redrive",
        "move dead-lettered batches back to the send queue; their recipients "
        "(recorded as failed, dead-lettered) are sent again",
        _redrive,
    )
    redrive.add_argument("--stack", help="a deployed stack's name (its outputs give the queue URLs)")
    redrive.add_argument("--queue-url", help="the send queue's URL, instead of --stack")
    redrive.add_argument("--dlq-url", help="the dead-letter queue's URL, instead of --stack")
    redrive.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:4566 for `bulkmail serve` (default: AWS itself)")
    json_option(redrive)


def _redrive(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from bulkmail.adapters import queue

    console = Console(stderr=True)
    if not (args.stack or (args.queue_url and args.dlq_url)):
        raise CliError("give --stack NAME, or both --queue-url and --dlq-url", 2)
    try:
        queue_url, dlq_url = args.queue_url, args.dlq_url
        if args.stack:
            cfn = boto3.client("cloudformation", endpoint_url=args.endpoint_url)
            outputs = {
                o["OutputKey"]: o["OutputValue"]
                for o in cfn.describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
            }
            queue_url, dlq_url = outputs.get("SendQueueUrl"), outputs.get("SendDeadLetterQueueUrl")
            if not (queue_url and dlq_url):
                raise CliError(
                    f"stack {args.stack} has no SendQueueUrl / SendDeadLetterQueueUrl outputs: is it a bulkmail stack?"
                )
        moved = queue.redrive(dlq_url, queue_url, sqs=boto3.client("sqs", endpoint_url=args.endpoint_url))
    except (BotoCoreError, ClientError) as exc:
        raise aws_failure(exc, args.endpoint_url) from None
    if args.json:
        print(json.dumps({"moved": moved}))
    else:
        console.print(f"moved {moved} message(s) from the dead-letter queue back to the send queue")
    return 0
