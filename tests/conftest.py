"""Shared fixtures: the embedded runtime built from template.yaml, so tests cannot drift from it."""

from __future__ import annotations

import contextlib
import email
import email.policy
from pathlib import Path
from typing import Any

import pytest

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.contacts import ContactStore
from bulkmail.adapters.ledger import Ledger
from bulkmail.adapters.queue import SendQueue
from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import CampaignNotFound
from bulkmail.models import BatchMessage
from bulkmail.validation import validate_campaign
from bulkmail_local.runtime import EmbeddedRuntime
from tests.waiting import eventually

SEED_CAMPAIGN = {
    "campaign_name": "Monthly Newsletter",
    "subject": "Hello {{first_name}}!",
    "body": "Dear {{first_name}} {{last_name}}, welcome to {{company}}",
    "body_html": "<p>Dear {{first_name}} {{last_name}}, welcome to <b>{{company}}</b></p>",
    "from_email": "noreply@example.com",
}


class Harness:
    """The runtime plus the project's own stores, pointed at the provisioned resources."""

    def __init__(self, rt: EmbeddedRuntime, outbox: Path):
        self.rt = rt
        self.outbox = outbox
        self.campaigns = CampaignStore(rt.physical["CampaignsTable"])
        self.contacts = ContactStore(
            rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"]
        )
        self.ledger = Ledger(rt.physical["DeliveriesTable"], rt.physical["BatchesTable"], rt.physical["CampaignsTable"])
        self.queue = SendQueue(rt.physical["SendQueue"])
        self.worker = rt.event_sources[0]
        self.worker_fn = next(f for f in rt.functions.values() if f.logical_id == "SendEmailsFunction")

    def add_contacts(self, contacts: list[dict[str, Any]]) -> None:
        items, rejected = normalise_contacts(contacts)
        assert not rejected, rejected
        self.contacts.put_many(items)

    def add_campaign(self, total: int, **overrides: Any) -> dict[str, Any]:
        campaign = validate_campaign({**SEED_CAMPAIGN, **overrides})
        self.campaigns.create({**campaign, "status": "queued", "total_contacts": total, "max_send_rate": 14})
        return campaign

    def enqueue(self, campaign_id: str, batch_id: str, emails: list[str]) -> None:
        self.queue.send([BatchMessage(campaign_id, batch_id, tuple(emails))])

    def drain(self, max_batches: int = 100) -> int:
        """Run the emulated event source by hand until the queue yields nothing."""
        batches = 0
        while batches < max_batches and self.worker.poll_once():
            batches += 1
        self.rt.outbox.flush()
        return batches

    def sent_messages(self, campaign_id: str) -> list[email.message.EmailMessage]:
        folder = self.outbox / campaign_id
        return (
            [
                email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(folder.glob("*.eml"))
            ]
            if folder.exists()
            else []
        )

    def wait_for_campaign(self, campaign_id: str, predicate, timeout: float = 30) -> dict[str, Any]:
        """The campaign's record once predicate(record) holds (it may not be stored yet)."""

        def reached() -> dict[str, Any] | None:
            with contextlib.suppress(CampaignNotFound):
                record = self.campaigns.get(campaign_id)
                return record if predicate(record) else None
            return None

        return eventually(reached, f"campaign {campaign_id} in the expected state", timeout)

    def queue_depth(self, logical_id: str = "SendQueue") -> dict[str, int]:
        attrs = self.rt.client("sqs").get_queue_attributes(
            QueueUrl=self.rt.physical[logical_id],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}


# Tests in these directories run on the embedded runtime (moto, an emulated stack per test):
# marked `emulator`, so that `make unit` (-m "not emulator") runs the rest in seconds. e2e tests
# (whole campaigns, subprocesses, a browser) are `slow` too.
EMULATOR_DIRS = frozenset({"api", "compliance", "e2e", "integration"})
SLOW_DIRS = frozenset({"e2e"})
EMULATOR_FIXTURES = frozenset({"harness", "live"})


# Longest first, so that `make test`'s workers (pytest-xdist: a test at a time, or a file whose
# tests share a module fixture, marked `xdist_group`) end together rather than one of them running
# the slowest alone at the end: the tests marked `longest`, then by directory.
RUN_FIRST = ("e2e", "integration", "api", "compliance")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        area = item.path.relative_to(tests).parts[0]
        if area in EMULATOR_DIRS or EMULATOR_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.emulator)
        if area in SLOW_DIRS:
            item.add_marker(pytest.mark.slow)

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("longest"):
            return -1
        area = item.path.relative_to(tests).parts[0]
        return RUN_FIRST.index(area) if area in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)  # stable: a file's tests keep their order


@pytest.fixture(autouse=True)
def _unit_tests_stay_off_the_emulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked `emulator` that starts the runtime would make `make unit` slow unnoticed."""
    if request.node.get_closest_marker("emulator") is None:

        def refuse(self: EmbeddedRuntime) -> EmbeddedRuntime:
            raise RuntimeError(
                f"{request.node.nodeid} starts the embedded runtime: put it under "
                f"tests/{{{','.join(sorted(EMULATOR_DIRS))}}} or use the harness fixture"
            )

        monkeypatch.setattr(EmbeddedRuntime, "__enter__", refuse)


@pytest.fixture
def harness(tmp_path: Path):
    """A runtime whose workers run only when a test calls drain() — deterministic."""
    outbox = tmp_path / "outbox"
    with EmbeddedRuntime(outbox=outbox) as rt:
        rt.pause_workers()
        yield Harness(rt, outbox)


@pytest.fixture
def live(tmp_path: Path):
    """A runtime whose workers poll on their own, as on AWS."""
    outbox = tmp_path / "outbox"
    with EmbeddedRuntime(outbox=outbox) as rt:
        yield Harness(rt, outbox)


def people(n: int, domain: str = "example.org", **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "email": f"person{i}@{domain}",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "company": "Smith & Sons <Ltd>",
            **extra,
        }
        for i in range(n)
    ]


def _api_gateway(harness: Harness):
    """The management API function, called as API Gateway's proxy integration calls it."""
    from bulkmail_local.runtime.apigw import ApiGateway

    gateway = ApiGateway(next(f for f in harness.rt.functions.values() if f.logical_id == "ApiFunction"))
    gateway.harness = harness
    return gateway


@pytest.fixture
def api(live):
    """The API on a runtime whose workers poll on their own."""
    return _api_gateway(live)


@pytest.fixture
def held_api(harness):
    """The API on a runtime whose workers run only when the test calls drain()."""
    return _api_gateway(harness)
