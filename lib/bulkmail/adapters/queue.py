"""The send queue: batched enqueueing of references, and visibility backoff for retries."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import boto3

from bulkmail.errors import QueueRefused
from bulkmail.models import BatchMessage

_SQS_BATCH = 10
_FAILED_ENTRY_RETRIES = 4
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit


@lru_cache(maxsize=1)
def _sqs() -> Any:
    return boto3.client("sqs")


class SendQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def send(self, messages: list[BatchMessage], delay_seconds: int = 0) -> None:
        """SendMessageBatch, ten at a time; entries SQS refuses are retried, then it raises.
        `delay_seconds` (at most SQS's 900) keeps them invisible that long."""
        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        for start in range(0, len(messages), _SQS_BATCH):
            entries = {
                str(i): json.dumps(m.to_body(), separators=(",", ":"))
                for i, m in enumerate(messages[start : start + _SQS_BATCH])
            }
            for attempt in range(_FAILED_ENTRY_RETRIES + 1):
                response = _sqs().send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": k, "MessageBody": v, **({"DelaySeconds": delay} if delay else {})}
                        for k, v in entries.items()
                    ],
                )
                entries = {f["Id"]: entries[f["Id"]] for f in response.get("Failed", [])}
                if not entries:
                    break
                if attempt == _FAILED_ENTRY_RETRIES:
                    raise QueueRefused(f"SQS refused {len(entries)} messages: {response['Failed'][0].get('Message')}")
                time.sleep(0.1 * 2**attempt)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a message visible again after `seconds` instead of the queue's full timeout."""
        _sqs().change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


def redrive(dead_letter_queue_url: str, queue_url: str, max_messages: int = 100_000, sqs: Any = None) -> int:
    """Move messages from the dead-letter queue back to the send queue; returns how many moved."""
    sqs = sqs or _sqs()
    moved = 0
    while moved < max_messages:
        messages = sqs.receive_message(QueueUrl=dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            break
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)]
        )
        sent = {int(e["Id"]) for e in response.get("Successful", [])}
        sqs.delete_message_batch(
            QueueUrl=dead_letter_queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": messages[i]["ReceiptHandle"]} for i in sorted(sent)],
        )
        if response.get("Failed"):
            raise RuntimeError(
                f"SQS refused {len(response['Failed'])} redriven messages: {response['Failed'][0].get('Message')}"
            )
        moved += len(sent)
    return moved
