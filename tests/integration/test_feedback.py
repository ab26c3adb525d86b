"""Bounces and complaints: the real FeedbackFunction with the events SES publishes (events/*.json),
against the ledger, the campaign counters and the contacts of the embedded runtime."""

import copy
import json

import pytest

from bulkmail.adapters.wiring import transport_for
from bulkmail_local.runtime.stack import PROJECT_ROOT
from tests.conftest import people

BOUNCE = json.loads((PROJECT_ROOT / "events" / "feedback.json").read_text())
COMPLAINT = json.loads((PROJECT_ROOT / "events" / "feedback_complaint.json").read_text())


def feedback_fn(h):
    return next(f for f in h.rt.functions.values() if f.logical_id == "FeedbackFunction")


def ses_event(sample, campaign_id, email, message_id, **bounce):
    event = copy.deepcopy(sample)
    mail = event["detail"]["mail"]
    mail["messageId"], mail["destination"] = message_id, [email]
    mail["headers"] = [h for h in mail["headers"] if h["name"] != "X-Bulkmail-Campaign"]
    if campaign_id:
        mail["headers"].append({"name": "X-Bulkmail-Campaign", "value": campaign_id})
    if "bounce" in event["detail"]:
        event["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = email.upper()  # as some MTAs report it
        event["detail"]["bounce"].update(bounce)
    else:
        event["detail"]["complaint"]["complainedRecipients"][0]["emailAddress"] = email
    return event


@pytest.fixture
def sent(harness):
    h = harness
    h.add_contacts(people(4))
    c = h.add_campaign(total=4)
    h.enqueue(c["campaign_id"], "p0-0", [f"person{i}@example.org" for i in range(4)])
    h.drain()
    rows = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}
    assert {r["status"] for r in rows.values()} == {"sent"}
    return h, c, rows


def test_hard_bounce_suppresses_the_contact_and_counts_once(sent):
    h, c, rows = sent
    event = ses_event(BOUNCE, c["campaign_id"], "person0@example.org", rows["person0@example.org"]["message_id"])
    fn = feedback_fn(h)
    fn.invoke(event)
    fn.invoke(event)  # EventBridge delivers at least once
    assert h.contacts.get("person0@example.org").status == "bounced"
    row = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}["person0@example.org"]
    assert (row["status"], row["feedback"]) == ("sent", "bounced")
    assert row["feedback_detail"]["bounce_type"] == "Permanent"
    assert row["feedback_detail"]["ses_message_id"] == rows["person0@example.org"]["message_id"]
    campaign = h.campaigns.get(c["campaign_id"])
    assert campaign.get("bounced_count") == 1 and not campaign.get("complained_count")
    assert campaign["sent_count"] == 4  # a bounce does not rewrite what was sent
    assert h.rt.metrics.totals().get("EmailsBounced") == 1 and "EmailsComplained" not in h.rt.metrics.totals()


def test_complaint_suppresses_and_counts(sent):
    h, c, rows = sent
    feedback_fn(h).invoke(
        ses_event(COMPLAINT, c["campaign_id"], "person1@example.org", rows["person1@example.org"]["message_id"])
    )
    assert h.contacts.get("person1@example.org").status == "complained"
    assert h.campaigns.get(c["campaign_id"]).get("complained_count") == 1
    row = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}["person1@example.org"]
    assert row["feedback"] == "complained" and row["feedback_detail"]["feedback_type"] == "abuse"


def test_transient_bounce_is_counted_but_the_contact_stays_subscribed(sent):
    h, c, rows = sent
    feedback_fn(h).invoke(
        ses_event(
            BOUNCE,
            c["campaign_id"],
            "person2@example.org",
            rows["person2@example.org"]["message_id"],
            bounceType="Transient",
            bounceSubType="MailboxFull",
        )
    )
    assert h.contacts.get("person2@example.org").status == "subscribed"
    assert h.campaigns.get(c["campaign_id"]).get("bounced_count") == 1


def test_suppressed_contacts_are_not_sent_to_again(sent):
    h, c, rows = sent
    fn = feedback_fn(h)
    fn.invoke(ses_event(BOUNCE, c["campaign_id"], "person0@example.org", rows["person0@example.org"]["message_id"]))
    fn.invoke(ses_event(COMPLAINT, c["campaign_id"], "person1@example.org", rows["person1@example.org"]["message_id"]))
    emails, _ = h.contacts.recipients_page(None, None, 100)
    assert sorted(emails) == ["person2@example.org", "person3@example.org"]
    nxt = h.add_campaign(total=4, campaign_name="Next")
    h.enqueue(nxt["campaign_id"], "p0-0", [f"person{i}@example.org" for i in range(4)])
    h.drain()
    reasons = {
        r["email"]: r.get("reason") for r in h.ledger.deliveries_for(nxt["campaign_id"]) if r["status"] == "skipped"
    }
    assert reasons == {"person0@example.org": "bounced", "person1@example.org": "complained"}
    assert len(h.sent_messages(nxt["campaign_id"])) == 2


def test_sns_delivered_event_is_handled_the_same(sent):
    h, c, rows = sent
    detail = ses_event(COMPLAINT, c["campaign_id"], "person3@example.org", rows["person3@example.org"]["message_id"])[
        "detail"
    ]
    feedback_fn(h).invoke({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(detail)}}]})
    assert h.contacts.get("person3@example.org").status == "complained"
    assert h.campaigns.get(c["campaign_id"]).get("complained_count") == 1


def test_event_without_a_known_campaign_suppresses_but_counts_nothing(sent):
    h, c, _rows = sent
    feedback_fn(h).invoke(ses_event(BOUNCE, None, "person3@example.org", "some-other-message"))
    feedback_fn(h).invoke(ses_event(COMPLAINT, "campaign_that_does_not_exist", "person2@example.org", "x"))
    assert h.contacts.get("person3@example.org").status == "bounced"
    assert h.contacts.get("person2@example.org").status == "complained"
    campaign = h.campaigns.get(c["campaign_id"])
    assert not campaign.get("bounced_count") and not campaign.get("complained_count")


def test_other_ses_events_change_nothing(sent):
    h, _c, _rows = sent
    event = copy.deepcopy(BOUNCE)
    event["detail-type"] = "Email Delivered"
    assert feedback_fn(h).invoke(event) == {"processed": []}
    assert {h.contacts.get(f"person{i}@example.org").status for i in range(4)} == {"subscribed"}


def test_worker_sends_with_the_configuration_set_except_with_foreign_credentials(harness):
    name = harness.rt.physical["EmailConfigurationSet"]
    sesv2 = harness.rt.client("sesv2")
    assert sesv2.get_configuration_set(ConfigurationSetName=name)["ConfigurationSetName"] == name
    assert transport_for({"campaign_id": "c1"}).configuration_set == name
    harness.rt.client("secretsmanager").create_secret(
        Name="bulkmail/other-account",
        SecretString=json.dumps({"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "x"}),
    )
    assert transport_for({"campaign_id": "c2", "aws_secret_name": "bulkmail/other-account"}).configuration_set is None
