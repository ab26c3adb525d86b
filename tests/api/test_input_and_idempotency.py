"""Issue 12 through the real API function: idempotent re-sends, contacts all or nothing, suppressions
that outlive the contact, CSV as spreadsheets save it, full filtered pages, and bad input as a 4xx
naming the field (never a 5xx, nothing stored half-way)."""

import json

import pytest

from bulkmail.adapters.contacts import suppress_contact
from tests.api.test_campaigns_api import executions, nothing_persisted
from tests.conftest import SEED_CAMPAIGN, people
from tests.waiting import eventually

CSV_HEADER = "email,first_name,last_name\n"


def csv_import(api, text, content_type="text/csv"):
    return api.request("POST", "/contacts/import", body=text, headers={"Content-Type": content_type})


def contact(api, email):
    return api.request("GET", f"/contacts/{email}")


# --- finding 1: re-send --------------------------------------------------------------------------
def test_resend_failed_is_idempotent_and_resend_of_is_not_a_client_field(held_api):
    api = held_api
    api.harness.add_contacts(people(3))
    # The stack's own identity, unverified for a while: SES rejects every send (another domain would be
    # AccessDenied by the worker's role, which names this identity only).
    api.harness.rt.client("sesv2").delete_email_identity(EmailIdentity="example.com")
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "rs_1"})
    assert r.status == 202, r.body
    eventually(lambda: api.request("GET", "/campaigns/rs_1").json().get("fanout_done"))
    api.harness.drain()
    assert api.harness.rt.wait_for_execution(r.json()["execution_arn"], timeout=60)["status"] == "SUCCEEDED"
    api.harness.rt.client("sesv2").create_email_identity(EmailIdentity="example.com")

    answers = [api.request("POST", "/campaigns/rs_1/resend-failed") for _ in range(3)]  # a triple click
    assert [a.status for a in answers] == [202, 202, 202], [a.body for a in answers]
    resend = {a.json()["campaign_id"] for a in answers}
    assert len(resend) == 1
    child = resend.pop()
    assert len([e for e in executions(api) if e["name"] == child]) == 1
    eventually(lambda: api.request("GET", f"/campaigns/{child}").json().get("fanout_done"))
    api.harness.drain()
    later = api.request("POST", "/campaigns/rs_1/resend-failed")
    assert later.status == 202 and later.json()["campaign_id"] == child
    assert len([e for e in executions(api) if e["name"].startswith("rs_1_resend")]) == 1
    assert len(api.harness.sent_messages(child)) == 3
    assert api.request("GET", "/campaigns/rs_1").json()["resent_as"] == child

    crafted = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "rs_2", "resend_of": "rs_1"})
    assert crafted.status == 400 and crafted.json()["errors"][0]["field"] == "resend_of"


# --- finding 8: contacts all or nothing ------------------------------------------------------------
def test_a_contact_over_dynamodbs_item_size_refuses_the_request_naming_it(api):
    huge = {"email": "big@example.org", "attributes": {"bio": "x" * 450_000}}
    r = api.request("POST", "/contacts", json_body={"contacts": [*people(60), huge]})
    assert r.status == 400, r.body
    error = r.json()["errors"][0]
    assert error["field"] == "contacts[60].attributes.bio" and "as DynamoDB counts it" in error["message"]
    assert api.harness.rt.table("ContactsTable").scan()["Count"] == 0


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"email": "üser@example.org"}, "contacts[1].email"),
        ({"email": "a..b@example.org"}, "contacts[1].email"),
        ({"email": ".a@example.org"}, "contacts[1].email"),
        ({"email": "ada@example.org", "first_name": "Ada\r\nBcc: x@evil.example"}, "contacts[1].first_name"),
        ({"email": "ada@example.org", "last_name": "Lovelace\n"}, "contacts[1].last_name"),
        ({"email": "person0@example.org"}, "contacts[1].email"),  # a duplicate of contacts[0]
    ],
)
def test_bad_contacts_are_refused_naming_index_and_field(api, bad, field):
    r = api.request("POST", "/contacts", json_body={"contacts": [*people(1), bad]})
    assert r.status == 400, r.body
    assert r.json()["errors"][0]["field"] == field
    assert api.harness.rt.table("ContactsTable").scan()["Count"] == 0


# --- finding 3 (import side) and 12: CSV --------------------------------------------------------
def test_csv_rows_are_refused_with_line_and_field_and_duplicates_count_once(api):
    text = (
        CSV_HEADER + 'ada@example.org,Ada,Lovelace\n"grace@example.org","Grace\r\nBcc: x@evil.example",Hopper\n'
        "üser@example.org,U,Ser\na..b@example.org,A,B\n.a@example.org,Dot,A\nADA@example.org,Ada,Again\n"
    )
    r = csv_import(api, text)
    assert r.status == 200, r.body
    body = r.json()
    assert body["imported"] == 1
    assert [(x["line"], x["field"]) for x in body["rejected"]] == [
        (3, "first_name"),
        (5, "email"),
        (6, "email"),
        (7, "email"),
        (8, "email"),
    ]
    assert "duplicate of line 2" in body["rejected"][-1]["error"]
    assert contact(api, "ada@example.org").json()["last_name"] == "Lovelace"
    assert contact(api, "grace@example.org").status == 404


@pytest.mark.parametrize(
    "payload, content_type",
    [
        ((CSV_HEADER + "jose@example.org,José,Núñez\n").encode("latin-1"), "text/csv; charset=iso-8859-1"),
        ((CSV_HEADER + "jose@example.org,José,Núñez\n").encode("utf-16"), "text/csv"),
        (b"\xef\xbb\xbf" + (CSV_HEADER + "jose@example.org,José,Núñez\n").encode(), "text/csv"),
    ],
)
def test_csv_in_other_encodings_is_read_as_they_say(api, payload, content_type):
    r = csv_import(api, payload, content_type)
    assert r.status == 200 and r.json()["imported"] == 1, r.body
    assert contact(api, "jose@example.org").json()["first_name"] == "José"


@pytest.mark.parametrize(
    "payload, field",
    [
        ((CSV_HEADER + "jose@example.org,José,Núñez\n").encode("latin-1"), "$"),  # Latin-1, not said
        ((CSV_HEADER + "jose@example.org,Jose,Nunez\n").encode("utf-16-le"), "$"),  # UTF-16 without a BOM
        (b"email,email\nada@example.org,grace@example.org\n", "email"),
    ],
)
def test_csv_that_cannot_be_read_as_sent_is_a_400(api, payload, field):
    r = csv_import(api, payload)
    assert r.status == 400, r.body
    assert r.json()["errors"][0]["field"] == field
    assert api.harness.rt.table("ContactsTable").scan()["Count"] == 0


# --- finding 10: suppression outlives the contact ------------------------------------------------
def test_a_suppression_survives_delete_and_reimport_until_a_new_opt_in(api):
    assert csv_import(api, CSV_HEADER + "ada@example.org,Ada,Lovelace\n").status == 200
    suppress_contact(
        api.harness.contacts,
        "ada@example.org",
        "unsubscribed",
        "2026-11-01T10:00:00+00:00",
        {"reason": "one-click unsubscribe", "campaign_id": "c1"},
    )
    assert csv_import(api, CSV_HEADER + "ada@example.org,Ada,King\n").json()["imported"] == 1
    kept = contact(api, "ada@example.org").json()
    assert (kept["status"], kept["suppressed_at"], kept["suppression"]["reason"], kept["last_name"]) == (
        "unsubscribed",
        "2026-11-01T10:00:00+00:00",
        "one-click unsubscribe",
        "King",
    )

    assert api.request("DELETE", "/contacts/ada@example.org").status == 204
    assert contact(api, "ada@example.org").status == 404
    assert csv_import(api, CSV_HEADER + "ada@example.org,Ada,Lovelace\n").json()["imported"] == 1
    back = contact(api, "ada@example.org").json()
    assert (back["status"], back["suppressed_at"], back["suppression"]["reason"]) == (
        "unsubscribed",
        "2026-11-01T10:00:00+00:00",
        "one-click unsubscribe",
    )

    stale = api.request(
        "POST",
        "/contacts",
        json_body={"contacts": [{"email": "ada@example.org", "opted_in_at": "2026-10-01T00:00:00Z"}]},
    )
    assert stale.status == 200 and contact(api, "ada@example.org").json()["status"] == "unsubscribed"
    fresh = api.request(
        "POST",
        "/contacts",
        json_body={"contacts": [{"email": "ada@example.org", "opted_in_at": "2026-11-02T00:00:00Z"}]},
    )
    assert fresh.status == 200 and contact(api, "ada@example.org").json()["status"] == "subscribed"


def test_an_unsubscribe_for_an_address_that_is_not_a_contact_keeps_it_from_being_imported(api):
    assert (
        suppress_contact(
            api.harness.contacts,
            "gone@example.org",
            "bounced",
            "2026-11-01T10:00:00+00:00",
            {"bounce_type": "Permanent"},
        )
        == "bounced"
    )
    assert contact(api, "gone@example.org").status == 404
    csv_import(api, CSV_HEADER + "gone@example.org,Gone,Away\n")
    assert contact(api, "gone@example.org").json()["status"] == "bounced"


# --- finding 13: full filtered pages --------------------------------------------------------------
def test_deliveries_by_status_come_in_full_pages_and_more_only_when_there_is_more(held_api):
    api = held_api
    api.harness.add_campaign(10, campaign_id="pages")
    table = api.harness.rt.table("DeliveriesTable")
    for i in range(10):
        table.put_item(
            Item={"campaign_id": "pages", "email": f"p{i:02d}@example.org", "status": "skipped" if i >= 8 else "sent"}
        )
    full = api.request("GET", "/campaigns/pages/deliveries?status=skipped&limit=2").json()
    assert [d["email"] for d in full["deliveries"]] == ["p08@example.org", "p09@example.org"]
    assert full["next_token"] is None
    first = api.request("GET", "/campaigns/pages/deliveries?status=skipped&limit=1").json()
    assert len(first["deliveries"]) == 1 and first["next_token"]
    second = api.request(
        "GET", f"/campaigns/pages/deliveries?status=skipped&limit=1&next_token={first['next_token']}"
    ).json()
    assert [d["email"] for d in second["deliveries"]] == ["p09@example.org"] and second["next_token"] is None
    everyone = api.request("GET", "/campaigns/pages/deliveries?limit=10").json()
    assert len(everyone["deliveries"]) == 10 and everyone["next_token"] is None


# --- finding 12 and issue 11's limit: 4xx, never 5xx -----------------------------------------------
def test_a_body_that_is_not_utf8_is_a_400(api):
    r = api.request(
        "POST",
        "/campaigns",
        body=json.dumps({**SEED_CAMPAIGN, "campaign_name": "Café"}, ensure_ascii=False).encode("latin-1"),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 400 and "not utf-8" in r.json()["errors"][0]["message"]
    nothing_persisted(api)


def test_send_at_in_lower_case_rfc3339_is_scheduled(api):
    api.harness.add_contacts(people(1))
    r = api.request(
        "POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "lower", "send_at": "2030-01-01t00:00:00z"}
    )
    assert r.status == 202, r.body
    assert api.request("GET", "/campaigns/lower").json()["status"] == "scheduled"


def test_the_same_id_posted_twice_with_different_bodies_is_a_409(held_api):
    api = held_api
    api.harness.add_contacts(people(1))
    first = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "twice"})
    second = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "campaign_id": "twice", "subject": "Other"})
    assert first.status == 202 and second.status == 409, second.body
    assert second.json()["errors"][0]["field"] == "campaign_id"


def test_a_campaign_too_large_for_the_workflow_is_a_413_naming_the_field(api):
    quoted = {**SEED_CAMPAIGN, "body": "\n" * 120_000, "body_html": '<p class="x">' * 9_000}
    r = api.request("POST", "/campaigns", json_body=quoted)
    assert r.status == 413, r.body
    assert r.json()["errors"][0]["field"] == "body"
    nothing_persisted(api)


def test_non_ascii_text_over_what_step_functions_carries_is_a_413_naming_the_field(api):
    """140,000 characters of Cyrillic are ~258 KB of UTF-8 (and 840 KB as the \\u escapes the client sends):
    under the schema's length, over what the campaign item and StartExecution take."""
    body = "Здравствуйте, дорогие читатели! " * 4_375
    assert len(body) == 140_000 and len(body.encode()) > 250_000
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "body": body})
    assert r.status == 413, r.body
    assert r.json()["errors"][0]["field"] == "body"
    nothing_persisted(api)


def test_a_field_over_its_length_is_named_without_echoing_it(api):
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "body": "Ж" * 200_000})
    assert r.status == 400 and len(r.body) < 500, r.body[:500]
    assert r.json()["errors"] == [{"field": "body", "message": "is too long: 200000 characters; at most 150000"}]
    nothing_persisted(api)


@pytest.mark.parametrize("secret", [None, "not json"])
def test_a_missing_or_non_json_smtp_secret_is_a_400_naming_it(held_api, secret):
    api = held_api
    if secret is not None:
        api.harness.rt.client("secretsmanager").create_secret(Name="smtp-login", SecretString=secret)
    r = api.request(
        "POST",
        "/campaigns/test",
        json_body={
            **SEED_CAMPAIGN,
            "email_service": "smtp",
            "smtp_server": "127.0.0.1",
            "aws_secret_name": "smtp-login",
            "to": ["ada@example.org"],
        },
    )
    assert r.status == 400, r.body
    assert r.json()["errors"][0]["field"] == "aws_secret_name"
