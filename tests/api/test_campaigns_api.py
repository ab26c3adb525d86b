"""Campaign routes through the real API function, the real ASL and the real workers."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from bulkmail.adapters.contacts import suppress_contact
from tests.conftest import SEED_CAMPAIGN, people


def executions(api):
    sfn = api.harness.rt.client("stepfunctions")
    return sfn.list_executions(stateMachineArn=api.harness.rt.state_machine_arn)["executions"]


def nothing_persisted(api):
    rt = api.harness.rt
    assert rt.table("CampaignsTable").scan()["Count"] == 0
    assert rt.table("IdempotencyTable").scan()["Count"] == 0
    assert executions(api) == []


def test_post_campaign_starts_the_workflow_and_the_campaign_completes(api):
    api.harness.add_contacts(people(7))
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "api_1"})
    assert r.status == 202, r.body
    body = r.json()
    assert body["campaign_id"] == "api_1" and body["status"] == "queued"
    execution = api.harness.rt.wait_for_execution(body["execution_arn"], timeout=60)
    assert execution["status"] == "SUCCEEDED"
    record = api.request("GET", "/campaigns/api_1").json()
    assert (record["status"], record["sent_count"], record["total_contacts"], record["progress"]) == (
        "completed",
        7,
        7,
        1.0,
    )
    assert len(api.harness.sent_messages("api_1")) == 7

    trace = api.request("GET", "/campaigns/api_1/trace").json()
    assert (trace["execution_arn"], trace["execution_status"], trace["steps_omitted"]) == (
        body["execution_arn"],
        "SUCCEEDED",
        0,
    )
    states = [p["state"] for p in trace["path"]]
    assert states[:5] == [
        "IsContinuation",
        "ValidateCampaign",
        "PersistCampaign",
        "PublishCampaignStarted",
        "AdvanceCampaign",
    ]
    assert states[-1] == "CampaignCompleted"
    assert not any(p["running"] for p in trace["path"])
    assert [s["state"] for s in trace["steps"]].count("AdvanceCampaign") == len(trace["progress"]) >= 1
    assert trace["progress"][-1]["processed"] == trace["progress"][-1]["total"] == 7


def test_idempotency_key_returns_the_first_answer_and_starts_nothing_new(api):
    api.harness.add_contacts(people(1))
    headers = {"Idempotency-Key": "retry-me"}
    first = api.request("POST", "/campaigns", json_body=SEED_CAMPAIGN, headers=headers)
    again = api.request("POST", "/campaigns", json_body=SEED_CAMPAIGN, headers=headers)
    assert first.status == again.status == 202
    assert first.json() == again.json()
    assert len(executions(api)) == 1
    other = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "subject": "Other"}, headers=headers)
    assert other.status == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    fresh = api.request("POST", "/campaigns", json_body=SEED_CAMPAIGN, headers={"Idempotency-Key": "another"})
    assert fresh.status == 202 and fresh.json()["campaign_id"] != first.json()["campaign_id"]
    assert len(executions(api)) == 2


PAST = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "body, field, words",
    [
        ('{"campaign_name": ', "$", "not valid JSON"),
        ('["a list"]', "$", "JSON object"),
        (json.dumps({**SEED_CAMPAIGN, "smtp_port": "25"}), "smtp_port", "type integer"),
        (json.dumps({k: v for k, v in SEED_CAMPAIGN.items() if k != "subject"}), "subject", "is required"),
        (json.dumps({**SEED_CAMPAIGN, "from_email": "noreply-at-example.com"}), "from_email", "not a valid email"),
        (json.dumps({**SEED_CAMPAIGN, "subject": "Hi\r\nBcc: x@evil.org"}), "subject", "line breaks"),
        (json.dumps({**SEED_CAMPAIGN, "from_email": "a@example.com\nBcc: x@evil.org"}), "from_email", "line breaks"),
        (json.dumps({**SEED_CAMPAIGN, "body": "Hi {{frist_name}}"}), "body", "unknown placeholder {{frist_name}}"),
        (json.dumps({**SEED_CAMPAIGN, "body": "x" * 150_001}), "body", "too long"),
        (json.dumps({**SEED_CAMPAIGN, "send_at": PAST}), "send_at", "in the past"),
        (json.dumps({**SEED_CAMPAIGN, "email_service": "pigeon"}), "email_service", "must be one of"),
        (json.dumps({**SEED_CAMPAIGN, "colour": "red"}), "colour", "not a known field"),
    ],
)
def test_bad_campaign_is_400_naming_field_and_problem_and_nothing_starts(api, body, field, words):
    r = api.request(
        "POST", "/campaigns", body=body, headers={"Content-Type": "application/json", "Idempotency-Key": "k-bad"}
    )
    assert r.status == 400, r.body
    errors = r.json()["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    nothing_persisted(api)


def test_oversize_request_is_413_and_nothing_starts(api):
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "body": "x" * 2_200_000})  # over MAX_JSON_BYTES
    assert r.status == 413
    assert r.json()["errors"][0]["field"] == "$"
    nothing_persisted(api)


def test_existing_campaign_id_is_409(api):
    api.harness.add_contacts(people(1))
    first = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "dup"})
    api.harness.rt.wait_for_execution(first.json()["execution_arn"], timeout=60)
    again = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "dup"})
    assert again.status == 409 and again.json()["errors"][0]["field"] == "campaign_id"
    assert len(executions(api)) == 1


def test_unknown_campaign_is_404_on_every_route(api):
    for method, path in [
        ("GET", "/campaigns/nope"),
        ("GET", "/campaigns/nope/deliveries"),
        ("PATCH", "/campaigns/nope"),
        ("POST", "/campaigns/nope/pause"),
        ("POST", "/campaigns/nope/resume"),
        ("POST", "/campaigns/nope/cancel"),
        ("GET", "/campaigns/nope/trace"),
    ]:
        r = api.request(method, path, json_body={"subject": "x"} if method == "PATCH" else None)
        assert r.status == 404, (method, path, r.body)
        assert r.json()["errors"][0]["field"] == "campaign_id"


def test_list_campaigns_and_deliveries_paginate_and_filter(api):
    api.harness.add_contacts([*people(5), {"email": "gone@example.org"}])
    for cid in ("list_a", "list_b"):
        r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": cid})
        api.harness.rt.wait_for_execution(r.json()["execution_arn"], timeout=60)
    page = api.request("GET", "/campaigns?limit=1").json()
    assert len(page["campaigns"]) == 1 and page["next_token"]
    rest = api.request("GET", f"/campaigns?limit=10&next_token={page['next_token']}").json()
    ids = {c["campaign_id"] for c in page["campaigns"] + rest["campaigns"]}
    assert ids == {"list_a", "list_b"}
    assert api.request("GET", "/campaigns?status=completed").json()["campaigns"]
    assert api.request("GET", "/campaigns?status=sleeping").status == 400

    seen, token = [], None
    for _ in range(10):
        target = "/campaigns/list_a/deliveries?limit=4" + (f"&next_token={token}" if token else "")
        page = api.request("GET", target).json()
        seen += page["deliveries"]
        token = page["next_token"]
        if not token:
            break
    assert sorted(d["email"] for d in seen) == sorted(
        [f"person{i}@example.org" for i in range(5)] + ["gone@example.org"]
    )
    assert {d["status"] for d in seen} == {"sent"}
    assert api.request("GET", "/campaigns/list_a/deliveries?status=failed").json()["deliveries"] == []
    assert api.request("GET", "/campaigns/list_a/deliveries?status=lost").status == 400
    assert api.request("GET", "/campaigns/list_a/deliveries?next_token=garbage!").status == 400
    assert api.request("GET", "/campaigns/list_a/deliveries?limit=0").status == 400


def test_get_reports_a_campaign_whose_execution_ended_before_storing_it(api):
    rt = api.harness.rt
    # An execution started outside the API (as the CLI or the console can) with a campaign the workflow rejects:
    arn = rt.start_campaign(
        {**SEED_CAMPAIGN, "campaign_id": "rejected_1", "subject": "Hi {{frist_name}}"}, name="rejected_1"
    )
    assert rt.wait_for_execution(arn, timeout=60)["status"] == "FAILED"
    r = api.request("GET", "/campaigns/rejected_1")
    assert r.status == 200, r.body
    body = r.json()
    assert (body["status"], body["execution_arn"], body["error"]) == ("failed", arn, "CampaignInvalid")
    assert "frist_name" in body["cause"]
    assert api.request("GET", "/campaigns/never_started").status == 404


def test_a_campaign_to_nobody_is_refused_naming_the_known_lists(api):
    empty = api.request("POST", "/campaigns", json_body=SEED_CAMPAIGN)
    assert empty.status == 422 and "no subscribed contact" in empty.json()["errors"][0]["message"]
    api.harness.add_contacts(people(2, lists=["news"]) + people(1, domain="example.net", lists=["november"]))
    misspelt = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "list": "nwes"})
    assert misspelt.status == 422
    assert misspelt.json()["errors"] == [
        {"field": "list", "message": "there is no list 'nwes': the known lists are news, november"}
    ]
    for i in range(2):  # as the unsubscribe link does: the contact and its list's index row
        suppress_contact(api.harness.contacts, f"person{i}@example.org", "unsubscribed", "2026-01-01T00:00:00Z", {})
    gone = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "list": "news", "send_at": FUTURE})
    assert gone.status == 422 and "list 'news' has no subscribed contact" in gone.json()["errors"][0]["message"]
    assert executions(api) == [] and api.harness.campaigns.table.scan()["Items"] == []  # nothing stored half-way
    fine = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "list": "november"})
    assert fine.status == 202
