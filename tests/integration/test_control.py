"""Pause, resume, cancel, re-send to the failed, and the dead-letter queue — on real resources."""

import pytest

from bulkmail import campaign_actions
from bulkmail.adapters.queue import redrive
from bulkmail.errors import InvalidTransition
from bulkmail.validation import validate_campaign
from tests.conftest import SEED_CAMPAIGN, Harness, people


def emails(n):
    return [f"person{i}@example.org" for i in range(n)]


def test_pause_parks_batches_and_resume_sends_exactly_the_rest(harness):
    h = harness
    h.add_contacts(people(6))
    c = h.add_campaign(total=6)
    h.enqueue(c["campaign_id"], "p0-0", emails(6)[:2])
    h.worker.poll_once()  # 2 sent
    h.enqueue(c["campaign_id"], "p0-1", emails(6)[2:4])
    h.enqueue(c["campaign_id"], "p0-2", emails(6)[4:])
    campaign_actions.pause(c["campaign_id"], campaigns=h.campaigns)
    h.drain()
    assert h.queue_depth() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}
    assert len(h.sent_messages(c["campaign_id"])) == 2  # parked, not sent, not on the queue
    assert h.campaigns.get(c["campaign_id"])["status"] == "paused"
    with pytest.raises(InvalidTransition, match="only a queued or processing campaign can become paused"):
        campaign_actions.pause(c["campaign_id"], campaigns=h.campaigns)

    campaign_actions.resume(c["campaign_id"], campaigns=h.campaigns, ledger=h.ledger, queue=h.queue)
    with pytest.raises(InvalidTransition):
        campaign_actions.resume(c["campaign_id"], campaigns=h.campaigns, ledger=h.ledger, queue=h.queue)
    h.drain()
    sent = [m["To"].addresses[0].addr_spec for m in h.sent_messages(c["campaign_id"])]
    assert sorted(sent) == sorted(emails(6))  # each exactly once
    rec = h.campaigns.get(c["campaign_id"])
    assert (rec["status"], rec["sent_count"], rec["processed_count"]) == ("processing", 6, 6)


def test_cancel_accounts_every_remaining_recipient_as_skipped(harness):
    h = harness
    h.add_contacts(people(6))
    c = h.add_campaign(total=6)
    h.enqueue(c["campaign_id"], "p0-0", emails(6)[:2])
    h.worker.poll_once()
    h.enqueue(c["campaign_id"], "p0-1", emails(6)[2:4])
    campaign_actions.pause(c["campaign_id"], campaigns=h.campaigns)
    h.drain()  # p0-1 parked
    h.enqueue(c["campaign_id"], "p0-2", emails(6)[4:])
    campaign_actions.cancel(c["campaign_id"], campaigns=h.campaigns, ledger=h.ledger, queue=h.queue)
    h.drain()
    rows = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}
    assert [rows[e]["status"] for e in emails(6)] == ["sent"] * 2 + ["skipped"] * 4
    assert {rows[e]["reason"] for e in emails(6)[2:]} == {"cancelled"}
    rec = h.campaigns.get(c["campaign_id"])
    assert (rec["status"], rec["sent_count"], rec["skipped_count"], rec["processed_count"]) == ("cancelled", 2, 4, 6)
    assert len(h.sent_messages(c["campaign_id"])) == 2


def test_cancel_ends_the_workflow_once_everyone_is_accounted_for(tmp_path):
    from bulkmail_local.runtime import EmbeddedRuntime

    with EmbeddedRuntime(outbox=tmp_path / "o", parameters={"RecipientsPerMessage": 10, "FanoutPageSize": 100}) as rt:
        _cancel_mid_send(Harness(rt, tmp_path / "o"))


def _cancel_mid_send(live):
    live.add_contacts(people(300))
    arn = live.rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "to_cancel", "max_send_rate": 40})
    live.wait_for_campaign("to_cancel", lambda r: r["sent_count"] >= 20)
    campaign_actions.cancel("to_cancel", campaigns=live.campaigns, ledger=live.ledger, queue=live.queue)
    execution = live.rt.wait_for_execution(arn, timeout=120)
    assert execution["status"] == "SUCCEEDED"
    assert live.rt.state_path(arn)[-1] == "CampaignCancelled"
    rec = live.campaigns.get("to_cancel")
    assert rec["status"] == "cancelled"
    assert rec["sent_count"] + rec["skipped_count"] == rec["total_contacts"] == 300
    assert 20 <= rec["sent_count"] < 300
    assert len(live.sent_messages("to_cancel")) == rec["sent_count"]


def test_resend_failed_sends_to_the_failed_recipients_only(live):
    live.add_contacts(people(5))
    # The stack's sender domain is not verified yet: SES rejects every message.
    live.rt.client("sesv2").delete_email_identity(EmailIdentity="example.com")
    arn = live.rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "first"})
    assert live.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    assert live.campaigns.get("first")["failed_count"] == 5
    live.rt.client("sesv2").create_email_identity(EmailIdentity="example.com")
    retry = campaign_actions.resend_failed_input("first", campaigns=live.campaigns, ledger=live.ledger)
    arn = live.rt.start_campaign(retry)
    assert live.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    rec = live.campaigns.get(retry["campaign_id"])
    assert (rec["status"], rec["total_contacts"], rec["sent_count"], rec["resend_of"]) == ("completed", 5, 5, "first")
    assert live.campaigns.get("first")["failed_count"] == 5  # the original keeps its history
    with pytest.raises(InvalidTransition, match="no failed recipients"):
        campaign_actions.resend_failed_input(retry["campaign_id"], campaigns=live.campaigns, ledger=live.ledger)


def test_a_message_that_keeps_failing_is_dead_lettered_accounted_and_redrivable(tmp_path):
    from bulkmail_local.runtime import EmbeddedRuntime

    with EmbeddedRuntime(outbox=tmp_path / "o", parameters={"MaxReceiveCount": 2}) as rt:
        rt.pause_workers()
        h = Harness(rt, tmp_path / "o")
        h.add_contacts(people(3))
        # Its cross-account credentials secret does not exist (yet): every attempt fails.
        c = h.add_campaign(total=3, aws_secret_name="bulkmail/ses-keys")
        h.enqueue(c["campaign_id"], "p0-0", emails(3))
        h.drain()
        rt.clock.advance(2.2)  # the retry backoff, on the queue's clock
        h.drain()  # the final attempt: accounted as dead-lettered
        rt.clock.advance(4.2)
        h.drain()  # SQS moves it to the DLQ on this receive
        rec = h.campaigns.get(c["campaign_id"])
        assert (rec["failed_count"], rec["processed_count"]) == (3, 3)
        rows = h.ledger.deliveries_for(c["campaign_id"])
        assert all(r["dead_lettered"] and r["reason"].startswith("dead-lettered:") for r in rows)
        assert h.queue_depth("SendDeadLetterQueue")["ApproximateNumberOfMessages"] == 1

        rt.client("secretsmanager").create_secret(
            Name="bulkmail/ses-keys", SecretString='{"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "x"}'
        )
        assert redrive(rt.physical["SendDeadLetterQueue"], rt.physical["SendQueue"]) == 1
        h.drain()
        rec = h.campaigns.get(c["campaign_id"])
        assert (rec["sent_count"], rec["failed_count"], rec["processed_count"]) == (3, 0, 3)
        assert {r["status"] for r in h.ledger.deliveries_for(c["campaign_id"])} == {"sent"}
        assert len(h.sent_messages(c["campaign_id"])) == 3


def test_a_scheduled_campaign_can_be_resent_to_its_failed_recipients(live):
    # Its record keeps the send_at it was scheduled for, which has passed by the time it is re-sent.
    live.add_contacts(people(2))
    live.rt.client("sesv2").delete_email_identity(EmailIdentity="example.com")  # SES rejects both: failed
    arn = live.rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "sched"})
    assert live.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    live.campaigns.update_fields("sched", {"send_at": "2020-01-01T09:00:00+00:00"})
    retry = campaign_actions.resend_failed_input("sched", campaigns=live.campaigns, ledger=live.ledger)
    assert "send_at" not in retry and "list" not in retry and retry["resend_of"] == "sched"
    validate_campaign(retry, trusted=True)  # what ValidateCampaign will check: accepted
