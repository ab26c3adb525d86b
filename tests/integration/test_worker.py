"""The worker against the real queue, tables and SES of the embedded runtime, batch by batch."""

import json
import time

import pytest

from bulkmail.adapters.wiring import transport_for
from bulkmail.errors import CampaignNotFound, SecretNotConfigured
from tests.conftest import people


def record(h, campaign_id):
    return h.campaigns.get(campaign_id)


def test_one_message_sends_personalised_mail_and_counts_it_once(harness):
    h = harness
    h.add_contacts(people(3))
    c = h.add_campaign(total=3)
    h.enqueue(c["campaign_id"], "p0-0", [f"person{i}@example.org" for i in range(3)])
    assert h.drain() == 1
    rec = record(h, c["campaign_id"])
    assert (rec["sent_count"], rec["failed_count"], rec["skipped_count"], rec["processed_count"]) == (3, 0, 0, 3)
    assert rec["status"] == "processing"
    subjects = sorted(m["Subject"] for m in h.sent_messages(c["campaign_id"]))
    assert subjects == ["Hello First0!", "Hello First1!", "Hello First2!"]
    html = h.sent_messages(c["campaign_id"])[0].get_body(("html",)).get_content()
    assert "Smith &amp; Sons &lt;Ltd&gt;" in html
    assert {r["status"] for r in h.ledger.deliveries_for(c["campaign_id"])} == {"sent"}


def test_contact_deleted_after_queueing_is_skipped_not_failed(harness):
    h = harness
    h.add_contacts(people(2))
    c = h.add_campaign(total=2)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
    h.contacts.delete("person1@example.org")
    h.drain()
    rows = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}
    assert rows["person1@example.org"]["status"] == "skipped"
    assert rows["person1@example.org"]["reason"] == "contact_deleted"
    rec = record(h, c["campaign_id"])
    assert (rec["sent_count"], rec["failed_count"], rec["skipped_count"]) == (1, 0, 1)
    log = h.rt.log_file.read_text()
    assert "Contact person1@example.org not found in DynamoDB" in log


def test_unsubscribed_at_send_time_is_skipped_with_its_reason(harness):
    h = harness
    h.add_contacts([*people(1), {"email": "gone@example.org", "status": "unsubscribed"}])
    c = h.add_campaign(total=2)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "gone@example.org"])
    h.drain()
    rows = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}
    assert rows["gone@example.org"]["reason"] == "unsubscribed"


def test_redelivered_message_sends_nothing_twice(harness):
    h = harness
    h.add_contacts(people(4))
    c = h.add_campaign(total=4)
    emails = [f"person{i}@example.org" for i in range(4)]
    h.enqueue(c["campaign_id"], "p0-0", emails)
    h.drain()
    h.enqueue(c["campaign_id"], "p0-0", emails)  # SQS at-least-once: the same message again
    h.drain()
    assert len(h.sent_messages(c["campaign_id"])) == 4
    rec = record(h, c["campaign_id"])
    assert (rec["sent_count"], rec["processed_count"]) == (4, 4)
    assert h.queue_depth() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}


def test_message_whose_claim_is_live_waits_and_a_stale_claim_is_recovered(harness):
    h = harness
    h.add_contacts(people(2))
    c = h.add_campaign(total=2)
    emails = ["person0@example.org", "person1@example.org"]
    # A worker claimed the batch and died before recording anything; its lease runs 2 more seconds.
    h.ledger.claim(c["campaign_id"], "p0-0", "dead-worker", now=time.time() - 178, lease_seconds=180)
    h.enqueue(c["campaign_id"], "p0-0", emails)
    h.drain()
    assert h.sent_messages(c["campaign_id"]) == []
    assert record(h, c["campaign_id"])["processed_count"] == 0
    # The message came back with a short visibility backoff; after the lease it is claimed again.
    sqs = h.rt.client("sqs")
    msgs = sqs.receive_message(QueueUrl=h.rt.physical["SendQueue"], VisibilityTimeout=0).get("Messages", [])
    assert msgs == [], "the failed message must stay invisible for its backoff"
    time.sleep(3.1)
    h.drain()
    assert len(h.sent_messages(c["campaign_id"])) == 2
    assert record(h, c["campaign_id"])["sent_count"] == 2


def test_batch_with_one_failing_record_reports_only_that_record(harness):
    h = harness
    h.add_contacts(people(2))
    c = h.add_campaign(total=2)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
    h.enqueue("campaign_that_does_not_exist", "p0-0", ["person0@example.org"])
    sqs = h.rt.client("sqs")
    messages = sqs.receive_message(QueueUrl=h.rt.physical["SendQueue"], MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    assert len(messages) == 2
    records = [h.worker._record(m) for m in messages]
    response = h.worker_fn.invoke({"Records": records})
    bad = next(m["MessageId"] for m in messages if "does_not_exist" in m["Body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": bad}]}
    assert record(h, c["campaign_id"])["sent_count"] == 2
    assert "Campaign campaign_that_does_not_exist not found in DynamoDB" in h.rt.log_file.read_text()


def test_subject_edit_after_fan_out_reaches_pending_sends(harness):
    h = harness
    h.add_contacts(people(4))
    c = h.add_campaign(total=4)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
    h.worker.poll_once()
    h.enqueue(c["campaign_id"], "p0-1", ["person2@example.org", "person3@example.org"])
    # As PATCH /campaigns/{id} does: a new content version, which the next message's record names.
    assert h.campaigns.edit(c["campaign_id"], {"subject": "Edited for {{first_name}}"}, ("queued", "processing"), "t")
    h.drain()
    subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in h.sent_messages(c["campaign_id"])}
    assert subjects == {
        "person0@example.org": "Hello First0!",
        "person1@example.org": "Hello First1!",
        "person2@example.org": "Edited for First2",
        "person3@example.org": "Edited for First3",
    }


def test_ses_rejection_is_recorded_as_failed_with_the_reason(harness):
    h = harness
    h.add_contacts(people(1))
    # The stack's sender identity, not verified (yet): IAM allows the send, SES rejects it.
    h.rt.client("sesv2").delete_email_identity(EmailIdentity="example.com")
    c = h.add_campaign(total=1)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org"])
    h.drain()
    (row,) = h.ledger.deliveries_for(c["campaign_id"])
    assert row["status"] == "failed" and "MessageRejected" in row["reason"]
    assert record(h, c["campaign_id"])["failed_count"] == 1


def test_cancelled_campaign_skips_remaining_recipients(harness):
    h = harness
    h.add_contacts(people(2))
    c = h.add_campaign(total=2)
    h.campaigns.update_fields(c["campaign_id"], {"status": "cancelled"})
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
    h.drain()
    assert h.sent_messages(c["campaign_id"]) == []
    assert {r["reason"] for r in h.ledger.deliveries_for(c["campaign_id"])} == {"cancelled"}


def test_campaign_not_found_has_the_seed_message(harness):
    with pytest.raises(CampaignNotFound, match=r"^Campaign campaign_1234567890 not found in DynamoDB$"):
        harness.campaigns.get("campaign_1234567890")


def test_no_secret_configured_has_the_seed_message():
    with pytest.raises(SecretNotConfigured, match=r"^No AWS secret name configured in campaign c1$"):
        transport_for({"campaign_id": "c1", "email_service": "smtp", "smtp_server": "mail.example.com"})


def test_queue_messages_carry_references_only(harness):
    h = harness
    h.add_contacts(people(1))
    c = h.add_campaign(total=1, aws_secret_name="bulkmail/ses-credentials")
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org"])
    (message,) = h.rt.client("sqs").receive_message(QueueUrl=h.rt.physical["SendQueue"])["Messages"]
    assert json.loads(message["Body"]) == {
        "campaign_id": c["campaign_id"],
        "batch_id": "p0-0",
        "contact_emails": ["person0@example.org"],
    }
