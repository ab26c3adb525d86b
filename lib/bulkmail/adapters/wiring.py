"""Builds the adapters a handler needs from the environment, once per container."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from bulkmail.adapters.caching import per_container
from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.events import CampaignEvents
from bulkmail.adapters.ledger import Ledger
from bulkmail.adapters.lists import AudienceIndex
from bulkmail.adapters.queue import SendQueue
from bulkmail.adapters.secrets import get_json_secret, get_text_secret
from bulkmail.adapters.ses import SesTransport
from bulkmail.adapters.signups import DynamoRateLimiter, SignupStore
from bulkmail.adapters.smtp import SUBMISSION_PORT, SmtpTransport
from bulkmail.errors import ConfigurationError, SecretNotConfigured
from bulkmail.settings import Settings, settings
from bulkmail.signup import Limits
from bulkmail.unsubscribe import UnsubscribeLinks


@dataclass(frozen=True)
class Stores:
    settings: Settings
    campaigns: CampaignStore
    contacts: ContactStore
    ledger: Ledger
    queue: SendQueue


@per_container
def stores() -> Stores:
    s = settings()
    return Stores(
        settings=s,
        campaigns=CampaignStore(s.campaigns_table, CampaignEvents(s.event_bus_name) if s.event_bus_name else None),
        contacts=ContactStore(s.contacts_table, s.lists_table or None, s.audience_table or None),
        ledger=Ledger(s.deliveries_table, s.batches_table, s.campaigns_table),
        queue=SendQueue(s.send_queue_url),
    )


@per_container
def idempotency_layer() -> DynamoDBPersistenceLayer:
    """Where the API keeps Idempotency-Key records: built once per container, as its client is."""
    name = os.environ.get("IDEMPOTENCY_TABLE", "")
    if not name:
        raise ConfigurationError("environment variable IDEMPOTENCY_TABLE is required")
    return DynamoDBPersistenceLayer(table_name=name)


def custom_fields_in_use() -> list[str]:
    """The custom fields contacts were imported with (the audience table's), which templates may name."""
    name = settings().audience_table
    return AudienceIndex(name).fields() if name else []


def transport_for(campaign: dict[str, Any]) -> SesTransport | SmtpTransport:
    """The transport a campaign sends through, with its credentials from Secrets Manager if named."""
    if campaign.get("email_service", "ses") == "smtp":
        if not campaign.get("aws_secret_name"):
            raise SecretNotConfigured(campaign["campaign_id"])
        login = get_json_secret(campaign["aws_secret_name"])  # {"username": ..., "password": ...}
        return SmtpTransport(
            campaign.get("smtp_server", ""),
            int(campaign.get("smtp_port") or SUBMISSION_PORT),
            username=str(login.get("username") or ""),
            password=str(login.get("password") or ""),
        )
    credentials = get_json_secret(campaign["aws_secret_name"]) if campaign.get("aws_secret_name") else None
    # The deployment's configuration set (bounce and complaint events) exists in this account only:
    # mail sent with another account's credentials goes without it.
    configuration_set = None if credentials else (os.environ.get("SES_CONFIGURATION_SET") or None)
    return SesTransport(
        region=campaign.get("aws_region") or None, credentials=credentials, configuration_set=configuration_set
    )


def unsubscribe_key() -> bytes:
    """The HMAC key of unsubscribe tokens, from the secret UNSUBSCRIBE_KEY_SECRET names (cached)."""
    name = os.environ.get("UNSUBSCRIBE_KEY_SECRET", "")
    if not name:
        raise ConfigurationError("environment variable UNSUBSCRIBE_KEY_SECRET is required")
    return get_text_secret(name).encode()


def unsubscribe_links() -> UnsubscribeLinks:
    base_url = os.environ.get("UNSUBSCRIBE_BASE_URL", "")
    if not base_url:
        raise ConfigurationError("environment variable UNSUBSCRIBE_BASE_URL is required")
    return UnsubscribeLinks(unsubscribe_key(), base_url, os.environ.get("UNSUBSCRIBE_MAILBOX", ""))


# --- signup (public API) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SignupWiring:
    store: SignupStore
    limiter: DynamoRateLimiter
    limits: Limits
    from_address: str
    public_url: str  # "" on AWS: the public API's URL is the request's own (see http/signup.py)


@per_container
def signup_wiring() -> SignupWiring:
    def required(name: str) -> str:
        value = os.environ.get(name, "")
        if not value:
            raise ConfigurationError(f"environment variable {name} is required by the signup routes")
        return value

    try:
        limits = Limits(
            per_client=int(os.environ.get("SIGNUPS_PER_CLIENT_PER_MINUTE") or Limits.per_client),
            per_address=int(os.environ.get("SIGNUPS_PER_ADDRESS_PER_HOUR") or Limits.per_address),
        )
    except ValueError:
        raise ConfigurationError(
            "SIGNUPS_PER_CLIENT_PER_MINUTE and SIGNUPS_PER_ADDRESS_PER_HOUR must be integers"
        ) from None
    return SignupWiring(
        store=SignupStore(settings().contacts_table, required("LISTS_TABLE"), required("AUDIENCE_TABLE")),
        limiter=DynamoRateLimiter(required("SIGNUP_LIMITS_TABLE")),
        limits=limits,
        from_address=os.environ.get("SIGNUP_FROM_ADDRESS") or f"no-reply@{required('SENDER_IDENTITY')}",
        public_url=os.environ.get("UNSUBSCRIBE_BASE_URL", ""),  # set locally: the public API's URL
    )


def new_container() -> None:
    """Forget everything cached per container (settings, clients, secrets), as a cold start would.

    For the embedded runtime, which can provision several stacks in one process.
    """
    from aws_lambda_powertools.utilities import parameters

    from bulkmail.adapters import control, dynamo, events, queue, ses
    from bulkmail.settings import settings as settings_cache

    for cached in (
        settings_cache,
        stores,
        idempotency_layer,
        signup_wiring,
        dynamo.resource,
        queue._sqs,
        ses._client,
        control._sfn,
        control._scheduler,
        events._events,
    ):
        cached.cache_clear()
    parameters.clear_caches()
