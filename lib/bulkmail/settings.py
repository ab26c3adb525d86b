"""The deployment's configuration, read from the environment once per container and checked."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from functools import lru_cache
from typing import Any

from bulkmail.errors import ConfigurationError
from bulkmail.tracking import Tracking, flag

_TYPES = {"str": str, "int": int, "float": float}

# A campaign's max_send_rate (emails per second), validated against these bounds wherever it is
# accepted. Below the minimum a worker would wait longer for one send than any message is worth
# keeping; above the maximum no SES account sends.
MIN_SEND_RATE = 0.01
MAX_SEND_RATE = 100_000.0


@dataclass(frozen=True)
class Settings:
    campaigns_table: str
    contacts_table: str
    deliveries_table: str
    batches_table: str
    send_queue_url: str
    lease_seconds: int  # a batch claim is stale after this: LEASE_SECONDS in template.yaml, > the worker's timeout
    recipients_per_message: int = 50  # contact references in one SQS message
    fanout_page_size: int = 1000  # contacts read per fan-out step
    backlog_seconds: int = 180  # fan-out stops while the backlog exceeds this much sending
    default_max_send_rate: float = 14.0  # emails/s when the campaign names none (SES sandbox rate)
    poll_seconds: int = 60  # the workflow's wait between steps (back-pressure, completion)
    steps_per_execution: int = 2000  # then the campaign continues in a new execution (≤ 9 events a step)
    worker_concurrency: int = 2  # the event source's MaximumConcurrency: pacing divides the rate
    max_receive_count: int = 20  # the send queue's redrive maxReceiveCount
    transient_retries: int = 2  # in-place retries of a transient send error, then failed
    throttle_retries: int = 3  # in-place retries of a throttled send, then back to the queue
    retry_base_seconds: float = 0.2
    event_bus_name: str = ""  # campaign lifecycle events; empty: none published from code
    lists_table: str = ""  # the list names imports keep (the API function's)
    audience_table: str = ""  # list memberships, segments, custom field names (adapters/lists.py)
    # The management API's own (empty elsewhere; wiring refuses to build what needs one that is empty).
    state_machine_arn: str = ""
    idempotency_table: str = ""
    schedule_group: str = ""
    scheduler_role_arn: str = ""
    schedule_dead_letter_arn: str = ""
    ses_configuration_set: str = ""  # the worker's: bounce and complaint events (this account's mail only)
    ses_tracked_configuration_set: str = ""  # the worker's, for a campaign that tracks opens or clicks
    unsubscribe_key_secret: str = ""  # the secret holding the HMAC key of unsubscribe tokens
    unsubscribe_base_url: str = ""  # the public API's URL, for the links in every email
    unsubscribe_mailbox: str = ""  # optional: an address that processes unsubscribe mails
    track_opens: str = "false"  # a campaign's track_opens when it names none (stack parameter TrackOpens)
    track_clicks: str = "false"  # likewise track_clicks (TrackClicks)
    feedback_id: str = "bulkmail"  # the ses:feedback-id-b tag: the sender in Gmail's feedback loop
    engagement_table: str = ""  # opens, clicks and deliveries: sharded counters and dedupe markers
    templates_table: str = ""  # stored templates (the API function's; issue 16)
    contact_events: str = "false"  # EmailOpened, LinkClicked, ContactBounced, ContactUnsubscribed on the bus
    smtp_ca_file: str = ""  # an extra CA bundle the SMTP transport trusts (a relay with a private CA)

    @property
    def tracking_defaults(self) -> Tracking:
        return Tracking(opens=flag(self.track_opens), clicks=flag(self.track_clicks))

    # ---- signup (the public function's; issue 15) ----
    signup_limits_table: str = ""  # per-window counters of signups, expired by TTL
    signup_from_address: str = ""  # the confirmation email's From; empty: no-reply@ the sender identity
    sender_identity: str = ""  # the verified SES identity (SenderIdentity)
    signups_per_client_per_minute: int = 10
    signups_per_address_per_hour: int = 3
    # ---- end signup ----

    def __post_init__(self) -> None:
        if not 1 <= self.recipients_per_message <= 90:
            # One transaction records a message: its recipients + the campaign + the batch (≤ 100 items).
            raise ConfigurationError("RECIPIENTS_PER_MESSAGE must be between 1 and 90")
        if self.fanout_page_size < self.recipients_per_message:
            raise ConfigurationError("FANOUT_PAGE_SIZE must be at least RECIPIENTS_PER_MESSAGE")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = env.get(name, "")
            if raw == "":
                if f.default is MISSING:
                    raise ConfigurationError(f"environment variable {name} is required")
                continue
            kind = _TYPES[str(f.type)]
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ConfigurationError(
                    f"environment variable {name} must be a {kind.__name__}, not {raw!r}"
                ) from None
        return cls(**values)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
