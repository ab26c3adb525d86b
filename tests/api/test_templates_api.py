"""Stored templates through the real API function: versions, preview, and campaigns that name one."""

from tests.conftest import SEED_CAMPAIGN, people

NEWS = {
    "template_id": "news",
    "name": "News",
    "subject": "News for {{first_name}}",
    "body_html": "<p>Hello {{first_name}}, version one</p>",
    "body": "Hello {{first_name}}, version one",
}


def test_each_post_and_put_is_a_new_version_and_get_lists_them(held_api):
    api = held_api
    r = api.request("POST", "/templates", json_body=NEWS)
    assert r.status == 201, r.body
    assert r.json()["version"] == 1
    again = api.request("POST", "/templates", json_body=NEWS)
    assert again.status == 409 and again.json()["errors"][0]["field"] == "template_id"
    r = api.request("PUT", "/templates/news", json_body={**NEWS, "body_html": "<p>version two</p>"})
    assert r.status == 200, r.body
    assert r.json()["version"] == 2
    one = api.request("GET", "/templates/news?version=1").json()
    assert (one["version"], one["body_html"]) == (1, NEWS["body_html"])
    newest = api.request("GET", "/templates/news").json()
    assert newest["version"] == 2 and newest["body_html"] == "<p>version two</p>"
    assert [v["version"] for v in newest["versions"]] == [2, 1]
    assert "body_html" not in newest["versions"][0]
    listed = api.request("GET", "/templates").json()["templates"]
    assert [(t["template_id"], t["version"]) for t in listed] == [("news", 2)]


def test_bad_templates_are_refused_naming_the_field_and_nothing_is_stored(held_api):
    api = held_api
    cases = [
        ({k: v for k, v in NEWS.items() if k != "body_html"}, "body_html"),
        ({**NEWS, "subject": "Hi {{nobody}}"}, "subject"),
        ({**NEWS, "template_id": "no spaces"}, "template_id"),
        ({**NEWS, "body_html": "{% for x in %}"}, "body_html"),
        ({**NEWS, "colour": "red"}, "colour"),
    ]
    for document, field in cases:
        r = api.request("POST", "/templates", json_body=document)
        assert r.status == 400, (field, r.body)
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.body)
    assert api.harness.rt.table("TemplatesTable").scan()["Count"] == 0
    r = api.request("PUT", "/templates/absent", json_body=NEWS | {"template_id": "absent"})
    assert r.status == 404 and r.json()["errors"][0]["field"] == "template_id"
    r = api.request("PUT", "/templates/news", json_body={**NEWS, "template_id": "other"})
    assert r.status == 400 and r.json()["errors"][0]["field"] == "template_id"
    assert api.request("GET", "/templates/absent").status == 404
    for path in ("/templates/" + "x" * 3000, "/templates/a%20b"):  # never an error from DynamoDB's key limits
        assert api.request("GET", path).status == 404
        assert api.request("POST", f"{path}/preview", json_body={"contact": {"email": "a@example.org"}}).status == 404
    assert api.request("PUT", "/templates/" + "x" * 3000, json_body=NEWS).status == 400
    r = api.request("GET", "/templates/news?version=zero")
    assert r.status == 400 and r.json()["errors"][0]["field"] == "version"


def test_preview_renders_a_version_for_a_contact(held_api):
    api = held_api
    assert api.request("POST", "/templates", json_body=NEWS).status == 201
    api.request("PUT", "/templates/news", json_body={**NEWS, "subject": "Second {{first_name}}"})
    r = api.request(
        "POST", "/templates/news/preview", json_body={"contact": {"email": "a@example.org", "first_name": "Ada"}}
    )
    assert r.status == 200, r.body
    assert r.json()["subject"] == "Second Ada" and r.json()["version"] == 2
    r = api.request(
        "POST",
        "/templates/news/preview",
        json_body={"contact": {"email": "a@example.org", "first_name": "<b>"}, "version": 1},
    )
    assert r.json()["subject"] == "News for <b>" and "Hello &lt;b&gt;" in r.json()["html"]
    r = api.request("POST", "/templates/news/preview", json_body={"contact": {"email": "not an address"}})
    assert r.status == 400 and r.json()["errors"][0]["field"].startswith("contact")
    assert api.request("POST", "/templates/news/preview", json_body={}).status == 400


def test_a_campaign_takes_its_template_once_and_a_later_edit_does_not_change_it(api):
    api.harness.add_contacts(people(3))
    assert api.request("POST", "/templates", json_body=NEWS).status == 201
    campaign = {k: v for k, v in SEED_CAMPAIGN.items() if k not in ("subject", "body", "body_html")}
    api.harness.rt.pause_workers()
    r = api.request("POST", "/campaigns", json_body={**campaign, "campaign_id": "from_tpl", "template_id": "news"})
    assert r.status == 202, r.body
    # The template changes while the campaign is queued: the campaign keeps version 1.
    api.request(
        "PUT", "/templates/news", json_body={**NEWS, "subject": "Changed", "body": "changed", "body_html": "<p>x</p>"}
    )
    api.harness.rt.resume_workers()
    record = api.harness.wait_for_campaign("from_tpl", lambda c: c["status"] == "completed", timeout=60)
    assert (record["template_id"], record["template_version"], record["subject"]) == ("news", 1, NEWS["subject"])
    subjects = sorted(str(m["Subject"]) for m in api.harness.sent_messages("from_tpl"))
    assert subjects == ["News for First0", "News for First1", "News for First2"]


def test_a_campaign_overrides_template_fields_and_names_a_version(held_api):
    api = held_api
    assert api.request("POST", "/templates", json_body=NEWS).status == 201
    api.request("PUT", "/templates/news", json_body={**NEWS, "subject": "Second"})
    campaign = {k: v for k, v in SEED_CAMPAIGN.items() if k not in ("subject", "body", "body_html")}
    contact = {"email": "a@example.org", "first_name": "Ada"}
    r = api.request(
        "POST",
        "/campaigns/preview",
        json_body={
            **campaign,
            "template_id": "news",
            "template_version": 1,
            "subject": "Own {{first_name}}",
            "contact": contact,
        },
    )
    assert r.status == 200, r.body
    assert r.json()["subject"] == "Own Ada" and "version one" in r.json()["text"]
    # Its own HTML and no text: the text is made from its HTML, not taken from the template.
    r = api.request(
        "POST",
        "/campaigns/preview",
        json_body={**campaign, "template_id": "news", "body_html": "<p>Mine</p>", "contact": contact},
    )
    assert r.json()["subject"] == "Second" and "Mine" in r.json()["text"] and "version one" not in r.json()["text"]


def test_a_campaign_naming_an_unknown_template_is_refused_and_nothing_starts(held_api):
    api = held_api
    campaign = {k: v for k, v in SEED_CAMPAIGN.items() if k not in ("subject", "body", "body_html")}
    api.harness.add_contacts(people(1))
    r = api.request("POST", "/campaigns", json_body={**campaign, "template_id": "absent"})
    assert r.status == 400 and r.json()["errors"][0]["field"] == "template_id", r.body
    assert api.request("POST", "/templates", json_body=NEWS).status == 201
    r = api.request("POST", "/campaigns", json_body={**campaign, "template_id": "news", "template_version": 7})
    assert r.status == 400 and r.json()["errors"][0]["field"] == "template_version", r.body
    r = api.request("POST", "/campaigns", json_body={**SEED_CAMPAIGN, "template_version": 1})
    assert r.status == 400 and r.json()["errors"][0]["field"] == "template_version", r.body
    assert api.harness.rt.table("CampaignsTable").scan()["Count"] == 0


def test_starter_templates_are_served_and_can_be_stored(held_api):
    api = held_api
    starters = api.request("GET", "/starter-templates").json()["templates"]
    assert [s["template_id"] for s in starters] == ["newsletter", "announcement", "plain"]
    for starter in starters:
        r = api.request("POST", "/templates", json_body=starter)
        assert r.status == 201, r.body
