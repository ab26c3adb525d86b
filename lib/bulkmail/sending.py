"""The worker's logic: one SQS message (a campaign id and up to N contact emails) at a time.

read the campaign → claim the batch → read contacts (one BatchGetItem) → render → send → record
every outcome, the counters and the release in one transaction. The campaign is read fresh for each
message, so a pause, cancel or edit takes effect from the next batch of recipients on (DESIGN.md
decision 7) at the price of one GetItem per message."""
from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from bulkmail.errors import (
    BatchBusy,
    ContactNotFound,
    PermanentSendError,
    SendingPaused,
    SendError,
    Throttled,
    TransientSendError,
)
from bulkmail.metrics import SendStats
from bulkmail.models import BatchMessage, Claim, CampaignStatus, Contact, ContactStatus, DeliveryStatus, Outcome
from bulkmail.rendering import build_mime, render
from bulkmail.validation import is_email

logger = logging.getLogger(__name__)

# Campaign statuses whose remaining recipients are skipped, with the reason recorded.
_SKIP_REASON = {CampaignStatus.CANCELLED.value: "cancelled", CampaignStatus.FAILED.value: "campaign_failed"}


class CampaignWaiting(SendError):
    """The campaign is not sending now (scheduled, or paused while parking failed): retry later."""


class OutOfTime(SendError):
    """The invocation is about to time out: what was sent is recorded, the rest comes back later."""


class Pacer:
    """Spaces one worker's sends so that all workers together keep to the campaign's rate.

    Each of the (at most) `workers` concurrent invocations sends at rate / workers, on a schedule
    (not sleep-after-send), so the time spent rendering and sending is absorbed by the interval.
    """

    def __init__(self, rate: float, workers: int, clock: Callable[[], float], sleep: Callable[[float], None],
                 phase: float | None = None):
        self.interval = max(1, workers) / rate
        self.clock = clock
        self.sleep = sleep
        # A random phase, so that workers starting together do not all send at once.
        self.next_at = clock() + self.interval * (random.random() if phase is None else phase)

    # A worker that stalled (a slow send, a busy database) may catch up on at most this much of its
    # schedule: SES itself allows about a second of burst.
    CATCH_UP_SECONDS = 1.0

    def wait(self) -> None:
        now = self.clock()
        if self.next_at > now:
            self.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now - self.CATCH_UP_SECONDS) + self.interval


class Transport(Protocol):
    def send(self, message) -> str: ...


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class BatchSender:
    """Sends the messages of one Lambda invocation. Make a new one per invocation."""

    # Set by the handler (bulkmail.unsubscribe.UnsubscribeLinks): every email then carries its
    # recipient's signed one-click unsubscribe link. None only in tests of other concerns.
    unsubscribe_links = None

    def __init__(self, *, settings, campaigns, contacts, ledger, transport_for: Callable[[dict], Transport],
                 remaining_seconds: Callable[[], float] = lambda: float("inf"),
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.campaigns = campaigns
        self.contacts = contacts
        self.ledger = ledger
        self.transport_for = transport_for
        self.remaining_seconds = remaining_seconds
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self._transports: dict[str, Transport] = {}
        self._pacers: dict[str, Pacer] = {}
        self.stats = SendStats()  # this invocation's metrics (bulkmail.metrics)

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        """Read fresh for every message (≤ 50 recipients): pause, cancel and edits apply to the next one."""
        return self.campaigns.get(campaign_id)  # CampaignNotFound propagates

    def process(self, msg: BatchMessage, *, final_attempt: bool = False) -> list[Outcome]:
        """Send one message's batch. `final_attempt`: the queue will dead-letter the message if this
        fails, so whatever is left unsent is recorded as failed (dead-lettered, redrivable) first."""
        campaign = self.campaign(msg.campaign_id)
        if campaign["status"] == CampaignStatus.SCHEDULED.value:
            raise CampaignWaiting(f"campaign {msg.campaign_id} has not started")
        token = uuid.uuid4().hex
        claim = self.ledger.claim(msg.campaign_id, msg.batch_id, token, self.wall_clock(), self.settings.lease_seconds)
        if claim.claim in (Claim.DONE, Claim.PARKED):
            logger.info("batch already %s; acknowledging the redelivery", claim.claim.value,
                        extra={"batch_id": msg.batch_id})
            return []
        if claim.claim is Claim.BUSY:
            raise BatchBusy(f"batch {msg.batch_id} of {msg.campaign_id} is being sent by another worker")
        emails = list(dict.fromkeys(msg.contact_emails))
        replaces: set[str] = set()
        if claim.claim is Claim.RECLAIMED:
            recorded = self.ledger.recorded(msg.campaign_id, emails)
            replaces = {e for e, dead in recorded.items() if dead}
            emails = [e for e in emails if e not in recorded or e in replaces]

        if campaign["status"] == CampaignStatus.PAUSED.value:
            if self.ledger.park(msg.campaign_id, msg.batch_id, token, emails, now_iso()):
                return []  # held in the ledger until resume; the message is done with
            self.ledger.release(msg.campaign_id, msg.batch_id, token, now_iso())
            raise CampaignWaiting(f"campaign {msg.campaign_id} changed status while pausing")
        if campaign["status"] in _SKIP_REASON:
            reason = _SKIP_REASON[campaign["status"]]
            outcomes = [Outcome(e, DeliveryStatus.SKIPPED, reason=reason, replaces_dead_letter=e in replaces)
                        for e in emails]
            return self._record(campaign, msg, token, outcomes, "done")

        contacts = self.contacts.batch_get(emails)
        outcomes: list[Outcome] = []
        try:
            for email in emails:
                if self.remaining_seconds() <= 0:
                    raise OutOfTime(f"stopped before the invocation's timeout with {len(emails) - len(outcomes)} left")
                outcome = self._deliver(campaign, email, contacts.get(email))
                outcomes.append(replace(outcome, replaces_dead_letter=True) if email in replaces else outcome)
        except Exception as exc:
            # Record what was done, so that no retry sends it again; then let the message retry.
            if final_attempt:
                done = {o.email for o in outcomes}
                outcomes += [Outcome(e, DeliveryStatus.FAILED, reason=f"dead-lettered: {exc}", dead_lettered=True,
                                     replaces_dead_letter=e in replaces, failure_class="DeadLettered")
                             for e in emails if e not in done]
            self._record(campaign, msg, token, outcomes, "dead" if final_attempt else "pending")
            if isinstance(exc, SendingPaused):
                self.campaigns.transition(msg.campaign_id, (CampaignStatus.QUEUED, CampaignStatus.PROCESSING),
                                          CampaignStatus.PAUSED, now_iso(), {"pause_reason": str(exc)})
            raise
        return self._record(campaign, msg, token, outcomes, "done")

    def _deliver(self, campaign: dict[str, Any], email: str, contact: Contact | None) -> Outcome:
        if contact is None:
            logger.warning(str(ContactNotFound(email)) + " (deleted after queueing): skipped")
            return Outcome(email, DeliveryStatus.SKIPPED, reason="contact_deleted")
        if contact.status != ContactStatus.SUBSCRIBED.value:
            return Outcome(email, DeliveryStatus.SKIPPED, reason=contact.status)
        if not is_email(email):
            return Outcome(email, DeliveryStatus.FAILED, reason="invalid email address", failure_class="InvalidAddress")
        try:
            links = self.unsubscribe_links.for_recipient(campaign["campaign_id"], email) if self.unsubscribe_links else {}
            message = build_mime(campaign, contact, render(campaign, contact, **links))
        except Exception as exc:  # a template that fails for this contact fails this recipient only
            logger.warning("rendering failed", extra={"email": email, "error": repr(exc)})
            return Outcome(email, DeliveryStatus.FAILED, reason=f"render error: {exc}", failure_class="RenderError")
        transport = self._transport(campaign)
        self._pacer(campaign).wait()
        transient_left, throttle_left = self.settings.transient_retries, self.settings.throttle_retries
        for attempt in range(self.settings.transient_retries + self.settings.throttle_retries + 1):
            try:
                started = self.clock()
                message_id = transport.send(message)
                self.stats.latencies_ms.append((self.clock() - started) * 1000)
                return Outcome(email, DeliveryStatus.SENT, message_id=message_id)
            except PermanentSendError as exc:
                return Outcome(email, DeliveryStatus.FAILED, reason=str(exc), failure_class="Rejected")
            except Throttled:
                self.stats.throttled += 1
                # A short in-place backoff rides out a brief burst; a longer one goes back to the queue.
                if throttle_left == 0:
                    raise
                throttle_left -= 1
            except TransientSendError as exc:
                if transient_left == 0:
                    return Outcome(email, DeliveryStatus.FAILED, reason=f"transient, gave up: {exc}",
                                   failure_class="Transient")
                transient_left -= 1
            self.sleep(self.settings.retry_base_seconds * 2 ** attempt)
        raise AssertionError("unreachable")

    def _transport(self, campaign: dict[str, Any]) -> Transport:
        cid = campaign["campaign_id"]
        if cid not in self._transports:
            self._transports[cid] = self.transport_for(campaign)
        return self._transports[cid]

    def _pacer(self, campaign: dict[str, Any]) -> Pacer:
        cid = campaign["campaign_id"]
        if cid not in self._pacers:
            rate = float(campaign.get("max_send_rate") or self.settings.default_max_send_rate)
            self._pacers[cid] = Pacer(rate, self.settings.worker_concurrency, self.clock, self.sleep)
        return self._pacers[cid]

    def _record(self, campaign: dict[str, Any], msg: BatchMessage, token: str, outcomes: list[Outcome],
                batch_status: str) -> list[Outcome]:
        recorded = self.ledger.record(msg.campaign_id, msg.batch_id, token, outcomes,
                                      batch_status=batch_status, now_iso=now_iso())
        if len(recorded) != len(outcomes):
            duplicates = sorted({o.email for o in outcomes} - {o.email for o in recorded})
            logger.error("recipients were already recorded by another batch", extra={"emails": duplicates})
        for outcome in recorded:
            self.stats.record(outcome)
        if campaign["status"] == CampaignStatus.QUEUED.value and any(o.status is DeliveryStatus.SENT for o in recorded):
            self.campaigns.transition(msg.campaign_id, (CampaignStatus.QUEUED,), CampaignStatus.PROCESSING,
                                      now_iso(), {"started_at": now_iso()})
            campaign["status"] = CampaignStatus.PROCESSING.value
        return recorded

    def close(self) -> None:
        """Release the transports (an SMTP connection is kept open across a batch); call at the end."""
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            close = getattr(transport, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # the mail is sent and recorded: a failed goodbye changes nothing
                    logger.warning("closing a transport failed", extra={"error": repr(exc)})
