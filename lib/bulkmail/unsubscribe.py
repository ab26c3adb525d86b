"""RFC 8058 one-click unsubscribe: signed tokens and the links and headers made from them.

A token names one contact on one campaign and carries an HMAC-SHA256 tag over both, made with a key
held in Secrets Manager (the adapters fetch it; this module only computes). Without the key a token
cannot be forged, and changing any character of one makes it invalid. The token is opaque to its
reader (base64url), but not encrypted: whoever holds the link can decode the address it was sent to,
which is the person who received it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from email.parser import Parser
from email.policy import HTTP
from urllib.parse import parse_qs, quote

from bulkmail.errors import InvalidUnsubscribeToken

_VERSION = "1"
_SEPARATOR = "\x1f"  # cannot occur in a campaign id or an email address we accept
_TAG_BYTES = 16  # 128-bit tag
_MAX_TOKEN_CHARS = 1024  # 64-char campaign id + 254-char address, base64url'd, with room to spare
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, b"bulkmail-unsubscribe-v" + _VERSION.encode() + b"\0" + payload, hashlib.sha256).digest()[
        :_TAG_BYTES
    ]


def make_token(key: bytes, campaign_id: str, email: str) -> str:
    if not key:
        raise ValueError("the unsubscribe signing key is empty")
    payload = f"{campaign_id}{_SEPARATOR}{email}".encode()
    return f"{_VERSION}.{_b64(payload)}.{_b64(_tag(key, payload))}"


def verify_token(key: bytes, token: str) -> tuple[str, str]:
    """(campaign_id, email) of a token made with this key, or InvalidUnsubscribeToken."""
    if not key:
        raise ValueError("the unsubscribe signing key is empty")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        raise InvalidUnsubscribeToken("malformed unsubscribe token")
    version, payload_b64, tag_b64 = token.split(".")
    try:
        payload, tag = _unb64(payload_b64), _unb64(tag_b64)
    except (binascii.Error, ValueError):
        raise InvalidUnsubscribeToken("malformed unsubscribe token") from None
    # Re-encoding must give back the same text: no alternative spellings of one token.
    if version != _VERSION or _b64(payload) != payload_b64 or _b64(tag) != tag_b64:
        raise InvalidUnsubscribeToken("malformed unsubscribe token")
    if not hmac.compare_digest(tag, _tag(key, payload)):
        raise InvalidUnsubscribeToken("unsubscribe token signature does not match")
    try:
        campaign_id, email = payload.decode().split(_SEPARATOR)
    except (UnicodeDecodeError, ValueError):
        raise InvalidUnsubscribeToken("malformed unsubscribe token") from None
    return campaign_id, email


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Makes the per-recipient unsubscribe URL (and optional mailto) that `render()` takes."""

    key: bytes
    base_url: str  # the public API's base URL, e.g. https://abc.execute-api.../v1
    mailbox: str = ""  # optional address that processes unsubscribe mails

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("the unsubscribe signing key is empty")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("the unsubscribe base URL must be an http(s) URL")

    def __repr__(self) -> str:  # never show the key
        return f"UnsubscribeLinks(base_url={self.base_url!r}, mailbox={self.mailbox!r})"

    def archive_url(self, campaign_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/archive/{campaign_id}"

    def url(self, campaign_id: str, email: str) -> str:
        return f"{self.base_url.rstrip('/')}/unsubscribe/{make_token(self.key, campaign_id, email)}"

    def for_recipient(self, campaign_id: str, email: str) -> dict[str, str]:
        """Keyword arguments for `render()`."""
        # The archive's page of the campaign (shown only when the campaign is archived).
        links = {"unsubscribe_url": self.url(campaign_id, email), "archive_url": self.archive_url(campaign_id)}
        if self.mailbox:
            token = make_token(self.key, campaign_id, email)
            links["unsubscribe_mailto"] = f"mailto:{self.mailbox}?subject={quote('unsubscribe ' + token)}"
        return links


def is_one_click_request(content_type: str, body: str) -> bool:
    """Whether a POST body says `List-Unsubscribe=One-Click` (RFC 8058 §3.1: sent as
    application/x-www-form-urlencoded or multipart/form-data)."""
    if content_type.lower().startswith("multipart/form-data"):
        message = Parser(policy=HTTP).parsestr(f"Content-Type: {content_type}\r\n\r\n{body}")
        if not message.is_multipart():
            return False
        return any(
            part.get_param("name", header="content-disposition") == "List-Unsubscribe"
            and part.get_content().strip() == "One-Click"
            for part in message.iter_parts()
        )
    return "One-Click" in parse_qs(body, keep_blank_values=True).get("List-Unsubscribe", [])
