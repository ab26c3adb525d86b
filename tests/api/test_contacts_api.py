"""Contacts routes through the real API function (Powertools REST resolver) on the embedded stack."""

import pytest

from tests.conftest import people


def stored_emails(api):
    return sorted(i["email"] for i in api.harness.rt.table("ContactsTable").scan()["Items"])


def test_post_contacts_is_all_or_nothing_naming_each_rejected_one(api):
    r = api.request(
        "POST",
        "/contacts",
        json_body={
            "contacts": [*people(3), {"email": "not-an-address"}, {"email": "x@example.org", "first_name": 7}, "text"]
        },
    )
    assert r.status == 400
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["contacts[3].email", "contacts[4].first_name", "contacts[5]"]
    assert "first_name: must be of type string" in errors[1]["message"]
    assert stored_emails(api) == []
    ok = api.request("POST", "/contacts", json_body={"contacts": people(3)})
    assert ok.status == 200 and ok.json() == {"imported": 3, "rejected": []}
    assert stored_emails(api) == [f"person{i}@example.org" for i in range(3)]


def test_post_contacts_updates_an_existing_contact(api):
    api.request("POST", "/contacts", json_body={"contacts": [{"email": "Ada@Example.org", "first_name": "Ada"}]})
    r = api.request(
        "POST", "/contacts", json_body={"contacts": [{"email": "ada@example.org", "first_name": "Augusta"}]}
    )
    assert r.status == 200 and r.json()["imported"] == 1
    got = api.request("GET", "/contacts/ada%40example.org")
    assert got.status == 200 and got.json()["first_name"] == "Augusta"


@pytest.mark.parametrize(
    "body, status, field",
    [
        ('{"contacts": [', 400, "$"),
        ("[1, 2]", 400, "$"),
        ('{"contacts": {"email": "a@b.org"}}', 400, "contacts"),
        ("{}", 400, "contacts"),
    ],
)
def test_post_contacts_bad_input_is_400_naming_the_field(api, body, status, field):
    r = api.request("POST", "/contacts", body=body, headers={"Content-Type": "application/json"})
    assert r.status == status
    assert r.json()["errors"][0]["field"] == field
    assert stored_emails(api) == []


def test_more_than_1000_contacts_is_413_and_nothing_is_stored(api):
    r = api.request("POST", "/contacts", json_body={"contacts": people(1001)})
    assert r.status == 413
    assert r.json()["errors"][0]["field"] == "contacts"
    assert stored_emails(api) == []


CSV = (
    "email,first_name,last_name,company,lists\n"
    "ada@example.org,Ada,Lovelace,Analytical,newsletter;beta\n"
    "not-an-address,Bad,Row,,\n"
    '"grace@example.org","Grace","Hopper","Navy, US",newsletter\n'
    "alan@example.org,Alan,Turing,Bletchley,,extra-cell\n"
)


def test_csv_import_rejects_bad_rows_with_their_line_and_imports_the_rest(api):
    r = api.request("POST", "/contacts/import", body=CSV, headers={"Content-Type": "text/csv"})
    assert r.status == 200, r.body
    body = r.json()
    assert body["imported"] == 2
    assert [(x["line"], x["email"]) for x in body["rejected"]] == [(3, "not-an-address"), (5, "alan@example.org")]
    assert "more cells than the header" in body["rejected"][1]["error"]
    grace = api.request("GET", "/contacts/grace@example.org").json()
    assert grace["company"] == "Navy, US" and grace["lists"] == ["newsletter"]
    assert api.request("GET", "/contacts/ada@example.org").json()["lists"] == ["beta", "newsletter"]


@pytest.mark.parametrize(
    "text, content_type, status, field",
    [
        (CSV, "application/json", 415, "Content-Type"),
        ("first_name,last_name\nAda,Lovelace\n", "text/csv", 400, "email"),
        ("email,shoe size\na@example.org,9\n", "text/csv", 400, "shoe size"),  # custom columns: names only
        ("email,shoe_size:integer\na@example.org,9\n", "text/csv", 400, "shoe_size:integer"),
    ],
)
def test_csv_import_bad_input(api, text, content_type, status, field):
    r = api.request("POST", "/contacts/import", body=text, headers={"Content-Type": content_type})
    assert r.status == status
    assert r.json()["errors"][0]["field"] == field
    assert stored_emails(api) == []


def test_csv_import_oversize_is_413(api):
    text = "email\n" + "".join(f"user{i:09d}@example.org\n" for i in range(240_000))
    r = api.request("POST", "/contacts/import", body=text, headers={"Content-Type": "text/csv"})
    assert r.status == 413
    assert stored_emails(api) == []


def test_get_and_delete_contact(api):
    api.request("POST", "/contacts", json_body={"contacts": people(2)})
    assert api.request("GET", "/contacts/person1@example.org").json()["last_name"] == "Last1"
    assert api.request("DELETE", "/contacts/person1%40example.org").status == 204
    assert api.request("GET", "/contacts/person1@example.org").status == 404
    missing = api.request("DELETE", "/contacts/nobody@example.org")
    assert missing.status == 404 and missing.json()["errors"][0]["field"] == "email"
    assert stored_emails(api) == ["person0@example.org"]
