"""Signup with double opt-in: who may ask, what is recorded, and the confirmation that makes a contact.

`POST /subscribe` stores a *pending* request on the contact (a new address becomes a `pending`
contact, never mailed by a campaign) and mails a link; the link opens a page whose button confirms
(a GET never changes anything: mail scanners follow links). Confirming makes the contact
`subscribed` on the list, with its consent recorded: when, from where, from which IP, and the text
the person agreed to. A confirmation is a fresh opt-in, so it also lifts an earlier suppression
(the import rule is the same: an opt-in later than the suppression lifts it).

Abuse: each client (source IP) and each address may ask only so often per window (a counter per
window in a store with TTL); a burst gets 429 naming what was limited. The address is asked for
consent by the person who owns it: nothing is mailed but the confirmation, and at most a few a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from bulkmail import tokens
from bulkmail.clock import SYSTEM_CLOCK, Clock, iso
from bulkmail.errors import InvalidSignupToken, SignupRateLimited
from bulkmail.sending import Transport
from bulkmail.validation import email_problem, parse_timestamp

PURPOSE = "signup-confirm"
CONFIRM_DAYS = 7  # a confirmation link older than this asks the person to sign up again
MAX_NAME_CHARS = 100
MAX_CONSENT_TEXT_CHARS = 2000
MAX_SOURCE_CHARS = 200
LIST_ID_CHARS = 64
TRUE_WORDS = frozenset({"true", "on", "yes", "1"})  # what a checkbox or a JSON true says


def default_consent_text(list_id: str) -> str:
    return f"Yes, send me the {list_id} emails. I can unsubscribe at any time with the link in every email."


@dataclass(frozen=True)
class Limits:
    """How often one client, and one address, may sign up (SIGNUPS_PER_CLIENT_PER_MINUTE and
    SIGNUPS_PER_ADDRESS_PER_HOUR in template.yaml)."""

    per_client: int = 10
    client_window_seconds: int = 60
    per_address: int = 3
    address_window_seconds: int = 3600


@dataclass(frozen=True)
class SignupRequest:
    email: str
    list_id: str
    consent: dict[str, Any]  # text, source, ip, requested_at (and user_agent, page when known)
    names: dict[str, str]  # first_name, last_name when given


class Signups(Protocol):
    """Where signups are kept: on the contact (adapters/signups.SignupStore)."""

    def list_exists(self, list_id: str) -> bool: ...

    def request(self, request: SignupRequest) -> None:
        """Keep the pending request on the contact; a new address becomes a `pending` contact."""
        ...

    def confirm(self, email: str, list_id: str, requested_at: str, confirmed: dict[str, Any]) -> str:
        """Apply the pending request this link names: "confirmed", "already" (confirmed before) or
        "superseded" (a later signup of the same address replaced it, or it is gone)."""
        ...


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window_seconds: int, now: datetime) -> int:
        """Count one use of `key` in the current window: 0 if allowed, else the seconds until the
        window ends (nothing counted)."""
        ...


def parse_request(
    document: dict[str, Any], *, ip: str, default_source: str, now: datetime, headers: dict[str, str] | None = None
) -> tuple[SignupRequest | None, list[dict[str, str]]]:
    """The signup asked for, or every problem with it (each naming its field)."""
    problems: list[dict[str, str]] = []

    def text(name: str, limit: int, required: bool = False) -> str:
        value = document.get(name)
        if value is None or value == "":
            if required:
                problems.append({"field": name, "message": "is required"})
            return ""
        if not isinstance(value, str):
            problems.append({"field": name, "message": "must be a string"})
            return ""
        if len(value) > limit or any(c in value for c in "\r\n\x00"):
            problems.append({"field": name, "message": f"must be one line of at most {limit} characters"})
            return ""
        return value.strip()

    email = text("email", 254, required=True)
    problem = email_problem(email) if email else None
    if problem:
        problems.append({"field": "email", "message": problem})
    list_id = text("list", LIST_ID_CHARS, required=True)
    names = {k: v for k in ("first_name", "last_name") if (v := text(k, MAX_NAME_CHARS))}
    consent_text = document.get("consent_text") or ""
    if not isinstance(consent_text, str) or len(consent_text) > MAX_CONSENT_TEXT_CHARS:
        problems.append(
            {"field": "consent_text", "message": f"must be text of at most {MAX_CONSENT_TEXT_CHARS} characters"}
        )
    source = text("source", MAX_SOURCE_CHARS) or default_source
    agreed = document.get("consent")
    if not (agreed is True or (isinstance(agreed, str) and agreed.strip().lower() in TRUE_WORDS)):
        problems.append({"field": "consent", "message": "must be true: the person agrees to receive these emails"})
    if problems:
        return None, problems
    consent: dict[str, Any] = {
        "list": list_id,
        "text": consent_text.strip()
        if isinstance(consent_text, str) and consent_text.strip()
        else default_consent_text(list_id),
        "source": source,
        "ip": ip,
        "requested_at": iso(now),
    }
    for header, key in (("user-agent", "user_agent"), ("referer", "page")):
        value = (headers or {}).get(header, "")
        if value:
            consent[key] = value[:MAX_SOURCE_CHARS]
    return SignupRequest(email.lower(), list_id, consent, names), []


def check_rate(limiter: RateLimiter, key: bytes, request: SignupRequest, limits: Limits, now: datetime) -> None:
    """SignupRateLimited when this client or this address asked too often. The client is counted
    first: a flood from one client does not use up its victims' allowance."""
    client = tokens.digest(key, "signup-client", request.consent["ip"])
    wait = limiter.hit(f"client#{client}", limits.per_client, limits.client_window_seconds, now)
    if wait:
        raise SignupRateLimited("$", f"too many signups from this client; try again in {wait} s", wait)
    address = tokens.digest(key, "signup-address", request.email)
    wait = limiter.hit(f"address#{address}", limits.per_address, limits.address_window_seconds, now)
    if wait:
        raise SignupRateLimited("email", f"too many signups for this address; try again in {wait} s", wait)


def confirm_token(key: bytes, request: SignupRequest) -> str:
    return tokens.sign(key, PURPOSE, request.list_id, request.email, request.consent["requested_at"])


def read_token(key: bytes, token: str, now: datetime) -> tuple[str, str, str]:
    """(list_id, email, requested_at) of a confirmation link that is genuine and not expired."""
    list_id, email, requested_at = tokens.verify(key, PURPOSE, token, 3, InvalidSignupToken)
    asked = parse_timestamp(requested_at)
    if asked is None:
        raise InvalidSignupToken("malformed signup-confirm token")
    if now - asked > timedelta(days=CONFIRM_DAYS):
        raise InvalidSignupToken(f"this confirmation link is older than {CONFIRM_DAYS} days")
    return list_id, email, requested_at


def confirmation_message(request: SignupRequest, from_address: str, confirm_url: str) -> EmailMessage:
    """The one email a signup sends: the link to the confirmation page, and nothing to track."""
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = request.email
    message["Subject"] = f"Please confirm your subscription to {request.list_id}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    message.set_content(
        f"Someone, hopefully you, asked to receive the {request.list_id} emails at this address.\n\n"
        f"To confirm, open this link and press the button:\n{confirm_url}\n\n"
        f"You agreed to: {request.consent['text']}\n\n"
        f"If it was not you, ignore this email: nothing is sent to you unless you confirm.\n"
    )
    return message


def subscribe(
    request: SignupRequest,
    *,
    signups: Signups,
    limiter: RateLimiter,
    transport: Transport,
    key: bytes,
    public_url: str,
    from_address: str,
    limits: Limits,
    clock: Clock = SYSTEM_CLOCK,
) -> str:
    """Rate-check, keep the pending request, mail the confirmation; returns the confirmation's message id.
    The answer is the same whether or not the address was a contact (it tells a stranger nothing)."""
    check_rate(limiter, key, request, limits, clock.now())
    signups.request(request)
    url = f"{public_url.rstrip('/')}/subscribe/confirm/{confirm_token(key, request)}"
    return transport.send(confirmation_message(request, from_address, url))


def confirm(token: str, *, key: bytes, signups: Signups, ip: str, clock: Clock = SYSTEM_CLOCK) -> tuple[str, str, str]:
    """Confirm the signup a link names: (list_id, email, outcome); InvalidSignupToken if not genuine."""
    now = clock.now()
    list_id, email, requested_at = read_token(key, token, now)
    outcome = signups.confirm(email, list_id, requested_at, {"confirmed_at": iso(now), "confirmed_ip": ip})
    return list_id, email, outcome
