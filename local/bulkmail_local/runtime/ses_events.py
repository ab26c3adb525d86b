"""The embedded SES's event publishing and open/click tracking, which moto does not do.

As SES does for an email sent with a configuration set:
- the configuration set's event destinations (template.yaml) say which events it publishes;
- with OPEN, the delivered HTML gets a 1×1 image; with CLICK, every link not marked `ses:no-track`
  is wrapped in a tracking link (the mark is removed) — here on `bulkmail serve`'s address;
- the events go to the default EventBridge bus, where the rules of template.yaml pick them out
  (here: their functions are invoked with the event, retried as EventBridge's async invocation is).

`SendEmail` requests are observed as they pass the runtime's stubber (configuration set, message tags);
the outbox calls `deliver` for each accepted message before writing its `.eml`. A tracking link
carries what its event needs (message, recipient, tags, URL), so it works across serve restarts.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_string
from email.charset import QP, Charset
from email.policy import compat32
from email.utils import parseaddr
from typing import Any

logger = logging.getLogger(__name__)

# The CloudFormation event types and the EventBridge detail-type and SES eventType of each.
DETAIL_TYPES = {
    "open": ("Email Opened", "Open"),
    "click": ("Email Clicked", "Click"),
    "delivery": ("Email Delivered", "Delivery"),
}
NO_TRACK = "ses:no-track"
# A 1×1 transparent GIF, what SES's open link answers.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PUBLISHER_THREAD = "ses-events"  # where the default bus's deliveries run
ASYNC_ATTEMPTS = 3  # an asynchronous invocation: the first try and Lambda's two retries
_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)
_NO_TRACK_ATTR = re.compile(r"\s+ses:no-track(?:\s*=\s*(\"[^\"]*\"|'[^']*'|\S+))?", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("m"), str) else None


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge's exact-value matching: a list matches a value in it (or any element of an array)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches(p, value[k]) for k, p in pattern.items())
    values = value if isinstance(value, list) else [value]
    return any(v in pattern for v in values)


@dataclass(frozen=True)
class Rule:
    function: str  # the logical id of the target function
    pattern: dict[str, Any]


class SesEvents:
    def __init__(
        self,
        *,
        destinations: dict[str, set[str]],
        rules: list[Rule],
        invoke: Callable[[str, dict[str, Any]], Any],
        public_url: str,
        account: str,
        region: str,
    ):
        """`destinations`: configuration set name → the event types it publishes (lower case)."""
        self.destinations = destinations
        self.rules = rules
        self.invoke = invoke
        self.public_url = public_url.rstrip("/")
        self.account = account
        self.region = region
        self._sent: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.published: list[dict[str, Any]] = []  # every event put on the default bus, in order
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._deliver_events, name=PUBLISHER_THREAD, daemon=True)
        self._thread.start()

    # --- sending ---------------------------------------------------------------------------------
    # Both run under the runtime's request lock, around moto's answer to a SendEmail.
    def before(self, event_name: str, request: Any) -> None:
        """A SendEmail about to be answered: what it says, for a message delivered while it is answered
        (durable state writes the .eml before the answer returns)."""
        if event_name == "before-send.sesv2.SendEmail":
            params = json.loads(request.body or b"{}")
            self._pending = {
                "c": params.get("ConfigurationSetName") or "",
                "t": {t["Name"]: t["Value"] for t in params.get("EmailTags") or []},
            }

    def observe(self, event_name: str, request: Any, response: Any) -> None:
        """A SendEmail answered: remember its configuration set and tags for its delivery."""
        pending, self._pending = self._pending, None
        if event_name != "before-send.sesv2.SendEmail" or pending is None:
            return  # not a send, or its message was delivered while it was answered
        if response is None or response.status_code >= 300:
            return
        message_id = json.loads(response.content or b"{}").get("MessageId")
        if message_id:
            with self._lock:
                self._sent[message_id] = pending

    def take(self, message_id: str) -> dict[str, Any] | None:
        """What the SendEmail of an accepted message said. Call it holding the runtime's request lock,
        which `before` and `observe` run under: the message and its request are then seen together."""
        with self._lock:
            if message_id in self._sent:
                return self._sent.pop(message_id)
        pending, self._pending = self._pending, None  # delivered while its SendEmail is answered
        return pending

    def deliver(
        self, message_id: str, sent: dict[str, Any] | None, raw: str, source: str, destination: list[str]
    ) -> tuple[str, list[dict]]:
        """The message as delivered (tracking added where its configuration set tracks) and the events
        its delivery publishes (put them on the bus with `publish`, outside any lock)."""
        if sent is None or not sent["c"]:
            return raw, []
        types = self.destinations.get(sent["c"], set())
        recipients = [parseaddr(d)[1] for d in destination[:1]]
        mail = {"m": message_id, "s": parseaddr(source)[1], "d": recipients, "c": sent["c"], "t": sent["t"]}
        if "open" in types or "click" in types:
            raw = self._track(raw, mail, opens="open" in types, clicks="click" in types)
        events = [self.event("delivery", mail, {"timestamp": _now()})] if "delivery" in types else []
        return raw, events

    def _track(self, raw: str, mail: dict[str, Any], *, opens: bool, clicks: bool) -> str:
        message = message_from_string(raw, policy=_WIRE)
        for part in message.walk():
            if part.get_content_type() != "text/html" or part.is_multipart():
                continue
            charset = part.get_content_charset() or "us-ascii"
            payload = part.get_payload(decode=True)
            text = payload.decode(charset, "replace") if isinstance(payload, bytes) else str(payload)

            def wrap(anchor: re.Match[str]) -> str:
                tag = anchor.group(0)
                if _NO_TRACK_ATTR.search(tag):
                    return _NO_TRACK_ATTR.sub("", tag)
                if not clicks:
                    return tag
                return _HREF.sub(
                    lambda h: f'href="{html.escape(self.click_url(mail, html.unescape(h.group(2))))}"', tag, count=1
                )

            text = _ANCHOR.sub(wrap, text)
            if opens:
                pixel = (
                    f'<img alt="" src="{html.escape(self.open_url(mail))}" '
                    'width="1" height="1" border="0" style="height:1px !important;width:1px !important" />'
                )
                ends = list(_BODY_END.finditer(text))
                text = text[: ends[-1].start()] + pixel + text[ends[-1].start() :] if ends else text + pixel
            utf8 = Charset("utf-8")
            utf8.body_encoding = QP
            del part["Content-Transfer-Encoding"]
            part.set_payload(text, utf8)
        return message.as_string(policy=_WIRE)

    def click_url(self, mail: dict[str, Any], url: str) -> str:
        return f"{self.public_url}/track/click/{encode_token({**mail, 'u': url})}"

    def open_url(self, mail: dict[str, Any]) -> str:
        return f"{self.public_url}/track/open/{encode_token(mail)}"

    # --- the tracking links (bulkmail serve answers them) -------------------------------------------
    def opened(self, token: str, user_agent: str = "", ip: str = "127.0.0.1") -> bool:
        mail = decode_token(token)
        if mail is None:
            return False
        self.publish([self.event("open", mail, {"timestamp": _now(), "userAgent": user_agent, "ipAddress": ip})])
        return True

    def clicked(self, token: str, user_agent: str = "", ip: str = "127.0.0.1") -> str | None:
        """The original URL of a tracking link (None: not one), its Click event published."""
        mail = decode_token(token)
        if mail is None or not str(mail.get("u", "")).startswith(("http://", "https://")):
            return None
        click = {"timestamp": _now(), "userAgent": user_agent, "ipAddress": ip, "link": mail["u"], "linkTags": {}}
        self.publish([self.event("click", mail, click)])
        return str(mail["u"])

    # --- the default event bus -------------------------------------------------------------------
    def event(self, kind: str, mail: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
        detail_type, event_type = DETAIL_TYPES[kind]
        tags = {"ses:configuration-set": [mail["c"]], "ses:source-ip": ["192.0.2.10"]}
        tags.update({k: [v] for k, v in mail["t"].items()})
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.ses",
            "account": self.account,
            "time": _now()[:19] + "Z",
            "region": self.region,
            "resources": [f"arn:aws:ses:{self.region}:{self.account}:configuration-set/{mail['c']}"],
            "detail": {
                "eventType": event_type,
                "mail": {
                    "timestamp": detail["timestamp"],
                    "source": mail["s"],
                    "sendingAccountId": self.account,
                    "messageId": mail["m"],
                    "destination": mail["d"],
                    "headersTruncated": False,
                    "headers": [],
                    "tags": tags,
                },
                kind: detail,
            },
        }

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Put events on the default bus. Delivered on a thread of their own, as EventBridge invokes a
        rule's function asynchronously: never inside the request (or the write) that caused them."""
        for event in events:
            with self._lock:
                self.published.append(event)
            self._queue.put(event)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Until every event published so far is delivered (for a harness that reads what they counted)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(10)

    def _deliver_events(self) -> None:
        while not self._stopping.is_set():
            try:
                event = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._deliver(event)
            finally:
                self._queue.task_done()

    def _deliver(self, event: dict[str, Any]) -> None:
        """The event to every rule that matches it; a failed invocation is retried, then logged (on AWS
        it would go to the function's on-failure destination)."""
        for rule in self.rules:
            if not matches(rule.pattern, event):
                continue
            for attempt in range(ASYNC_ATTEMPTS):
                try:
                    self.invoke(rule.function, event)
                    break
                except Exception:
                    if attempt == ASYNC_ATTEMPTS - 1:
                        logger.exception("%s: event %s not processed", rule.function, event["id"])


def destinations_of(template: dict[str, Any], physical: Callable[[str], str]) -> dict[str, set[str]]:
    """Configuration set name → the event types its EventBridge destinations publish."""
    found: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::SES::ConfigurationSetEventDestination":
            continue
        props = resource["Properties"]
        destination = props["EventDestination"]
        if not destination.get("Enabled", False) or "EventBridgeDestination" not in destination:
            continue
        name = physical(props["ConfigurationSetName"]["Ref"])
        found.setdefault(name, set()).update(t.lower() for t in destination["MatchingEventTypes"])
    return found
