"""The SQS → Lambda event source mapping, emulated faithfully (moto's own invokes one record per
SendMessage, synchronously). Batch size, batching window, ReportBatchItemFailures, visibility
timeout and redrive (moto applies maxReceiveCount on receive), MaximumConcurrency as poller threads.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkmail_local.runtime.iam import acting_as

logger = logging.getLogger(__name__)

# An empty receive backs off as Lambda's long polling waits: 50 ms, doubling to 2 s, and a message
# sent to the queue wakes the pollers at once (wake()), as it ends a long poll. The cap bounds how late
# a message whose visibility timeout lapsed is picked up; polling an idle queue faster only burns CPU.
_IDLE_SLEEP, _MAX_IDLE_SLEEP = 0.05, 2.0


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event carries it (camelCase), not as ReceiveMessage does."""
    attribute: dict[str, Any] = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


@dataclass(frozen=True)
class MappingConfig:
    queue_url: str
    queue_arn: str
    function: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = 2
    role_arn: str | None = None  # Lambda polls the queue with the function's execution role


class SqsEventSource:
    def __init__(self, config: MappingConfig, sqs, invoke: Callable[[dict], Any], region: str):
        self.config = config
        self.sqs = sqs
        self.invoke = invoke
        self.region = region
        self.enabled = threading.Event()
        self.enabled.set()
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._threads: list[threading.Thread] = []
        self.batches = 0
        self.failed_records = 0

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        # As CreateEventSourceMapping does: a role that cannot read the queue fails here, not later.
        with acting_as(self.config.role_arn):
            self.sqs.get_queue_attributes(QueueUrl=self.config.queue_url, AttributeNames=["VisibilityTimeout"])
        for i in range(self.config.maximum_concurrency):
            t = threading.Thread(target=self._run, name=f"esm-{self.config.function}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        """Something was sent to the queue: the idle pollers receive now."""
        self._woken.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._woken.set()
        self.enabled.set()
        for t in self._threads:
            t.join(timeout)

    def _run(self) -> None:
        idle = _IDLE_SLEEP
        while not self._stop.is_set():
            self.enabled.wait()
            if self._stop.is_set():
                return
            try:
                worked = self.poll_once()
            except Exception:  # a poller must survive anything a batch does; the error is logged
                logger.exception("event source poll failed")
                worked = False
            if worked:
                idle = _IDLE_SLEEP
            elif self._woken.wait(idle):
                self._woken.clear()
                idle = _IDLE_SLEEP
            else:
                idle = min(_MAX_IDLE_SLEEP, idle * 2)

    # --- one batch -------------------------------------------------------------------------------
    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.config.batching_window
        while len(messages) < self.config.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=min(10, self.config.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            messages.extend(got)
            if not got:
                if not messages or time.monotonic() >= deadline:
                    break
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return messages

    def _record(self, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {
                name: _lambda_attribute(value) for name, value in m.get("MessageAttributes", {}).items()
            },
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.config.queue_arn,
            "awsRegion": self.region,
        }

    def poll_once(self) -> bool:
        with acting_as(self.config.role_arn):
            return self._poll_once()

    def _poll_once(self) -> bool:
        messages = self._receive()
        if not messages:
            return False
        self.batches += 1
        failed = self._invoke([self._record(m) for m in messages])
        self.failed_records += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        return True

    def _invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """Message ids to leave on the queue, by Lambda's rules for the function's response."""
        ids = {r["messageId"] for r in records}
        try:
            response = self.invoke({"Records": records})
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 — a function error (or a crashed process) fails the whole batch
            logger.info("batch failed as a whole: %r", exc)
            return ids
        if not self.config.report_batch_item_failures:
            return set()
        failures = (response or {}).get("batchItemFailures", []) if isinstance(response, dict) else []
        failed = {f.get("itemIdentifier") for f in failures}
        if not failed <= ids:  # an unknown or empty identifier: Lambda treats the batch as failed
            return ids
        return failed
