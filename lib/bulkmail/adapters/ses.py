"""Amazon SES v2 as a transport: raw MIME out, errors classified (throttled, transient, permanent, paused)."""

from __future__ import annotations

from email.message import Message
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bulkmail.errors import PermanentSendError, SendingPaused, Throttled, TransientSendError

_THROTTLE = {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
_PERMANENT = {"MessageRejected", "BadRequestException", "InvalidParameterValue"}
# Nobody can be sent to until someone fixes the account or the deployment (a permission, a missing
# configuration set, an unverified MAIL FROM domain, bad credentials): the campaign pauses with the
# reason instead of failing every recipient.
_PAUSED = {
    "SendingPausedException",
    "AccountSuspendedException",
    "AccessDenied",
    "AccessDeniedException",
    "NotFoundException",
    "MailFromDomainNotVerifiedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "ExpiredToken",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
}


def classify(exc: ClientError) -> Exception:
    code = exc.response["Error"]["Code"]
    message = f"{code}: {exc.response['Error'].get('Message', '')}".strip()
    if code in _THROTTLE:
        return Throttled(message)
    if code in _PAUSED:
        return SendingPaused(message)
    if code in _PERMANENT:
        return PermanentSendError(message)
    return TransientSendError(message)


@lru_cache(maxsize=16)
def _client(region: str | None, access_key: str | None, secret_key: str | None, session_token: str | None) -> Any:
    # No SDK retries: throttles go back to the queue, transients are retried by the worker, bounded.
    # (botocore's "max_attempts" counts retries, so 1 meant one silent retry; "total_max_attempts"
    # counts the first attempt too.)
    return boto3.client(
        "sesv2",
        region_name=region or None,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


class SesTransport:
    def __init__(
        self,
        region: str | None = None,
        credentials: dict[str, str] | None = None,
        configuration_set: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        creds = credentials or {}
        self.client = _client(
            region, creds.get("aws_access_key_id"), creds.get("aws_secret_access_key"), creds.get("aws_session_token")
        )
        self.configuration_set = configuration_set
        # Message tags come back in every event SES publishes for the email (the campaign's id).
        self.tags = [{"Name": k, "Value": v} for k, v in (tags or {}).items()]

    def send(self, message: Message) -> str:
        kwargs: dict[str, Any] = {"Content": {"Raw": {"Data": message.as_bytes()}}}
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        if self.tags:
            kwargs["EmailTags"] = self.tags
        try:
            message_id: str = self.client.send_email(**kwargs)["MessageId"]
            return message_id
        except ClientError as exc:
            raise classify(exc) from exc

    def close(self) -> None:
        """Nothing to release: SES is connectionless from here."""
