"""The worker's logic: one SQS message (a campaign id and up to N contact emails) at a time.

read the campaign → claim the batch → read contacts (one BatchGetItem) → render → send → note each
accepted email in the ledger at once → record every outcome, the counters and the release in one
transaction. The campaign is read fresh for each
message, so a pause, cancel or edit takes effect from the next batch of recipients on
(docs/architecture.md, decision 8) at the price of one GetItem per message."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from email.message import Message
from typing import Any, Protocol

from bulkmail.clock import now_iso
from bulkmail.errors import (
    BatchBusy,
    CampaignWaiting,
    ContactNotFound,
    OutOfTime,
    PacingDeferred,
    PermanentSendError,
    SendingPaused,
    Throttled,
    TransientSendError,
)
from bulkmail.metrics import SendStats
from bulkmail.models import (
    BatchMessage,
    CampaignStatus,
    Claim,
    Contact,
    ContactStatus,
    DeliveryStatus,
    Lease,
    Outcome,
)
from bulkmail.ports import Campaigns, Contacts, Ledger
from bulkmail.rendering import build_mime, render
from bulkmail.settings import MAX_SEND_RATE, MIN_SEND_RATE, Settings
from bulkmail.tracking import tracking_of
from bulkmail.unsubscribe import UnsubscribeLinks
from bulkmail.validation import is_email

logger = logging.getLogger(__name__)

# Campaign statuses whose remaining recipients are skipped, with the reason recorded.
_SKIP_REASON = {CampaignStatus.CANCELLED.value: "cancelled", CampaignStatus.FAILED.value: "campaign_failed"}


class Pacer:
    """Spaces one worker's sends so that all workers together keep to the campaign's rate.

    Each of the (at most) `workers` concurrent invocations sends at rate / workers, on a schedule
    (not sleep-after-send), so the time spent rendering and sending is absorbed by the interval.
    A wait is bounded: one longer than the caller allows raises PacingDeferred instead of sleeping.
    """

    # The longest a worker sleeps for one slot; a slower campaign hands its message back instead, so
    # that it never holds a worker (and the campaigns behind it) for long.
    MAX_SLEEP_SECONDS = 2.0
    # A worker that stalled (a slow send, a busy database) may catch up on at most this much of its
    # schedule: SES itself allows about a second of burst.
    CATCH_UP_SECONDS = 1.0

    def __init__(
        self,
        rate: float,
        workers: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        phase: float | None = None,
    ) -> None:
        self.interval = max(1, workers) / min(MAX_SEND_RATE, max(MIN_SEND_RATE, rate))
        self.clock = clock
        self.sleep = sleep
        # A random phase, so that workers starting together do not all send at once (within what a
        # worker may sleep: a slow campaign's first send of an invocation is not deferred).
        spread = min(self.interval, self.MAX_SLEEP_SECONDS)
        self.next_at = clock() + spread * (random.random() if phase is None else phase)

    def wait(self, time_left: float = float("inf")) -> None:
        """Sleep until this worker's next slot; PacingDeferred if that is more than `time_left` or
        MAX_SLEEP_SECONDS away (nothing is slept then, and the slot stays unused)."""
        now = self.clock()
        delay = self.next_at - now
        if delay > min(self.MAX_SLEEP_SECONDS, time_left):
            raise PacingDeferred(delay)
        if delay > 0:
            self.sleep(delay)
        self.next_at = max(self.next_at, now - self.CATCH_UP_SECONDS) + self.interval


class Transport(Protocol):
    def send(self, message: Message) -> str: ...


class BatchSender:
    """Sends the messages of one Lambda invocation. Make a new one per invocation."""

    # Set by the handler (bulkmail.unsubscribe.UnsubscribeLinks): every email then carries its
    # recipient's signed one-click unsubscribe link. None only in tests of other concerns.
    unsubscribe_links: UnsubscribeLinks | None = None
    # Kept from the invocation's end for the last writes (each a few ms; retried writes use the rest).
    RECORD_SAFETY_SECONDS = 1.0

    def __init__(
        self,
        *,
        settings: Settings,
        campaigns: Campaigns,
        contacts: Contacts,
        ledger: Ledger,
        transport_for: Callable[[dict[str, Any]], Transport],
        remaining_seconds: Callable[[], float] = lambda: float("inf"),
        send_margin: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`remaining_seconds`: the invocation's time left. Sending stops `send_margin` before its end
        (what was sent is then recorded); recording may go on until RECORD_SAFETY_SECONDS before it."""
        self.settings = settings
        self.campaigns = campaigns
        self.contacts = contacts
        self.ledger = ledger
        self.transport_for = transport_for
        self.remaining_seconds = remaining_seconds
        self.send_margin = send_margin
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self._transports: dict[str, Transport] = {}
        self._pacers: dict[str, Pacer] = {}
        self.stats = SendStats()  # this invocation's metrics (bulkmail.metrics)

    def send_time_left(self) -> float:
        return self.remaining_seconds() - self.send_margin

    def record_time_left(self) -> float:
        return self.remaining_seconds() - self.RECORD_SAFETY_SECONDS

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        """The record read fresh for every message (≤ 50 recipients): pause, cancel and edits apply to
        the next one. It is small (1 read unit); its content version's subject and bodies are read once
        per worker container (kept by the store), so an edit reaches the next message too."""
        return dict(self.campaigns.with_content(self.campaigns.head(campaign_id)))  # CampaignNotFound propagates

    def process(self, msg: BatchMessage, *, final_attempt: bool = False) -> list[Outcome]:
        """Send one message's batch. `final_attempt`: the queue will dead-letter the message if this
        fails, so whatever is left unsent is recorded as failed (dead-lettered, redrivable) first."""
        campaign = self.campaign(msg.campaign_id)
        if campaign["status"] == CampaignStatus.SCHEDULED.value:
            raise CampaignWaiting(f"campaign {msg.campaign_id} has not started")
        token = uuid.uuid4().hex
        claim = self.ledger.claim(msg.campaign_id, msg.batch_id, token, self.wall_clock(), self.settings.lease_seconds)
        if claim.claim in (Claim.DONE, Claim.PARKED):
            logger.info(
                "batch already %s; acknowledging the redelivery", claim.claim.value, extra={"batch_id": msg.batch_id}
            )
            return []
        if claim.claim is Claim.BUSY:
            raise BatchBusy(f"batch {msg.batch_id} of {msg.campaign_id} is being sent by another worker")
        lease = Lease(
            msg.campaign_id,
            msg.batch_id,
            token,
            self.settings.lease_seconds,
            self.record_time_left,
            self.wall_clock,
            self.sleep,
        )
        emails = list(dict.fromkeys(msg.contact_emails))
        replaces: set[str] = set()
        outcomes: list[Outcome] = []
        if claim.claim is Claim.RECLAIMED:
            rows = self.ledger.recorded(msg.campaign_id, emails)
            # Sent by an earlier attempt of this batch that ended before recording them (its token is not
            # among the counted ones): counted now, not sent again. Another batch's rows are its own.
            outcomes = [
                Outcome(
                    e,
                    DeliveryStatus.SENT,
                    message_id=r.get("message_id", ""),
                    noted=True,
                    noted_by=r["noted_by"],
                    replaces_dead_letter=bool(r.get("replaced_dead_letter")),
                )
                for e, r in rows.items()
                if r.get("noted_by") and r.get("batch_id") == msg.batch_id and r["noted_by"] not in claim.counted
            ]
            # A redriven dead letter is sent again only if no re-send of the campaign has taken it over.
            replaces = {
                e
                for e, r in rows.items()
                if r.get("dead_lettered") and self.ledger.take_back_dead_letter(msg.campaign_id, e, lease)
            }
            emails = [e for e in emails if e not in rows or e in replaces]

        if campaign["status"] == CampaignStatus.PAUSED.value:
            if not outcomes and self.ledger.park(lease, emails, now_iso()):
                return []  # held in the ledger until resume; the message is done with
            self._record(campaign, lease, outcomes, "pending")
            raise CampaignWaiting(f"campaign {msg.campaign_id} is paused")
        if campaign["status"] in _SKIP_REASON:
            reason = _SKIP_REASON[campaign["status"]]
            outcomes += [
                Outcome(e, DeliveryStatus.SKIPPED, reason=reason, replaces_dead_letter=e in replaces) for e in emails
            ]
            return self._record(campaign, lease, outcomes, "done")

        contacts = self.contacts.batch_get(emails)
        try:
            for email in emails:
                if self.send_time_left() <= 0:
                    raise OutOfTime(f"stopped before the invocation's timeout with {len(emails) - len(outcomes)} left")
                outcome = self._deliver(campaign, email, contacts.get(email), lease, email in replaces)
                if outcome is not None:
                    outcomes.append(outcome)
        except Exception as exc:
            # Record what was done, so that no retry sends it again; then let the message retry.
            dead = final_attempt and not isinstance(exc, (PacingDeferred, SendingPaused))
            if dead:
                done = {o.email for o in outcomes}
                outcomes += [
                    Outcome(
                        e,
                        DeliveryStatus.FAILED,
                        reason=f"dead-lettered: {exc}",
                        dead_lettered=True,
                        replaces_dead_letter=e in replaces,
                        failure_class="DeadLettered",
                    )
                    for e in emails
                    if e not in done
                ]
            if isinstance(exc, SendingPaused):
                # The account or its configuration cannot send: nobody is failed for it; the campaign
                # pauses with the reason (and its CampaignPaused event) until an operator resumes it.
                self.campaigns.transition(
                    msg.campaign_id,
                    (CampaignStatus.QUEUED, CampaignStatus.PROCESSING),
                    CampaignStatus.PAUSED,
                    now_iso(),
                    {"pause_reason": str(exc)},
                )
            self._record(campaign, lease, outcomes, "dead" if dead else "pending")
            raise
        return self._record(campaign, lease, outcomes, "done")

    def _deliver(
        self, campaign: dict[str, Any], email: str, contact: Contact | None, lease: Lease, redriven: bool
    ) -> Outcome | None:
        """One recipient's outcome; None when it belongs to another campaign of the family now."""
        if contact is None:
            logger.warning(str(ContactNotFound(email)) + " (deleted after queueing): skipped")
            return Outcome(email, DeliveryStatus.SKIPPED, reason="contact_deleted", replaces_dead_letter=redriven)
        if contact.status != ContactStatus.SUBSCRIBED.value:
            return Outcome(email, DeliveryStatus.SKIPPED, reason=contact.status, replaces_dead_letter=redriven)
        if not is_email(email):
            return Outcome(
                email,
                DeliveryStatus.FAILED,
                reason="invalid email address",
                failure_class="InvalidAddress",
                replaces_dead_letter=redriven,
            )
        try:
            links: dict[str, str] = (
                self.unsubscribe_links.for_recipient(campaign["campaign_id"], email) if self.unsubscribe_links else {}
            )
            tracking = tracking_of(campaign, self.settings.tracking_defaults)
            message = build_mime(campaign, contact, render(campaign, contact, tracking=tracking, **links))
            message.as_bytes()  # a value that cannot go on the wire fails here, for this recipient only
        except Exception as exc:  # noqa: BLE001 — a template or a value that fails for this contact fails this recipient only
            logger.warning("rendering failed", extra={"email": email, "error": repr(exc)})
            return Outcome(
                email,
                DeliveryStatus.FAILED,
                reason=f"render error: {exc}",
                failure_class="RenderError",
                replaces_dead_letter=redriven,
            )
        transport = self._transport(campaign)
        self._pacer(campaign).wait(self.send_time_left())
        if campaign.get("resend_of") and not self.ledger.take_over_for_resend(
            campaign["resend_of"], email, campaign["campaign_id"], lease
        ):
            # A redrive of the original has sent (or is sending) to this recipient.
            return Outcome(email, DeliveryStatus.SKIPPED, reason="sent_by_original", replaces_dead_letter=redriven)
        outcome = self._send(transport, message, email)
        outcome = replace(outcome, replaces_dead_letter=redriven)
        if outcome.status is DeliveryStatus.SENT:
            if not self.ledger.note_sent(lease, outcome, now_iso()):
                logger.error("recipient was already recorded by another batch", extra={"email": email})
                return None
            outcome = replace(outcome, noted=True, noted_by=lease.token)
        return outcome

    def _send(self, transport: Transport, message: Message, email: str) -> Outcome:
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
                    return Outcome(
                        email, DeliveryStatus.FAILED, reason=f"transient, gave up: {exc}", failure_class="Transient"
                    )
                transient_left -= 1
            delay = self.settings.retry_base_seconds * 2**attempt
            if delay > self.send_time_left():
                raise OutOfTime(f"no time left to retry the send to {email}")
            self.sleep(delay)
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

    def _record(
        self, campaign: dict[str, Any], lease: Lease, outcomes: list[Outcome], batch_status: str
    ) -> list[Outcome]:
        recorded = self.ledger.record(lease, outcomes, batch_status=batch_status, now_iso=now_iso())
        if len(recorded) != len(outcomes):
            duplicates = sorted({o.email for o in outcomes} - {o.email for o in recorded})
            logger.error("recipients were already recorded by another batch", extra={"emails": duplicates})
        for outcome in recorded:
            self.stats.record(outcome)
        if campaign["status"] == CampaignStatus.QUEUED.value and any(o.status is DeliveryStatus.SENT for o in recorded):
            self.campaigns.transition(
                lease.campaign_id,
                (CampaignStatus.QUEUED,),
                CampaignStatus.PROCESSING,
                now_iso(),
                {"started_at": now_iso()},
            )
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
                except Exception as exc:  # noqa: BLE001 — the mail is sent and recorded: a failed goodbye changes nothing
                    logger.warning("closing a transport failed", extra={"error": repr(exc)})
