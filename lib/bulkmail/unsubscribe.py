"""RFC 8058 one-click unsubscribe: signed tokens and the links and headers made from them.

A token names one contact on one campaign and carries an HMAC-SHA256 tag over both, made with a key
held in Secrets Manager (the adapters fetch it; this module only computes). Without the key a token
cannot be forged, and changing any character of one makes it invalid. The token is opaque to its
reader (base64url), but not encrypted: whoever holds the link can decode the address it was sent to,
which is the person who received it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import Parser
from email.policy import HTTP
from urllib.parse import parse_qs, quote

from bulkmail import tokens
from bulkmail.errors import InvalidUnsubscribeToken

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def make_token(key: bytes, campaign_id: str, email: str) -> str:
    return tokens.sign(key, "unsubscribe", campaign_id, email)


def verify_token(key: bytes, token: str) -> tuple[str, str]:
    """(campaign_id, email) of a token made with this key, or InvalidUnsubscribeToken."""
    campaign_id, email = tokens.verify(key, "unsubscribe", token, 2, InvalidUnsubscribeToken)
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
