"""Exactly once on the paths beyond the common one (issue 12): DynamoDB's real write faults, a crash
between SES and the ledger, a contact value that cannot be serialised, bounded pacing, a redrive after
a re-send, a configuration error from SES. Real worker, real tables and queues of the embedded runtime;
faults are answered at its AWS boundary, as the services answer them."""

from __future__ import annotations

import json
import time
from collections import Counter

from bulkmail.adapters.wiring import transport_for
from bulkmail.errors import PacingDeferred
from bulkmail.models import BatchMessage
from bulkmail.sending import BatchSender, Pacer
from bulkmail.settings import Settings
from bulkmail_local.runtime.faults import SimulatedCrash, _body, _error, _operation
from tests.conftest import Harness, people
from tests.scripted_faults import ScriptedFaults


def emails(n):
    return [f"person{i}@example.org" for i in range(n)]


def received(h, campaign_id) -> Counter:
    return Counter(m["To"].addresses[0].addr_spec for m in h.sent_messages(campaign_id))


class DynamoFaults:
    """Answers chosen DynamoDB writes with a fault: `plan` maps (operation, a byte string the request
    contains) to how many times in a row to refuse it, and with what."""

    def __init__(self, plan):
        self.plan = {k: list(v) for k, v in plan.items()}
        self.answered = Counter()

    def before(self, request):
        service, op = _operation(request)
        body = _body(request)
        for (operation, marker), answers in self.plan.items():
            if service == "dynamodb" and op == operation and marker in body and answers:
                code = answers.pop(0)
                self.answered[code] += 1
                if code == "TransactionCanceledException":
                    n = len(json.loads(body)["TransactItems"])
                    return _error(
                        400,
                        code,
                        "Transaction cancelled",
                        request.url,
                        CancellationReasons=[{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (n - 1),
                    )
                return _error(400, code, f"{code} (test)", request.url)
        return None

    def after(self, request, response):
        return None


# --- finding 5: DynamoDB faults -------------------------------------------------------------------
def test_a_plain_write_to_a_campaign_a_transaction_holds_is_retried(harness):
    h = harness
    c = h.add_campaign(total=1)
    h.rt.faults = DynamoFaults({("UpdateItem", b"campaign_name"): ["TransactionConflictException"] * 3})
    h.campaigns.update_fields(c["campaign_id"], {"campaign_name": "Edited"})  # botocore alone raised on the first
    assert h.campaigns.get(c["campaign_id"])["campaign_name"] == "Edited"
    assert h.rt.faults.answered["TransactionConflictException"] == 3


def test_a_batch_whose_record_keeps_conflicting_after_ses_accepted_it_is_sent_once(harness):
    h = harness
    h.add_contacts(people(3))
    c = h.add_campaign(total=3)
    # The busy campaign item: the record's transaction is cancelled 15 times in a row (~ seconds).
    h.rt.faults = DynamoFaults({("TransactWriteItems", b"sent_count"): ["TransactionCanceledException"] * 15})
    h.enqueue(c["campaign_id"], "p0-0", emails(3))
    h.drain()
    assert h.rt.faults.answered["TransactionCanceledException"] == 15
    assert received(h, c["campaign_id"]) == Counter(dict.fromkeys(emails(3), 1))
    rec = h.campaigns.get(c["campaign_id"])
    assert (rec["sent_count"], rec["processed_count"]) == (3, 3)
    assert h.queue_depth() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}


class CrashAfterSecondSend:
    """The worker's process dies right after SES accepted its second email."""

    def __init__(self):
        self.sends = 0

    def before(self, request):
        return None

    def after(self, request, response):
        if _operation(request) == ("sesv2", "SendEmail") and getattr(response, "status_code", 0) == 200:
            self.sends += 1
            if self.sends == 2:
                raise SimulatedCrash("after the second send")


def test_a_crash_after_ses_accepted_repeats_at_most_that_one_email(harness):
    h = harness
    h.add_contacts(people(3))
    c = h.add_campaign(total=3)
    h.rt.faults = CrashAfterSecondSend()
    h.enqueue(c["campaign_id"], "p0-0", emails(3))
    h.drain()
    h.rt.faults = None
    # The dead worker's lease runs out; the message comes back (here: delivered once more).
    h.rt.table("BatchesTable").update_item(
        Key={"campaign_id": c["campaign_id"], "batch_id": "p0-0"},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": 0},
    )
    h.enqueue(c["campaign_id"], "p0-0", emails(3))
    h.drain()
    got = received(h, c["campaign_id"])
    assert got["person0@example.org"] == 1  # written down before the crash: not sent again
    assert got["person1@example.org"] == 2  # the crash window: accepted, then the process died
    assert got["person2@example.org"] == 1
    rec = h.campaigns.get(c["campaign_id"])
    assert (rec["sent_count"], rec["processed_count"]) == (3, 3)
    # person0's row, noted by the dead attempt, was counted by the next: its token joined the batch's.
    batch = h.rt.table("BatchesTable").get_item(Key={"campaign_id": c["campaign_id"], "batch_id": "p0-0"})["Item"]
    rows = h.ledger.deliveries_for(c["campaign_id"])
    assert len(batch["counted"]) == 2 and all(r["noted_by"] in batch["counted"] for r in rows)


# --- finding 3: a message that cannot be serialised ----------------------------------------------
def test_a_contact_value_that_cannot_be_serialised_fails_that_recipient_alone(harness):
    h = harness
    h.add_contacts(people(2))
    # Stored as an older import (or another writer) could have: a name with a line break.
    h.contacts.table.put_item(
        Item={"email": "crlf@example.org", "first_name": "Bob\r\nBcc: evil@example.net", "status": "subscribed"}
    )
    c = h.add_campaign(total=3)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "crlf@example.org", "person1@example.org"])
    assert h.drain() == 1
    rows = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}
    assert rows["crlf@example.org"]["status"] == "failed"
    assert rows["crlf@example.org"]["reason"].startswith("render error:")
    assert rows["person0@example.org"]["status"] == rows["person1@example.org"]["status"] == "sent"
    assert h.queue_depth() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}


# --- finding 4: pacing is bounded -----------------------------------------------------------------
class FakeTime:
    def __init__(self, invocation_seconds: float):
        self.now = 0.0
        self.deadline = invocation_seconds
        self.slept: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def remaining(self):
        return self.deadline - self.now


def test_a_slow_campaign_never_sleeps_past_the_invocation_and_hands_its_batch_back(harness):
    """The real BatchSender at WorkerMaxConcurrency 200 and max_send_rate 0.001, on a fake clock."""
    h = harness
    h.add_contacts(people(5))
    c = h.add_campaign(total=5)
    h.campaigns.update_fields(c["campaign_id"], {"max_send_rate": 0.001})
    t = FakeTime(invocation_seconds=60)
    worker_settings = Settings(
        h.rt.physical["CampaignsTable"],
        h.rt.physical["ContactsTable"],
        h.rt.physical["DeliveriesTable"],
        h.rt.physical["BatchesTable"],
        h.rt.physical["SendQueue"],
        lease_seconds=180,
        worker_concurrency=200,
    )
    sender = BatchSender(
        settings=worker_settings,
        campaigns=h.campaigns,
        contacts=h.contacts,
        ledger=h.ledger,
        transport_for=transport_for,
        remaining_seconds=t.remaining,
        send_margin=10,
        clock=t.clock,
        sleep=t.sleep,
        wall_clock=lambda: 1_800_000_000 + t.now,
    )
    try:
        sender.process(BatchMessage(c["campaign_id"], "p0-0", tuple(emails(5))))
        raise AssertionError("the batch should have been handed back")
    except PacingDeferred as deferred:
        assert deferred.seconds > 60
    assert all(s <= Pacer.MAX_SLEEP_SECONDS for s in t.slept) and t.now < 60 - 10
    # What was sent is recorded, and the batch is free for its next delivery.
    h.rt.outbox.flush()
    sent = [r["email"] for r in h.ledger.deliveries_for(c["campaign_id"])]
    assert h.campaigns.get(c["campaign_id"])["sent_count"] == len(sent) == len(received(h, c["campaign_id"])) <= 1
    assert h.ledger.claim(c["campaign_id"], "p0-0", "next", time.time(), 60).claim.value == "reclaimed"


def test_a_slow_campaign_does_not_hold_the_worker_from_another_campaign(harness):
    h = harness
    h.add_contacts(people(4))
    slow = h.add_campaign(total=2, campaign_id="slow")
    h.campaigns.update_fields("slow", {"max_send_rate": 0.01})
    fast = h.add_campaign(total=2, campaign_id="fast")
    h.enqueue("slow", "p0-0", emails(2))
    h.enqueue("fast", "p0-0", ["person2@example.org", "person3@example.org"])
    started = time.monotonic()
    h.drain()
    assert time.monotonic() - started < 20  # nobody slept out the slow campaign's 200 s interval
    assert h.campaigns.get("fast")["sent_count"] == 2
    assert h.campaigns.get("slow")["sent_count"] <= 1
    # The slow batch is back on the queue as a fresh, delayed message (its receive count untouched).
    delayed = h.rt.client("sqs").get_queue_attributes(
        QueueUrl=h.rt.physical["SendQueue"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert int(delayed) == 1 and slow["campaign_id"] != fast["campaign_id"]


# --- finding 2: a redrive after a re-send ---------------------------------------------------------
def test_a_redrive_after_a_resend_sends_nobody_twice(tmp_path):
    from bulkmail.adapters.queue import redrive
    from bulkmail_local.runtime import EmbeddedRuntime

    with EmbeddedRuntime(outbox=tmp_path / "o", parameters={"MaxReceiveCount": 2}) as rt:
        rt.pause_workers()
        h = Harness(rt, tmp_path / "o")
        h.add_contacts(people(3))
        c = h.add_campaign(total=3, aws_secret_name="bulkmail/ses-keys")  # the secret does not exist yet
        h.enqueue(c["campaign_id"], "p0-0", emails(3))
        h.drain()
        rt.clock.advance(2.2)
        h.drain()  # the final attempt: dead-lettered, accounted
        rt.clock.advance(4.2)
        h.drain()  # now in the DLQ
        assert h.queue_depth("SendDeadLetterQueue")["ApproximateNumberOfMessages"] == 1
        rt.client("secretsmanager").create_secret(
            Name="bulkmail/ses-keys", SecretString='{"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "x"}'
        )
        # The operator re-sends to the failed recipients; the re-send sends to all three.
        h.campaigns.create(
            {
                **h.campaigns.get(c["campaign_id"]),
                "campaign_id": "resend1",
                "status": "queued",
                "resend_of": c["campaign_id"],
                "total_contacts": 3,
            }
        )
        h.enqueue("resend1", "p0-0", emails(3))
        h.drain()
        assert len(h.sent_messages("resend1")) == 3
        # Then the DLQ alarm's advice is followed: redrive the original's dead letter.
        assert redrive(rt.physical["SendDeadLetterQueue"], rt.physical["SendQueue"]) == 1
        h.drain()
        total = received(h, "resend1") + received(h, c["campaign_id"])
        assert total == Counter(dict.fromkeys(emails(3), 1)), total
        rows = h.ledger.deliveries_for(c["campaign_id"])
        assert {r["status"] for r in rows} == {"failed"} and all(r["resent_in"] == "resend1" for r in rows)


# --- issue 11: a configuration error from SES pauses the campaign ---------------------------------
def test_access_denied_pauses_the_campaign_fails_nobody_and_resume_continues(harness):
    from bulkmail import campaign_actions
    from tests.e2e.test_operations import BusObserver

    h = harness
    bus = BusObserver(h.rt)
    h.add_contacts(people(3))
    c = h.add_campaign(total=3)
    h.rt.faults = ScriptedFaults(ses={"person1@example.org": ["AccessDeniedException"]})
    h.enqueue(c["campaign_id"], "p0-0", emails(3))
    h.drain()
    rec = h.campaigns.get(c["campaign_id"])
    assert rec["status"] == "paused" and "AccessDeniedException" in rec["pause_reason"]
    assert rec["failed_count"] == 0 and {r["status"] for r in h.ledger.deliveries_for(c["campaign_id"])} == {"sent"}
    paused = bus.wait_for("CampaignPaused")["detail"]
    assert paused["campaign_id"] == c["campaign_id"] and "AccessDeniedException" in paused["reason"]
    h.rt.clock.advance(2.2)  # the message's retry backoff: it comes back, finds the campaign paused, is parked
    h.drain()
    campaign_actions.resume(c["campaign_id"], campaigns=h.campaigns, ledger=h.ledger, queue=h.queue)
    h.drain()
    assert received(h, c["campaign_id"]) == Counter(dict.fromkeys(emails(3), 1))
    rec = h.campaigns.get(c["campaign_id"])
    assert (rec["sent_count"], rec["failed_count"], rec["processed_count"]) == (3, 0, 3)
