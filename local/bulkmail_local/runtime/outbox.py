"""Every email SES accepted, written as a real RFC 5322 `.eml` file under outbox/<campaign_id>/."""

from __future__ import annotations

import os
import re
import threading
from email.utils import parseaddr
from pathlib import Path

from moto.ses.models import ses_backends

from bulkmail_local.runtime.ses_events import SesEvents

_SAFE = re.compile(r"[^A-Za-z0-9@._+-]")
# Only the two headers the file's place depends on are read; the message itself is written as sent.
_CAMPAIGN = re.compile(r"^X-Bulkmail-Campaign:\s*(\S+)", re.MULTILINE | re.IGNORECASE)
_TO = re.compile(r"^To:(.*(?:\n[ \t].*)*)", re.MULTILINE | re.IGNORECASE)


class Outbox:
    def __init__(self, root: Path, account: str, region: str, request_lock: threading.RLock | None = None):
        self.root = root
        self.account = account
        self.region = region
        self._written = 0
        self._lock = threading.Lock()
        self.request_lock = request_lock or threading.RLock()  # the runtime's: one emulated request at a time
        self.ses_events: SesEvents | None = None  # tracking and delivery events (runtime.ses_events)

    def flush(self) -> int:
        """Write the messages SES accepted since the last flush; returns how many were written.

        Holds its lock while writing, so that when flush() returns every accepted message is on disk.
        The events their delivery publishes (a tracked configuration set's) go out after the lock."""
        events: list[dict] = []
        # The request lock first, as a send that writes its .eml before answering (durable state) takes
        # them: SES's answer and what ses_events noted of its request are then seen together.
        with self.request_lock, self._lock:
            sent = ses_backends[self.account][self.region].sent_messages
            new, self._written = sent[self._written :], len(sent)
            requests = [self.ses_events.take(m.id) if self.ses_events else None for m in new]
            for msg, request in zip(new, requests, strict=True):
                raw = getattr(msg, "raw_data", None)
                if raw is None:  # only raw sends carry a whole message; bulkmail sends raw
                    continue
                if self.ses_events is not None:
                    raw, published = self.ses_events.deliver(msg.id, request, raw, msg.source, list(msg.destinations))
                    events += published
                head = raw.split("\n\n", 1)[0].replace("\r\n", "\n")
                campaign = _CAMPAIGN.search(head)
                to = _TO.search(head)
                folder = self.root / _SAFE.sub("_", campaign.group(1) if campaign else "no-campaign")
                recipient = _SAFE.sub("_", parseaddr(to.group(1).strip())[1] if to else "") or "unknown"
                folder.mkdir(parents=True, exist_ok=True)
                # Whole or not at all: a reader (or a kill) never meets half a message.
                partial = folder / f".{recipient}.{msg.id}.eml.partial"
                partial.write_text(raw)
                os.replace(partial, folder / f"{recipient}.{msg.id}.eml")
        if events and self.ses_events is not None:
            self.ses_events.publish(events)
        return len(new)
