"""The worker's decisions on one message (BatchSender.process), on in-memory stores with an
injected clock: who is sent, skipped, failed, parked or left for a retry, and what is counted.

The same paths run on the emulator with real SQS semantics in tests/integration; here each is one
call, in milliseconds, with no sleep (the sleeps the worker would take are recorded instead).
"""

from __future__ import annotations

from typing import Any

import pytest

from bulkmail import campaign_actions
from bulkmail.errors import BatchBusy, OutOfTime, PermanentSendError, SendingPaused, Throttled, TransientSendError
from bulkmail.models import BatchMessage, DeliveryStatus, Lease, Outcome
from bulkmail.sending import BatchSender
from bulkmail.validation import validate_campaign
from tests.fakes import FakeCampaigns, FakeContacts, FakeLedger, FakeQueue, FakeTransport, settings

SETTINGS = settings(default_max_send_rate=1000.0, worker_concurrency=1)
EMAILS = ("a@example.org", "b@example.org", "c@example.org")


class Clock:
    """Monotonic and wall time that move only when the worker sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Worker:
    def __init__(
        self,
        status: str = "queued",
        contacts: list[dict[str, Any]] | None = None,
        fail: dict[str, list[Exception]] | None = None,
    ) -> None:
        self.campaigns = FakeCampaigns()
        self.ledger = FakeLedger(self.campaigns)
        self.contacts = FakeContacts(contacts if contacts is not None else [{"email": e} for e in EMAILS])
        self.transport = FakeTransport(fail)
        self.clock = Clock()
        campaign = validate_campaign(
            {
                "campaign_id": "c1",
                "campaign_name": "News",
                "subject": "Hi {{first_name}}",
                "body": "Hello",
                "from_email": "news@example.com",
            }
        )
        self.campaigns.create({**campaign, "status": status, "total_contacts": 3})

    def sender(self, time_left: float = float("inf")) -> BatchSender:
        return BatchSender(
            settings=SETTINGS,
            campaigns=self.campaigns,
            contacts=self.contacts,
            ledger=self.ledger,
            transport_for=lambda campaign: self.transport,
            remaining_seconds=lambda: time_left,
            clock=self.clock,
            wall_clock=self.clock,
            sleep=self.clock.sleep,
        )

    def process(self, *, final_attempt: bool = False, time_left: float = float("inf")) -> list[Outcome]:
        return self.sender(time_left).process(BatchMessage("c1", "p0000000-000", EMAILS), final_attempt=final_attempt)

    def sent_to(self) -> list[str]:
        return [m["To"] for m in self.transport.accepted]

    def counts(self) -> list[int]:
        stored = self.campaigns.get("c1")
        return [stored[c] for c in ("sent_count", "failed_count", "skipped_count", "processed_count")]

    def batch(self) -> dict[str, Any]:
        return self.ledger.batches[("c1", "p0000000-000")]


def statuses(outcomes: list[Outcome]) -> dict[str, tuple[str, str]]:
    return {o.email: (o.status.value, o.reason) for o in outcomes}


def test_a_batch_is_sent_recorded_and_counted_once() -> None:
    worker = Worker()
    outcomes = worker.process()
    assert worker.sent_to() == list(EMAILS)
    assert {s for s, _ in statuses(outcomes).values()} == {"sent"}
    assert worker.counts() == [3, 0, 0, 3]
    assert worker.campaigns.get("c1")["status"] == "processing"  # the first recorded send starts it
    assert worker.batch()["status"] == "done"
    assert worker.process() == []  # SQS delivers it again: acknowledged, nothing sent
    assert len(worker.transport.accepted) == 3 and worker.counts() == [3, 0, 0, 3]


def test_a_batch_another_worker_holds_is_left_for_later() -> None:
    worker = Worker()
    worker.ledger.claim("c1", "p0000000-000", "other", worker.clock(), 60)
    with pytest.raises(BatchBusy):
        worker.process()
    assert worker.sent_to() == []


def test_after_a_crash_between_ses_and_the_ledger_only_the_unsent_are_sent() -> None:
    worker = Worker()
    worker.ledger.claim("c1", "p0000000-000", "dead", worker.clock(), 60)
    lease = Lease("c1", "p0000000-000", "dead", 60)
    assert worker.ledger.note_sent(lease, Outcome("a@example.org", DeliveryStatus.SENT, message_id="m-0"), "t")
    worker.clock.now += 61  # the dead worker's lease runs out
    outcomes = worker.process()
    assert worker.sent_to() == ["b@example.org", "c@example.org"]
    assert statuses(outcomes)["a@example.org"] == ("sent", "")  # counted now, not sent again
    assert worker.counts() == [3, 0, 0, 3]


def test_recipients_who_cannot_be_sent_are_skipped_or_failed_with_the_reason() -> None:
    contacts = [{"email": "a@example.org", "status": "unsubscribed"}, {"email": "b@example.org"}]
    worker = Worker(contacts=contacts, fail={"b@example.org": [PermanentSendError("MessageRejected: no")]})
    outcomes = worker.process()
    assert statuses(outcomes) == {
        "a@example.org": ("skipped", "unsubscribed"),
        "b@example.org": ("failed", "MessageRejected: no"),
        "c@example.org": ("skipped", "contact_deleted"),
    }
    assert worker.counts() == [0, 1, 2, 3]


def test_a_transient_error_is_retried_with_backoff_then_failed() -> None:
    worker = Worker(
        fail={"a@example.org": [TransientSendError("503")] * 3, "b@example.org": [TransientSendError("503")]}
    )
    outcomes = worker.process()
    assert statuses(outcomes)["a@example.org"] == ("failed", "transient, gave up: 503")
    assert statuses(outcomes)["b@example.org"] == ("sent", "")
    backoffs = [s for s in worker.clock.slept if s > 0.01]  # the rest is pacing's random phase
    assert backoffs == [0.2, 0.4, 0.2]  # retry_base_seconds × 2^attempt, slept on the injected clock


def test_throttling_beyond_the_in_place_retries_records_what_was_sent_and_releases_the_rest() -> None:
    worker = Worker(fail={"b@example.org": [Throttled("slow down")] * 4})
    with pytest.raises(Throttled):
        worker.process()
    assert worker.sent_to() == ["a@example.org"]
    assert worker.counts() == [1, 0, 0, 1]  # throttled is never counted as sent or failed
    assert worker.batch()["status"] == "pending"  # the message comes back for b and c
    retried = worker.process()
    assert worker.sent_to() == list(EMAILS) and len(retried) == 2 and worker.counts() == [3, 0, 0, 3]


def test_an_account_that_cannot_send_pauses_the_campaign_and_fails_nobody() -> None:
    worker = Worker(status="processing", fail={"a@example.org": [SendingPaused("SendingPausedException")]})
    with pytest.raises(SendingPaused):
        worker.process()
    stored = worker.campaigns.get("c1")
    assert (stored["status"], stored["pause_reason"]) == ("paused", "SendingPausedException")
    assert worker.counts() == [0, 0, 0, 0]


def test_a_paused_campaigns_batch_is_parked_then_sent_once_on_resume() -> None:
    worker = Worker(status="paused")
    assert worker.process() == []
    assert worker.batch()["status"] == "parked" and worker.sent_to() == []
    queue = FakeQueue()
    campaign_actions.resume("c1", campaigns=worker.campaigns, ledger=worker.ledger, queue=queue)
    (message,) = queue.sent
    assert worker.sender().process(message) and worker.sent_to() == list(EMAILS)


def test_a_cancelled_campaigns_recipients_are_skipped_not_sent() -> None:
    worker = Worker(status="cancelled")
    outcomes = worker.process()
    assert set(statuses(outcomes).values()) == {("skipped", "cancelled")}
    assert worker.sent_to() == [] and worker.counts() == [0, 0, 3, 3]


def test_the_last_attempt_records_the_unsent_as_dead_lettered() -> None:
    worker = Worker(fail={"b@example.org": [Throttled("slow down")] * 4})
    with pytest.raises(Throttled):
        worker.process(final_attempt=True)
    assert worker.counts() == [1, 2, 0, 3]
    assert worker.batch()["status"] == "dead"
    assert worker.ledger.recorded("c1", ["c@example.org"])["c@example.org"]["dead_lettered"] is True


def test_no_send_starts_without_time_left_and_the_batch_comes_back() -> None:
    worker = Worker()
    with pytest.raises(OutOfTime):
        worker.process(time_left=0.0)
    assert worker.sent_to() == [] and worker.batch()["status"] == "pending"
