"""Builds the adapters a handler needs from the environment, once per container."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.ledger import Ledger
from bulkmail.adapters.queue import SendQueue
from bulkmail.adapters.secrets import get_json_secret
from bulkmail.adapters.ses import SesTransport
from bulkmail.errors import SecretNotConfigured
from bulkmail.settings import Settings, settings


@dataclass(frozen=True)
class Stores:
    settings: Settings
    campaigns: CampaignStore
    contacts: ContactStore
    ledger: Ledger
    queue: SendQueue


@lru_cache(maxsize=1)
def stores() -> Stores:
    s = settings()
    return Stores(
        settings=s,
        campaigns=CampaignStore(s.campaigns_table),
        contacts=ContactStore(s.contacts_table),
        ledger=Ledger(s.deliveries_table, s.batches_table, s.campaigns_table),
        queue=SendQueue(s.send_queue_url),
    )


def transport_for(campaign: dict[str, Any]):
    """The transport a campaign sends through, with its credentials from Secrets Manager if named."""
    if campaign.get("email_service", "ses") == "smtp":
        if not campaign.get("aws_secret_name"):
            raise SecretNotConfigured(campaign["campaign_id"])
        raise NotImplementedError("the SMTP transport is not available in this version")
    credentials = get_json_secret(campaign["aws_secret_name"]) if campaign.get("aws_secret_name") else None
    return SesTransport(region=campaign.get("aws_region") or None, credentials=credentials)


def new_container() -> None:
    """Forget everything cached per container (settings, clients, secrets), as a cold start would.

    For the embedded runtime, which can provision several stacks in one process.
    """
    from aws_lambda_powertools.utilities import parameters

    from bulkmail.adapters import control, dynamo, queue, ses
    from bulkmail.settings import settings as settings_cache

    for cached in (settings_cache, stores, dynamo.resource, queue._sqs, ses._client, control._sfn, control._scheduler):
        cached.cache_clear()
    parameters.clear_caches()
