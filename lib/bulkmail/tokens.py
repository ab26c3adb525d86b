"""Signed tokens for the links in mail: a few text fields and an HMAC-SHA256 tag over them.

One key (the unsubscribe signing key in Secrets Manager) signs every kind of link; each kind has its
own `purpose`, which is part of what is signed, so a token made for one purpose never verifies as
another (an unsubscribe token is not a signup confirmation). The fields are opaque to a reader
(base64url) but not encrypted: whoever holds the link can decode them, and that is the person it was
mailed to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from bulkmail.errors import BulkmailError

_VERSION = "1"
_SEPARATOR = "\x1f"  # cannot occur in an id, an email address or a timestamp we accept
_TAG_BYTES = 16  # 128-bit tag
MAX_TOKEN_CHARS = 1024  # a 64-char id + a 254-char address + a timestamp, base64url'd, with room to spare


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, purpose: str, payload: bytes) -> bytes:
    if not key:
        raise ValueError(f"the {purpose} signing key is empty")
    message = f"bulkmail-{purpose}-v{_VERSION}".encode() + b"\0" + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def sign(key: bytes, purpose: str, *fields: str) -> str:
    payload = _SEPARATOR.join(fields).encode()
    return f"{_VERSION}.{_b64(payload)}.{_b64(_tag(key, purpose, payload))}"


def verify(key: bytes, purpose: str, token: str, count: int, invalid: type[BulkmailError]) -> tuple[str, ...]:
    """The `count` fields of a token this key made for `purpose`; else `invalid` is raised."""
    if not key:
        raise ValueError(f"the {purpose} signing key is empty")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise invalid(f"malformed {purpose} token")
    version, payload_b64, tag_b64 = token.split(".")
    try:
        payload, tag = _unb64(payload_b64), _unb64(tag_b64)
    except (binascii.Error, ValueError):
        raise invalid(f"malformed {purpose} token") from None
    # Re-encoding must give back the same text: no alternative spellings of one token.
    if version != _VERSION or _b64(payload) != payload_b64 or _b64(tag) != tag_b64:
        raise invalid(f"malformed {purpose} token")
    if not hmac.compare_digest(tag, _tag(key, purpose, payload)):
        raise invalid(f"{purpose} token signature does not match")
    try:
        fields = tuple(payload.decode().split(_SEPARATOR))
    except UnicodeDecodeError:
        raise invalid(f"malformed {purpose} token") from None
    if len(fields) != count:
        raise invalid(f"malformed {purpose} token")
    return fields


def digest(key: bytes, purpose: str, value: str) -> str:
    """A keyed hash of `value` (an address, an IP) to name it in a store without keeping it."""
    return _b64(_tag(key, purpose, value.encode()))
