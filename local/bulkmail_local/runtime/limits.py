"""AWS's size limits that moto does not enforce (or counts differently), refused as AWS refuses them.

Every emulated AWS request passes `refuse(request)` before moto answers it (runtime.stack). What
moto already refuses as AWS does is left to moto: DynamoDB's 400 KB item (moto.dynamodb
LimitedSizeDict), TransactWriteItems' 100 operations and one operation per item (the runtime's
transaction in moto_fixes keeps moto's checks), SQS's 10 entries per batch.

- Step Functions StartExecution `input`: at most 262,144 bytes as UTF-8 (moto: no limit).
- Step Functions state and task results: the same 256 KiB, counted on the UTF-8 JSON AWS carries;
  moto counts `json.dumps` with ASCII escapes and spaces, so a non-ASCII result reached its limit
  at a sixth of the size (`within_state_quota` replaces its count).
- SQS SendMessage / SendMessageBatch: body plus message attributes (name, type, value) in UTF-8
  bytes, at most the queue's maximum message size, 1 MiB since 2025 (moto counts characters, and
  leaves the attributes out). A batch's messages together, at most the same.
- SES v2 SendEmail with raw content: no line over 1,000 characters with its CRLF (RFC 5321) and
  at most 40 MB (moto: no check at all).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from botocore.awsrequest import AWSResponse

from bulkmail_local.runtime.seams import aws_response

STATE_PAYLOAD_BYTES = 262_144
SQS_MESSAGE_BYTES = 1_048_576
SES_MESSAGE_BYTES = 40 * 1024 * 1024
SES_LINE_CHARACTERS = 998  # 1,000 with the CRLF that ends the line


def _json_error(request, status: int, code: str, message: str) -> AWSResponse:
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
    body = json.dumps({"__type": code, "message": message})
    return aws_response(request.url, status, headers, body)


def _sqs_error(request, code: str, message: str) -> AWSResponse:
    # SQS's JSON protocol names the error as its query protocol did (botocore reads this header).
    response = _json_error(request, 400, f"com.amazonaws.sqs#{code}", message)
    response.headers["x-amzn-query-error"] = f"{code};Sender"
    return response


def _target(request) -> str:
    target = request.headers.get("X-Amz-Target") or b""
    return target.decode() if isinstance(target, bytes) else target


def _params(request) -> dict[str, Any]:
    body = request.body or b"{}"
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return params if isinstance(params, dict) else {}


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def within_state_quota(value: Any) -> bool:
    """Step Functions' count of a state's data: its JSON as UTF-8, at most 256 KiB."""
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    )
    return utf8_size(text) <= STATE_PAYLOAD_BYTES


def _sqs_message_size(entry: dict[str, Any]) -> int:
    size = utf8_size(entry.get("MessageBody", ""))
    for name, attribute in (entry.get("MessageAttributes") or {}).items():
        size += utf8_size(name) + utf8_size(attribute.get("DataType", ""))
        if "StringValue" in attribute:
            size += utf8_size(attribute["StringValue"])
        if "BinaryValue" in attribute:
            size += len(base64.b64decode(attribute["BinaryValue"]))
    return size


def _refuse_sqs(request, operation: str, params: dict[str, Any]) -> AWSResponse | None:
    if operation == "SendMessage":
        size = _sqs_message_size(params)
        if size > SQS_MESSAGE_BYTES:
            return _sqs_error(
                request,
                "InvalidParameterValue",
                f"One or more parameters are invalid. Reason: Message must be shorter than {SQS_MESSAGE_BYTES} bytes.",
            )
    elif operation == "SendMessageBatch":
        size = sum(_sqs_message_size(entry) for entry in params.get("Entries", []))
        if size > SQS_MESSAGE_BYTES:
            return _sqs_error(
                request,
                "BatchRequestTooLong",
                f"Batch requests cannot be longer than {SQS_MESSAGE_BYTES} bytes. You have sent {size} bytes.",
            )
    return None


def _refuse_raw_email(request, params: dict[str, Any]) -> AWSResponse | None:
    data = ((params.get("Content") or {}).get("Raw") or {}).get("Data")
    if not data:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None  # moto answers malformed input itself
    if len(raw) > SES_MESSAGE_BYTES:
        return _json_error(
            request, 400, "MessageRejected", f"Message length is more than {SES_MESSAGE_BYTES} bytes long: {len(raw)}."
        )
    longest = max(len(line.rstrip(b"\r")) for line in raw.split(b"\n"))
    if longest > SES_LINE_CHARACTERS:
        return _json_error(
            request,
            400,
            "MessageRejected",
            f"Transaction failed: a line of the message is {longest + 2} characters long "
            "(at most 1,000 with its CRLF, RFC 5321).",
        )
    return None


def refuse(request) -> AWSResponse | None:
    """AWS's answer to a request over one of its limits, or None to let moto answer it."""
    target = _target(request)
    if target == "AWSStepFunctions.StartExecution":
        size = utf8_size(_params(request).get("input", ""))
        if size > STATE_PAYLOAD_BYTES:
            return _json_error(
                request,
                400,
                "ValidationException",
                "1 validation error detected: Value at 'input' failed to satisfy constraint: Member "
                f"must have size less than or equal to {STATE_PAYLOAD_BYTES} bytes in UTF-8 encoding",
            )
    elif target.startswith("AmazonSQS."):
        return _refuse_sqs(request, target.partition(".")[2], _params(request))
    elif request.method == "POST" and request.url.endswith("/v2/email/outbound-emails"):
        return _refuse_raw_email(request, _params(request))
    return None
