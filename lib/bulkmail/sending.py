"""The worker's logic: one SQS message (a campaign id and up to N contact emails) at a time.

claim the batch → read contacts (one BatchGetItem) → render → send → record every outcome, the
counters and the release in one transaction. The campaign is read once per invocation (per batch of
messages), so a pause, cancel or edit takes effect within one batch (DESIGN.md decision 7).
"""
from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
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
from bulkmail.models import BatchMessage, Claim, CampaignStatus, Contact, ContactStatus, DeliveryStatus, Outcome
from bulkmail.rendering import build_mime, render
from bulkmail.validation import is_email

logger = logging.getLogger(__name__)

_STOPPED = {CampaignStatus.CANCELLED.value, CampaignStatus.FAILED.value, CampaignStatus.COMPLETED.value}
_WAITING = {CampaignStatus.PAUSED.value, CampaignStatus.SCHEDULED.value}


class CampaignWaiting(SendError):
    """The campaign is paused (or not started): leave the message for later."""


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
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.campaigns = campaigns
        self.contacts = contacts
        self.ledger = ledger
        self.transport_for = transport_for
        self.clock = clock
        self.sleep = sleep
        self._campaigns: dict[str, dict[str, Any]] = {}
        self._transports: dict[str, Transport] = {}
        self.counts: Counter[str] = Counter()

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        if campaign_id not in self._campaigns:
            self._campaigns[campaign_id] = self.campaigns.get(campaign_id)  # CampaignNotFound propagates
        return self._campaigns[campaign_id]

    def process(self, msg: BatchMessage) -> list[Outcome]:
        campaign = self.campaign(msg.campaign_id)
        if campaign["status"] in _WAITING:
            raise CampaignWaiting(f"campaign {msg.campaign_id} is {campaign['status']}")
        token = uuid.uuid4().hex
        claim = self.ledger.claim(msg.campaign_id, msg.batch_id, token, self.clock(), self.settings.lease_seconds)
        if claim.claim is Claim.DONE:
            logger.info("batch already recorded; acknowledging the redelivery", extra={"batch_id": msg.batch_id})
            return []
        if claim.claim is Claim.BUSY:
            raise BatchBusy(f"batch {msg.batch_id} of {msg.campaign_id} is being sent by another worker")
        emails = list(dict.fromkeys(msg.contact_emails))
        if claim.claim is Claim.RECLAIMED:
            already = self.ledger.recorded(msg.campaign_id, emails)
            emails = [e for e in emails if e not in already]

        if campaign["status"] in _STOPPED:
            outcomes = [Outcome(e, DeliveryStatus.SKIPPED, reason=campaign["status"]) for e in emails]
            return self._record(campaign, msg, token, outcomes, finished=True)

        contacts = self.contacts.batch_get(emails)
        outcomes: list[Outcome] = []
        try:
            for email in emails:
                outcomes.append(self._deliver(campaign, email, contacts.get(email)))
        except (Throttled, SendingPaused) as exc:
            self._record(campaign, msg, token, outcomes, finished=False)
            if isinstance(exc, SendingPaused):
                self.campaigns.transition(msg.campaign_id, (CampaignStatus.QUEUED, CampaignStatus.PROCESSING),
                                          CampaignStatus.PAUSED, now_iso(), {"pause_reason": str(exc)})
            raise
        except Exception:
            # Record what was sent so a retry does not send it again, then let the message retry.
            self._record(campaign, msg, token, outcomes, finished=False)
            raise
        return self._record(campaign, msg, token, outcomes, finished=True)

    def _deliver(self, campaign: dict[str, Any], email: str, contact: Contact | None) -> Outcome:
        if contact is None:
            logger.warning(str(ContactNotFound(email)) + " (deleted after queueing): skipped")
            return Outcome(email, DeliveryStatus.SKIPPED, reason="contact_deleted")
        if contact.status != ContactStatus.SUBSCRIBED.value:
            return Outcome(email, DeliveryStatus.SKIPPED, reason=contact.status)
        if not is_email(email):
            return Outcome(email, DeliveryStatus.FAILED, reason="invalid email address")
        try:
            links = self.unsubscribe_links.for_recipient(campaign["campaign_id"], email) if self.unsubscribe_links else {}
            message = build_mime(campaign, contact, render(campaign, contact, **links))
        except Exception as exc:  # a template that fails for this contact fails this recipient only
            logger.warning("rendering failed", extra={"email": email, "error": repr(exc)})
            return Outcome(email, DeliveryStatus.FAILED, reason=f"render error: {exc}")
        transport = self._transport(campaign)
        for attempt in range(self.settings.transient_retries + 1):
            try:
                return Outcome(email, DeliveryStatus.SENT, message_id=transport.send(message))
            except PermanentSendError as exc:
                return Outcome(email, DeliveryStatus.FAILED, reason=str(exc))
            except TransientSendError as exc:
                if attempt == self.settings.transient_retries:
                    return Outcome(email, DeliveryStatus.FAILED, reason=f"transient, gave up: {exc}")
                self.sleep(self.settings.retry_base_seconds * 2 ** attempt)
        raise AssertionError("unreachable")

    def _transport(self, campaign: dict[str, Any]) -> Transport:
        cid = campaign["campaign_id"]
        if cid not in self._transports:
            self._transports[cid] = self.transport_for(campaign)
        return self._transports[cid]

    def _record(self, campaign: dict[str, Any], msg: BatchMessage, token: str, outcomes: list[Outcome],
                *, finished: bool) -> list[Outcome]:
        recorded = self.ledger.record(msg.campaign_id, msg.batch_id, token, outcomes,
                                      finished=finished, now_iso=now_iso())
        if len(recorded) != len(outcomes):
            duplicates = sorted({o.email for o in outcomes} - {o.email for o in recorded})
            logger.error("recipients were already recorded by another batch", extra={"emails": duplicates})
        self.counts.update(o.status.value for o in recorded)
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
