"""PATCH, pause, resume, cancel and preview, with the workers held so each step is observable."""

from tests.conftest import SEED_CAMPAIGN, people
from tests.waiting import eventually


def start_queued(api, campaign_id, n=6):
    api.harness.add_contacts(people(n))
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": campaign_id})
    assert r.status == 202, r.body

    def fanned_out():
        got = api.request("GET", f"/campaigns/{campaign_id}")
        return got.status == 200 and got.json().get("fanout_done") and got.json()

    eventually(fanned_out)
    return r.json()["execution_arn"]


def test_patch_reaches_every_recipient_not_yet_sent(held_api):
    api = held_api
    arn = start_queued(api, "edit_1")
    r = api.request("PATCH", "/campaigns/edit_1", json_body={"subject": "Edited for {{first_name}}"})
    assert r.status == 200, r.body
    assert r.json()["subject"] == "Edited for {{first_name}}"
    api.harness.drain()
    assert api.harness.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    subjects = sorted(m["Subject"] for m in api.harness.sent_messages("edit_1"))
    assert subjects == sorted(f"Edited for First{i}" for i in range(6))
    late = api.request("PATCH", "/campaigns/edit_1", json_body={"subject": "Too late"})
    assert late.status == 409 and late.json()["errors"][0]["field"] == "status"


def test_patch_is_revalidated_and_a_rejected_edit_changes_nothing(held_api):
    api = held_api
    start_queued(api, "edit_2", n=1)
    for changes, field in [
        ({"subject": "Hi {{frist_name}}"}, "subject"),
        ({"subject": "a\r\nBcc: x@evil.org"}, "subject"),
        ({"from_email": "other@example.com"}, "from_email"),
        ({"body": 5}, "body"),
        ({}, "$"),
    ]:
        r = api.request("PATCH", "/campaigns/edit_2", json_body=changes)
        assert r.status == 400, (changes, r.body)
        assert r.json()["errors"][0]["field"] == field
    assert api.harness.campaigns.get("edit_2")["subject"] == SEED_CAMPAIGN["subject"]


def test_pause_holds_sending_and_resume_finishes_it(held_api):
    api = held_api
    arn = start_queued(api, "pause_1")
    r = api.request("POST", "/campaigns/pause_1/pause")
    assert r.status == 200 and r.json()["status"] == "paused"
    assert api.request("POST", "/campaigns/pause_1/pause").status == 409
    api.harness.drain()
    assert api.harness.sent_messages("pause_1") == []
    assert api.request("GET", "/campaigns/pause_1").json()["status"] == "paused"
    r = api.request("POST", "/campaigns/pause_1/resume")
    assert r.status == 200 and r.json()["status"] == "queued"
    assert api.request("POST", "/campaigns/pause_1/resume").status == 409

    def drained_and_done():
        api.harness.drain()
        return api.harness.rt.describe_execution(arn)["status"] != "RUNNING"

    eventually(drained_and_done, timeout=60, every=0.2)
    record = api.request("GET", "/campaigns/pause_1").json()
    assert (record["status"], record["sent_count"]) == ("completed", 6)


def test_cancel_stops_the_campaign_and_skips_the_rest(held_api):
    api = held_api
    arn = start_queued(api, "cancel_1")
    r = api.request("POST", "/campaigns/cancel_1/cancel")
    assert r.status == 200 and r.json() == {
        "campaign_id": "cancel_1",
        "status": "cancelled",
        "previous_status": "queued",
    }
    assert api.request("POST", "/campaigns/cancel_1/cancel").status == 409
    assert api.request("POST", "/campaigns/cancel_1/resume").status == 409
    api.harness.drain()
    execution = api.harness.rt.wait_for_execution(arn, timeout=60)
    assert "CampaignCancelled" in api.harness.rt.state_path(execution["executionArn"])
    assert api.harness.sent_messages("cancel_1") == []
    assert api.request("GET", "/campaigns/cancel_1").json()["status"] == "cancelled"


def test_preview_renders_subject_text_and_escaped_html(held_api):
    r = held_api.request(
        "POST",
        "/campaigns/preview",
        json_body={
            **SEED_CAMPAIGN,
            "contact": {
                "email": "ada@example.org",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "company": "Smith & Sons <Ltd>",
            },
        },
    )
    assert r.status == 200, r.body
    assert r.json() == {
        "subject": "Hello Ada!",
        "text": "Dear Ada Lovelace, welcome to Smith & Sons <Ltd>",
        "html": "<p>Dear Ada Lovelace, welcome to <b>Smith &amp; Sons &lt;Ltd&gt;</b></p>",
    }
    assert held_api.harness.rt.table("CampaignsTable").scan()["Count"] == 0


def test_preview_bad_input(held_api):
    no_contact = held_api.request("POST", "/campaigns/preview", json_body=SEED_CAMPAIGN)
    assert no_contact.status == 400 and no_contact.json()["errors"][0]["field"] == "contact"
    bad_contact = held_api.request(
        "POST", "/campaigns/preview", json_body={**SEED_CAMPAIGN, "contact": {"email": "nope"}}
    )
    assert bad_contact.status == 400 and "not a valid email" in bad_contact.json()["errors"][0]["message"]
    bad_campaign = held_api.request(
        "POST",
        "/campaigns/preview",
        json_body={**SEED_CAMPAIGN, "subject": "{{ oops", "contact": {"email": "a@example.org"}},
    )
    assert bad_campaign.status == 400 and bad_campaign.json()["errors"][0]["field"] == "subject"


def test_test_send_mails_each_address_and_is_counted_nowhere(held_api):
    api = held_api
    r = api.request(
        "POST",
        "/campaigns/test",
        json_body={**SEED_CAMPAIGN, "to": ["me@example.org", "Boss@Example.org"], "contact": {"first_name": "Ada"}},
    )
    assert r.status == 200, r.body
    body = r.json()
    assert [s["to"] for s in body["sent"]] == ["me@example.org", "Boss@Example.org"]
    api.harness.rt.outbox.flush()
    mails = api.harness.sent_messages(body["campaign_id"])
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == ["boss@example.org", "me@example.org"]
    assert {m["Subject"] for m in mails} == {"[TEST] Hello Ada!"}
    assert api.harness.rt.table("CampaignsTable").scan()["Count"] == 0
    assert api.harness.rt.table("DeliveriesTable").scan()["Count"] == 0


def test_test_send_bad_input_sends_nothing(held_api):
    api = held_api
    for extra, field in [
        ({}, "to"),
        ({"to": "me@example.org"}, "to"),
        ({"to": ["not-an-address"]}, "to"),
        ({"to": [f"u{i}@example.org" for i in range(11)]}, "to"),
        ({"to": ["me@example.org"], "subject": "Hi {{frist_name}}"}, "subject"),
    ]:
        r = api.request("POST", "/campaigns/test", json_body={**SEED_CAMPAIGN, **extra})
        assert r.status == 400, (extra, r.body)
        assert r.json()["errors"][0]["field"] == field
    api.harness.rt.outbox.flush()
    assert not any(api.harness.outbox.glob("*/*.eml"))


def test_resend_failed_starts_a_campaign_to_the_failed_recipients_only(held_api):
    api = held_api
    api.harness.add_contacts(people(3))
    # The stack's sender domain, not verified (yet): SES rejects all three.
    api.harness.rt.client("sesv2").delete_email_identity(EmailIdentity="example.com")
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "rf_1"})
    assert r.status == 202, r.body
    arn = r.json()["execution_arn"]
    early = api.request("POST", "/campaigns/rf_1/resend-failed")
    assert early.status in (404, 409)  # not stored yet, or not finished: nothing to re-send yet
    eventually(lambda: api.request("GET", "/campaigns/rf_1").json().get("fanout_done"))
    api.harness.drain()
    assert api.harness.rt.wait_for_execution(arn, timeout=60)["status"] == "SUCCEEDED"
    assert api.request("GET", "/campaigns/rf_1").json()["failed_count"] == 3
    api.harness.rt.client("sesv2").create_email_identity(EmailIdentity="example.com")
    r = api.request("POST", "/campaigns/rf_1/resend-failed")
    assert r.status == 202, r.body
    child = r.json()["campaign_id"]
    assert r.json()["resend_of"] == "rf_1"
    eventually(lambda: api.request("GET", f"/campaigns/{child}").json().get("fanout_done"))
    api.harness.drain()
    assert api.harness.rt.wait_for_execution(r.json()["execution_arn"], timeout=60)["status"] == "SUCCEEDED"
    record = api.request("GET", f"/campaigns/{child}").json()
    assert (record["status"], record["total_contacts"], record["sent_count"]) == ("completed", 3, 3)
    assert len(api.harness.sent_messages(child)) == 3
    again = api.request("POST", f"/campaigns/{child}/resend-failed")
    assert again.status == 409 and "no failed recipients" in again.json()["errors"][0]["message"]


def test_cancel_works_from_the_moment_post_campaigns_answered(held_api):
    """Issue 12, finding 7: the cancel arrives before the workflow has stored anything."""
    api = held_api
    api.harness.add_contacts(people(6))
    with api.harness.rt.request_lock:  # every other thread (the workflow's steps) waits meanwhile
        r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "early_cancel"})
        assert r.status == 202, r.body
        cancelled = api.request("POST", "/campaigns/early_cancel/cancel")
    assert cancelled.status == 200, cancelled.body
    assert cancelled.json()["status"] == "cancelled"
    execution = api.harness.rt.wait_for_execution(
        r.json()["execution_arn"], timeout=60, on_tick=lambda *_: api.harness.drain()
    )
    assert execution["status"] == "SUCCEEDED"
    assert "CampaignCancelled" in api.harness.rt.state_path(execution["executionArn"])
    assert api.harness.sent_messages("early_cancel") == []
    record = api.request("GET", "/campaigns/early_cancel").json()
    assert (record["status"], record["skipped_count"], record["total_contacts"]) == ("cancelled", 6, 6)
