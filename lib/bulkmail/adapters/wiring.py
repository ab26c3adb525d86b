"""Builds the adapters a handler needs from the Settings (the environment, checked once), once per container."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from bulkmail.adapters.archive import ArchiveReader
from bulkmail.adapters.caching import per_container
from bulkmail.adapters.campaign_admin import CampaignAdmin
from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.engagement import EngagementStore
from bulkmail.adapters.events import CampaignEvents
from bulkmail.adapters.ledger import Ledger
from bulkmail.adapters.lists import AudienceIndex
from bulkmail.adapters.queue import SendQueue
from bulkmail.adapters.scheduler import Scheduler
from bulkmail.adapters.secrets import get_json_secret, get_text_secret
from bulkmail.adapters.ses import SesTransport
from bulkmail.adapters.signups import DynamoRateLimiter, SignupStore
from bulkmail.adapters.smtp import SUBMISSION_PORT, SmtpTransport
from bulkmail.adapters.stepfunctions import Workflow
from bulkmail.adapters.templates import TemplateStore
from bulkmail.errors import ConfigurationError, SecretNotConfigured
from bulkmail.settings import Settings, settings
from bulkmail.signup import Limits
from bulkmail.tracking import message_tags, tracking_of
from bulkmail.unsubscribe import UnsubscribeLinks


@dataclass(frozen=True)
class Stores:
    settings: Settings
    campaigns: CampaignStore
    contacts: ContactStore
    ledger: Ledger
    queue: SendQueue
    admin: CampaignAdmin


@per_container
def stores() -> Stores:
    s = settings()
    return Stores(
        settings=s,
        campaigns=CampaignStore(s.campaigns_table, CampaignEvents(s.event_bus_name) if s.event_bus_name else None),
        contacts=ContactStore(s.contacts_table, s.lists_table or None, s.audience_table or None),
        ledger=Ledger(s.deliveries_table, s.batches_table, s.campaigns_table),
        queue=SendQueue(s.send_queue_url),
        admin=CampaignAdmin(s.campaigns_table, s.deliveries_table),
    )


def _required(name: str, value: str) -> str:
    if not value:
        raise ConfigurationError(f"environment variable {name.upper()} is required")
    return value


@per_container
def executions() -> Workflow:
    """The campaign state machine (the management API's STATE_MACHINE_ARN)."""
    return Workflow(_required("state_machine_arn", settings().state_machine_arn))


@per_container
def schedules() -> Scheduler:
    """Where scheduled campaigns wait for their start (the management API's SCHEDULE_* settings)."""
    s = settings()
    return Scheduler(
        _required("schedule_group", s.schedule_group),
        _required("state_machine_arn", s.state_machine_arn),
        _required("scheduler_role_arn", s.scheduler_role_arn),
        _required("schedule_dead_letter_arn", s.schedule_dead_letter_arn),
    )


@per_container
def engagement_store() -> EngagementStore:
    s = settings()
    if not s.engagement_table:
        raise ConfigurationError("environment variable ENGAGEMENT_TABLE is required")
    return EngagementStore(s.engagement_table, s.deliveries_table)


@per_container
def idempotency_layer() -> DynamoDBPersistenceLayer:
    """Where the API keeps Idempotency-Key records: built once per container, as its client is."""
    return DynamoDBPersistenceLayer(table_name=_required("idempotency_table", settings().idempotency_table))


# --- stored templates (the API function's TEMPLATES_TABLE) ---
@per_container
def template_store() -> TemplateStore:
    name = settings().templates_table
    if not name:
        raise ConfigurationError("environment variable TEMPLATES_TABLE is required")
    return TemplateStore(name)


# --- the public archive (the public API function's reads of the campaigns table) ---
@per_container
def archive_reader() -> ArchiveReader:
    return ArchiveReader(settings().campaigns_table)


def custom_fields_in_use() -> list[str]:
    """The custom fields contacts were imported with (the audience table's), which templates may name."""
    name = settings().audience_table
    return AudienceIndex(name).fields() if name else []


def transport_for(campaign: Mapping[str, Any]) -> SesTransport | SmtpTransport:
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
            tls_context=ssl.create_default_context(cafile=settings().smtp_ca_file or None),
        )
    credentials = get_json_secret(campaign["aws_secret_name"]) if campaign.get("aws_secret_name") else None
    s = settings()
    tracking = tracking_of(campaign, s.tracking_defaults)
    # The deployment's configuration sets (bounce and complaint events; the tracked one adds opens,
    # clicks and deliveries) exist in this account only: mail sent with another account's credentials
    # goes without them, so untracked.
    chosen = s.ses_tracked_configuration_set if tracking.tracked else s.ses_configuration_set
    configuration_set = None if credentials else (chosen or None)
    return SesTransport(
        region=campaign.get("aws_region") or None,
        credentials=credentials,
        configuration_set=configuration_set,
        tags=message_tags(campaign, tracking, s.feedback_id),
    )


def unsubscribe_key() -> bytes:
    """The HMAC key of unsubscribe tokens, from the secret UNSUBSCRIBE_KEY_SECRET names (cached)."""
    return get_text_secret(_required("unsubscribe_key_secret", settings().unsubscribe_key_secret)).encode()


def unsubscribe_links() -> UnsubscribeLinks:
    s = settings()
    base_url = _required("unsubscribe_base_url", s.unsubscribe_base_url)
    return UnsubscribeLinks(unsubscribe_key(), base_url, s.unsubscribe_mailbox)


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
    s = settings()
    return SignupWiring(
        store=SignupStore(
            s.contacts_table, _required("lists_table", s.lists_table), _required("audience_table", s.audience_table)
        ),
        limiter=DynamoRateLimiter(_required("signup_limits_table", s.signup_limits_table)),
        limits=Limits(per_client=s.signups_per_client_per_minute, per_address=s.signups_per_address_per_hour),
        from_address=s.signup_from_address or f"no-reply@{_required('sender_identity', s.sender_identity)}",
        public_url=s.unsubscribe_base_url,  # set locally: the public API's URL
    )


def new_container() -> None:
    """Forget everything cached per container (settings, clients, secrets), as a cold start would.

    For the embedded runtime, which can provision several stacks in one process.
    """
    from aws_lambda_powertools.utilities import parameters

    from bulkmail.adapters import dynamo, events, queue, scheduler, ses, stepfunctions
    from bulkmail.settings import settings as settings_cache

    for cached in (
        settings_cache,
        stores,
        engagement_store,
        idempotency_layer,
        executions,
        schedules,
        template_store,
        archive_reader,
        signup_wiring,
        dynamo.resource,
        queue._sqs,
        ses._client,
        stepfunctions._sfn,
        scheduler._scheduler,
        events._events,
    ):
        cached.cache_clear()
    parameters.clear_caches()
