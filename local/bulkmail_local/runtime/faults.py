"""Fault injection at the AWS boundary of the embedded runtime, for `bulkmail chaos`.

Faults are decided at the emulated AWS request, where a real outage or crash would hit:
- a worker crash (the Lambda process dies: nothing after that point runs) right after its batch claim,
  right after SES accepted an email, or right before the ledger transaction;
- SES throttling (TooManyRequests), transient errors, and permanent rejections of some addresses;
- DynamoDB's real write faults on every write path (workers, workflow steps and the state machine's own
  DynamoDB tasks, the API, feedback): TransactionConflictException on a plain write, a
  TransactionCanceledException whose reason is a conflict or throttling, throttling, a 500 — and bursts
  of conflicts on one batch's record that outlast botocore's retries.
Decisions hash (seed, what, key, n-th time) so a seed gives the same faults whatever the thread order.
Crashes and SES faults touch only worker invocations (event source threads).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass

from botocore.awsrequest import AWSResponse

from bulkmail_local.runtime.iam import as_operator
from bulkmail_local.runtime.seams import aws_response

_BATCH_ID = re.compile(rb'"batch_id":\s*\{"S":\s*"([^"]+)"')
_TO = re.compile(rb"^To:.*?<?([^<>\s]+@[^<>\s]+?)>?\s*$", re.MULTILINE | re.IGNORECASE)
_CAMPAIGN = re.compile(rb"^X-Bulkmail-Campaign:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class SimulatedCrash(BaseException):
    """The Lambda process died. A BaseException, so no `except Exception` in the code under test runs."""


@dataclass(frozen=True)
class FaultRates:
    crash_after_claim: float = 0.03
    crash_after_ses_accepted: float = 0.002
    crash_before_record: float = 0.03
    ses_throttle: float = 0.30
    ses_transient: float = 0.03
    ses_reject_address: float = 0.02
    duplicate_delivery: float = 0.10  # a received message is delivered once more (SQS at-least-once)
    dynamodb_conflict: float = 0.04  # per DynamoDB write request
    dynamodb_throttled: float = 0.02
    dynamodb_internal_error: float = 0.01
    dynamodb_record_burst: float = 0.05  # per batch: its record conflicts RECORD_BURST times in a row
    # The workflow steps, the API and feedback write far less often than the workers: their writes
    # meet faults this many times as often, so that every seed exercises them.
    dynamodb_elsewhere_factor: float = 3.0


_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
RECORD_BURST = 12  # longer than botocore's retries (10 attempts): the ledger's own retries must hold on


def _operation(request) -> tuple[str, str]:
    target = request.headers.get("X-Amz-Target")
    if target:
        target = target.decode() if isinstance(target, bytes) else target
        prefix, _, op = target.partition(".")
        return ("dynamodb" if prefix.startswith("DynamoDB") else "sqs" if "SQS" in prefix else prefix, op)
    if "/v2/email/outbound-emails" in request.url:
        return "sesv2", "SendEmail"
    return "", ""


def _body(request) -> bytes:
    body = request.body or b""
    return body.encode() if isinstance(body, str) else bytes(body)


def _error(status: int, code: str, message: str, url: str, **fields) -> AWSResponse:
    # As AWS answers: every response carries a request id (Step Functions' error cause quotes it).
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json", "x-amzn-RequestId": uuid.uuid4().hex}
    # The code in the header (REST-JSON services) and in `__type` (JSON services such as DynamoDB).
    body = {"__type": code, "message": message, **fields}
    return aws_response(url, status, headers, json.dumps(body))


def _component() -> str:
    """Which part of the system makes the current request (for the fault counts)."""
    from bulkmail_local.runtime.lambdas import current_function

    function = current_function()
    if function:
        return function
    return "driver" if threading.current_thread() is threading.main_thread() else "StateMachine"


class ChaosFaults:
    def __init__(self, seed: int, *, batches_table: str, deliveries_table: str, rates: FaultRates = FaultRates()):
        self.seed = seed
        self.rates = rates
        self.batches_table = batches_table.encode()
        self.deliveries_table = deliveries_table.encode()
        self.injected: Counter[str] = Counter()
        self._seen: Counter[tuple[str, str]] = Counter()
        self._accepted: dict[str, list[str]] = defaultdict(list)  # per worker thread, since its last record
        self.crash_window: set[str] = set()  # recipients SES accepted in an attempt that then crashed
        self.enabled = True
        self._burst_left: Counter[str] = Counter()  # batch → conflicts still to answer its record with
        self._sqs = None  # for duplicate deliveries: set by the runtime's owner (attach_queue)
        self._queue_url = ""

    def attach_queue(self, sqs, queue_url: str) -> None:
        """Where duplicate deliveries are put: the send queue, through this client."""
        self._sqs, self._queue_url = sqs, queue_url

    def _chance(self, what: str, key: str) -> float:
        self._seen[(what, key)] += 1
        digest = hashlib.sha256(f"{self.seed}|{what}|{key}|{self._seen[(what, key)]}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _rejected_address(self, recipient: str, campaign: str) -> bool:
        # Per campaign, so that a re-send to the failed recipients sends to most of them.
        digest = hashlib.sha256(f"{self.seed}|reject|{campaign}|{recipient}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.rates.ses_reject_address

    def _crash(self, kind: str) -> None:
        self.injected[f"crash_{kind}"] += 1
        self.crash_window.update(self._accepted.pop(threading.current_thread().name, []))
        raise SimulatedCrash(kind)

    @staticmethod
    def _in_worker() -> bool:
        return threading.current_thread().name.startswith("esm-")

    @staticmethod
    def _batch(body: bytes) -> str:
        found = _BATCH_ID.search(body)
        return found.group(1).decode() if found else ""

    @staticmethod
    def _headers(body: bytes) -> bytes:
        raw = base64.b64decode(json.loads(body)["Content"]["Raw"]["Data"])
        return raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")

    def _recipient(self, body: bytes) -> str:
        found = _TO.search(self._headers(body))
        return found.group(1).decode().lower() if found else ""

    def _campaign(self, body: bytes) -> str:
        found = _CAMPAIGN.search(self._headers(body))
        return found.group(1).decode() if found else ""

    def _dynamodb_fault(self, request, op: str, body: bytes) -> AWSResponse | None:
        """Maybe one of DynamoDB's real write faults, counted by kind and by the part that met it."""
        component = _component()
        items = len(json.loads(body).get("TransactItems", [])) if op == "TransactWriteItems" else 0
        batch = self._batch(body)
        kind = None
        if items and self.deliveries_table in body and batch:
            if self._burst_left[batch] == 0 and self._chance("burst", batch) < self.rates.dynamodb_record_burst:
                self._burst_left[batch] = RECORD_BURST
            if self._burst_left[batch] > 0:
                self._burst_left[batch] -= 1
                kind = "dynamodb_record_burst"
        if kind is None:
            roll = self._chance("dynamodb", f"{op}|{component}|{batch}")
            r = self.rates
            if component != "SendEmailsFunction":
                roll /= r.dynamodb_elsewhere_factor
            if roll < r.dynamodb_conflict:
                kind = "dynamodb_conflict"
            elif roll < r.dynamodb_conflict + r.dynamodb_throttled:
                kind = "dynamodb_throttled"
            elif roll < r.dynamodb_conflict + r.dynamodb_throttled + r.dynamodb_internal_error:
                kind = "dynamodb_internal_error"
            else:
                return None
        self.injected[kind] += 1
        self.injected[f"dynamodb_faults@{component}"] += 1
        if kind == "dynamodb_internal_error":
            return _error(500, "InternalServerError", "Internal server error", request.url)
        if items:  # a transaction is cancelled as a whole, with a reason per item
            reason = "ThrottlingError" if kind == "dynamodb_throttled" else "TransactionConflict"
            reasons = [{"Code": "None"}] * items
            reasons[int(self._chance("item", kind) * items)] = {"Code": reason, "Message": f"{reason} (injected)"}
            return _error(
                400,
                "TransactionCanceledException",
                f"Transaction cancelled ({reason})",
                request.url,
                CancellationReasons=reasons,
            )
        if kind == "dynamodb_throttled":
            return _error(
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
                request.url,
            )
        return _error(400, "TransactionConflictException", "Transaction is ongoing for the item", request.url)

    def before(self, request) -> AWSResponse | None:
        if not self.enabled:
            return None
        service, op = _operation(request)
        body = _body(request)
        if not self._in_worker():
            return self._dynamodb_fault(request, op, body) if service == "dynamodb" and op in _DYNAMODB_WRITES else None
        if (service, op) == ("sesv2", "SendEmail"):
            recipient = self._recipient(body)
            if self._rejected_address(recipient, self._campaign(body)):
                self.injected["ses_rejected"] += 1
                return _error(400, "MessageRejected", f"Address blacklisted: {recipient}", request.url)
            roll = self._chance("ses", recipient)
            if roll < self.rates.ses_throttle:
                self.injected["ses_throttled"] += 1
                return _error(429, "TooManyRequestsException", "Maximum sending rate exceeded.", request.url)
            if roll < self.rates.ses_throttle + self.rates.ses_transient:
                self.injected["ses_transient"] += 1
                return _error(500, "InternalFailure", "Service unavailable", request.url)
        if (
            (service, op) == ("dynamodb", "TransactWriteItems")
            and self.deliveries_table in body
            and self._chance("record", self._batch(body)) < self.rates.crash_before_record
        ):
            self._crash("before_record")
        if service == "dynamodb" and op in _DYNAMODB_WRITES:
            return self._dynamodb_fault(request, op, body)
        return None

    def after(self, request, response) -> None:
        if not (self.enabled and self._in_worker()) or response is None:
            return
        service, op = _operation(request)
        body = _body(request)
        if getattr(response, "status_code", None) != 200:
            return
        if (service, op) == ("sqs", "ReceiveMessage") and self._sqs is not None:
            # The queue hands a message out once more, as SQS's at-least-once delivery may: a copy
            # (without touching the original's receive count, which drives its retry backoff).
            for message in json.loads(response.content or b"{}").get("Messages", []):
                if self._chance("duplicate", message["MessageId"]) < self.rates.duplicate_delivery:
                    self.injected["duplicate_delivery"] += 1
                    with as_operator():  # SQS itself delivering again, not the worker's request
                        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=message["Body"])
            return
        if (service, op) == ("sqs", "SendMessageBatch") and b"DelaySeconds" in body:
            self.injected["pacing_deferred"] += 1  # not a fault: the worker handed its batch back (a slow rate)
        thread = threading.current_thread().name
        if (
            (service, op) == ("dynamodb", "UpdateItem")
            and self.batches_table in body
            and b"lease_until = :lease" in body
        ):
            self._accepted.pop(thread, None)
            if self._chance("claim", self._batch(body)) < self.rates.crash_after_claim:
                self._crash("after_claim")
        elif (service, op) == ("sesv2", "SendEmail"):
            recipient = self._recipient(body)
            self._accepted[thread].append(recipient)
            if self._chance("accepted", recipient) < self.rates.crash_after_ses_accepted:
                self._crash("after_ses_accepted")
        elif service == "dynamodb" and op in ("TransactWriteItems", "PutItem") and self.deliveries_table in body:
            self._accepted.pop(thread, None)  # the accepted email is written down (note_sent) or recorded


class SesRateLimit:
    """A simulated SES maximum send rate: a token bucket (one second of burst) that answers
    TooManyRequests above `rate`, and keeps the time of every accepted send."""

    def __init__(self, rate: float, clock=None):
        import time

        self.rate = rate
        self.clock = clock or time.monotonic
        self.tokens = rate
        self.updated = self.clock()
        self.accepted: list[float] = []
        self.throttled = 0

    def before(self, request) -> AWSResponse | None:
        if _operation(request) != ("sesv2", "SendEmail"):
            return None
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.throttled += 1
            return _error(429, "TooManyRequestsException", "Maximum sending rate exceeded.", request.url)
        self.tokens -= 1
        return None

    def after(self, request, response) -> None:
        if getattr(response, "status_code", None) == 200 and _operation(request) == ("sesv2", "SendEmail"):
            self.accepted.append(self.clock())
