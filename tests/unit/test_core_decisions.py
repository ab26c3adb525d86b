"""The core's decisions on in-memory stores: the workflow's next step, the fan-out, pause/resume/cancel.

The same behaviour is shown end to end on the emulator (tests/api, tests/e2e); here each decision is
one call, in milliseconds. The fakes keep the DynamoDB stores' contract (tests/store_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bulkmail import campaign_actions, workflow
from bulkmail.errors import InvalidTransition
from bulkmail.models import CampaignStatus, Lease
from tests.fakes import FakeCampaigns, FakeContacts, FakeLedger, FakeQueue, settings
from tests.store_contract import CHECKS

SETTINGS = settings(
    recipients_per_message=2,
    fanout_page_size=4,
    backlog_seconds=1,
    default_max_send_rate=4.0,
    steps_per_execution=10,
)


class Core:
    """The stores of one campaign, and the core's calls on them."""

    def __init__(self, contacts: int = 0, **campaign: Any) -> None:
        self.campaigns = FakeCampaigns()
        self.contacts = FakeContacts([{"email": f"p{i}@example.org"} for i in range(contacts)])
        self.ledger = FakeLedger(self.campaigns)
        self.queue = FakeQueue()
        self.campaigns.create({"campaign_id": "c1", "campaign_name": "n", "status": "queued", **campaign})

    def update(self, **fields: Any) -> None:
        self.campaigns.update_fields("c1", fields)

    def advance(self, steps: int = 0) -> dict[str, Any]:
        stores = {"campaigns": self.campaigns, "contacts": self.contacts, "ledger": self.ledger, "queue": self.queue}
        return workflow.advance("c1", steps, settings=SETTINGS, **stores)

    @property
    def stored(self) -> dict[str, Any]:
        return self.campaigns.get("c1")


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_fakes_keep_the_stores_contract(check: Callable[[Any, Any], None]) -> None:
    campaigns = FakeCampaigns()
    check(campaigns, FakeLedger(campaigns))


# --- the workflow's loop -------------------------------------------------------------------------


def test_a_page_is_queued_in_batches_with_ids_from_the_page_number() -> None:
    core = Core(contacts=6)
    step = core.advance()
    assert (step["next"], step["steps"]) == ("advance", 1)  # the backlog (4 of a bound of 4) is not over yet
    assert [(m.batch_id, m.contact_emails) for m in core.queue.sent] == [
        ("p0000000-000", ("p0@example.org", "p1@example.org")),
        ("p0000000-001", ("p2@example.org", "p3@example.org")),
    ]
    assert (core.stored["queued_count"], core.stored["fanout_page"]) == (4, 1)


def test_the_last_page_ends_the_fan_out_and_fixes_the_total() -> None:
    core = Core(contacts=6, total_contacts=99)
    core.advance()
    core.update(processed_count=4)  # the workers caught up
    step = core.advance(1)
    assert step["next"] == "wait"  # fan-out done, two recipients still being sent
    assert core.queue.sent[-1].batch_id == "p0000001-000"
    assert (core.stored["fanout_done"], core.stored["total_contacts"]) == (True, 6)


def test_the_fan_out_waits_while_the_backlog_is_at_its_bound() -> None:
    core = Core(contacts=20, max_send_rate=4.0)
    core.advance()
    assert core.advance(1)["next"] == "wait"  # 4 queued, none processed: a second's sending at 4/s
    assert len(core.queue.sent) == 2


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"status": "paused"}, "wait"),
        ({"status": "failed"}, "failed"),
        ({"fanout_done": True, "total_contacts": 5, "processed_count": 4}, "wait"),
        ({"fanout_done": True, "total_contacts": 5, "processed_count": 5}, "complete"),
        ({"fanout_done": True, "total_contacts": 5, "processed_count": 5, "status": "cancelled"}, "cancelled"),
    ],
)
def test_what_the_campaigns_state_asks_for(state: dict[str, Any], expected: str) -> None:
    core = Core(contacts=3)
    core.update(**state)
    step = core.advance()
    assert step["next"] == expected
    assert core.queue.sent == []
    assert step["counts"]["processed_count"] == core.stored["processed_count"]


def test_a_cancelled_campaign_fans_out_past_the_backlog_bound_so_workers_skip_everyone() -> None:
    core = Core(contacts=12)
    core.update(status="cancelled", queued_count=100)
    assert core.advance()["next"] == "advance"
    assert len(core.queue.sent) == 2


def test_after_its_share_of_steps_an_execution_continues_as_new_without_reading() -> None:
    core = Core(contacts=3)
    core.campaigns.items.clear()  # nothing to read: the step must not try
    step = core.advance(steps=SETTINGS.steps_per_execution)
    assert step == {"next": "continue_as_new", "steps": SETTINGS.steps_per_execution + 1, "counts": {}}


def test_a_retried_fan_out_step_queues_the_same_batch_ids_and_counts_the_page_once() -> None:
    core = Core(contacts=6)
    before = core.stored
    core.advance()
    workflow.fan_out_page(
        before,
        campaigns=core.campaigns,
        contacts=core.contacts,
        ledger=core.ledger,
        queue=core.queue,
        settings=SETTINGS,
    )  # the same step, retried with what it read
    assert [m.batch_id for m in core.queue.sent] == ["p0000000-000", "p0000000-001"] * 2
    assert core.stored["queued_count"] == 4  # the ledger's batch claims then acknowledge the duplicates


def test_a_resend_fans_out_the_originals_failed_recipients() -> None:
    core = Core(contacts=6, resend_of="c0")
    for email in ("f1@example.org", "f2@example.org", "f3@example.org"):
        core.ledger.rows[("c0", email)] = {"status": "failed"}
    core.advance()
    assert [m.contact_emails for m in core.queue.sent] == [("f1@example.org", "f2@example.org"), ("f3@example.org",)]
    assert core.stored["total_contacts"] == 3


# --- operator actions ----------------------------------------------------------------------------


def test_pause_applies_to_a_sending_campaign_only() -> None:
    core = Core()
    paused = campaign_actions.pause("c1", campaigns=core.campaigns, reason="SES paused the account")
    assert (paused["status"], paused["pause_reason"]) == ("paused", "SES paused the account")
    with pytest.raises(InvalidTransition, match="c1 is paused; only a queued or processing campaign"):
        campaign_actions.pause("c1", campaigns=core.campaigns)


def _park(core: Core, batch_id: str, emails: list[str]) -> None:
    core.ledger.claim("c1", batch_id, "t", 0.0, 60)
    assert core.ledger.park(Lease("c1", batch_id, "t", 60), emails, "now")


@pytest.mark.parametrize(("started", "status"), [(True, "processing"), (False, "queued")])
def test_resume_sends_exactly_the_parked_batches_again(started: bool, status: str) -> None:
    core = Core(status="paused", **({"started_at": "2026-12-01T09:00:00Z"} if started else {}))
    _park(core, "p0000000-000", ["a@example.org", "b@example.org"])
    _park(core, "p0000000-001", ["c@example.org"])
    record = campaign_actions.resume("c1", campaigns=core.campaigns, ledger=core.ledger, queue=core.queue)
    assert record["status"] == status
    assert [(m.batch_id, m.contact_emails) for m in core.queue.sent] == [
        ("p0000000-000", ("a@example.org", "b@example.org")),
        ("p0000000-001", ("c@example.org",)),
    ]
    with pytest.raises(InvalidTransition):
        campaign_actions.resume("c1", campaigns=core.campaigns, ledger=core.ledger, queue=core.queue)
    assert len(core.queue.sent) == 2  # nothing parked is sent twice


@pytest.mark.parametrize("status", ["queued", "processing", "paused", "scheduled"])
def test_cancel_applies_before_the_end_and_hands_parked_batches_to_the_workers(status: str) -> None:
    core = Core(status="paused")
    _park(core, "p0000000-000", ["a@example.org"])
    core.update(status=status)
    record = campaign_actions.cancel("c1", campaigns=core.campaigns, ledger=core.ledger, queue=core.queue)
    assert record["status"] == "cancelled" and record["cancelled_at"]
    assert [m.batch_id for m in core.queue.sent] == ["p0000000-000"]  # workers record them skipped


@pytest.mark.parametrize("status", ["completed", "cancelled", "failed"])
def test_a_finished_campaign_cannot_be_cancelled(status: str) -> None:
    core = Core(status=status)
    with pytest.raises(InvalidTransition, match=f"c1 is {status}"):
        campaign_actions.cancel("c1", campaigns=core.campaigns, ledger=core.ledger, queue=core.queue)


def test_a_resend_is_offered_once_finished_and_only_to_the_failed() -> None:
    core = Core(status="processing", list="news", subject="s", body="b", from_email="a@example.com")
    with pytest.raises(InvalidTransition, match="re-send once it has finished"):
        campaign_actions.resend_failed_input("c1", campaigns=core.campaigns, ledger=core.ledger)
    core.update(status=CampaignStatus.COMPLETED.value)
    with pytest.raises(InvalidTransition, match="no failed recipients"):
        campaign_actions.resend_failed_input("c1", campaigns=core.campaigns, ledger=core.ledger)
    core.ledger.rows[("c1", "f@example.org")] = {"status": "failed"}
    resend = campaign_actions.resend_failed_input("c1", campaigns=core.campaigns, ledger=core.ledger)
    assert resend["resend_of"] == "c1" and resend["campaign_id"].startswith("c1_resend_")
    assert "list" not in resend and resend["subject"] == "s"
