"""Lists, segments and contact data through the real API function on the embedded stack (issue 15)."""

import csv
import io

from bulkmail.adapters.contacts import erased_key


def contacts(n, lists, **attributes):
    return [
        {"email": f"c{i}@example.org", "first_name": f"C{i}", "lists": lists, "attributes": {"n": i, **attributes}}
        for i in range(n)
    ]


def post(api, path, body):
    return api.request("POST", path, json_body=body)


def members(api, list_name):
    rows = api.harness.rt.table("AudienceTable").query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"list#{list_name}"}
    )["Items"]
    return sorted(r["sk"] for r in rows)


def test_lists_have_counts_and_members_leave_one_list_and_stay_on_others(held_api):
    api = held_api
    assert post(api, "/lists", {"list_id": "news", "name": "News", "description": "monthly"}).status == 201
    assert post(api, "/lists", {"list_id": "news"}).status == 409
    bad = post(api, "/lists", {"list_id": "", "colour": 1})
    assert bad.status == 400 and {e["field"] for e in bad.json()["errors"]} == {"list_id", "colour"}
    post(api, "/contacts", {"contacts": contacts(3, ["news", "vip"])})
    api.request("PATCH", "/contacts/c0%40example.org", json_body={"status": "unsubscribed"})
    news = api.request("GET", "/lists/news").json()
    assert news | {"created_at": None} == {
        "list_id": "news",
        "name": "News",
        "description": "monthly",
        "created_at": None,
        "members": 3,
        "subscribed": 2,
    }
    left = api.request("PATCH", "/contacts/c1%40example.org", json_body={"lists": ["vip"], "attributes": {"n": None}})
    assert left.status == 200 and left.json()["lists"] == ["vip"] and left.json()["attributes"] == {}
    assert members(api, "news") == ["c0@example.org", "c2@example.org"]
    assert members(api, "vip") == ["c0@example.org", "c1@example.org", "c2@example.org"]
    assert {x["list_id"]: x["members"] for x in api.request("GET", "/lists").json()["lists"]} == {"news": 2, "vip": 3}
    assert api.request("DELETE", "/lists/vip").status == 204
    assert api.request("GET", "/lists/vip").status == 404
    assert api.request("GET", "/contacts/c1%40example.org").json().get("lists") is None
    assert members(api, "vip") == []


def test_segment_count_matches_subscribed_members_of_its_lists(held_api):
    api = held_api
    people = contacts(10, ["a"], plan="free") + [
        {"email": f"p{i}@example.org", "lists": ["b"], "attributes": {"plan": "pro", "seats": str(i)}} for i in range(6)
    ]
    post(api, "/contacts", {"contacts": people})
    segment = {
        "segment_id": "big-pro",
        "lists": ["a", "b"],
        "match": [{"field": "plan", "op": "eq", "value": "pro"}, {"field": "seats", "op": "gt", "value": 2}],
    }
    assert post(api, "/segments", segment).status == 201
    assert post(api, "/segments", segment).status == 409
    count = api.request("GET", "/segments/big-pro/count").json()
    assert count["count"] == 3 and count["read_units"] > 0
    api.request("PATCH", "/contacts/p5%40example.org", json_body={"status": "unsubscribed"})
    assert api.request("GET", "/segments/big-pro/count").json()["count"] == 2
    unknown = post(api, "/segments", {**segment, "segment_id": "x", "lists": ["nope"]})
    assert unknown.status == 422 and unknown.json()["errors"][0]["field"] == "lists"
    bad = post(api, "/segments", {**segment, "segment_id": "y", "match": [{"field": "plan", "op": "like"}]})
    assert bad.status == 400 and bad.json()["errors"][0]["field"] == "match[0].op"
    assert [s["segment_id"] for s in api.request("GET", "/segments").json()["segments"]] == ["big-pro"]
    assert api.request("DELETE", "/segments/big-pro").status == 204
    assert api.request("GET", "/segments/big-pro/count").status == 404


def test_browse_filters_and_pages(held_api):
    api = held_api
    post(api, "/contacts", {"contacts": contacts(5, ["a"], plan="pro") + contacts(0, ["b"])})
    api.request("PATCH", "/contacts/c3%40example.org", json_body={"attributes": {"plan": "free"}})
    seen, token = [], None
    for _ in range(10):
        query = "/contacts?list=a&field=plan&value=pro&limit=2" + (f"&next_token={token}" if token else "")
        page = api.request("GET", query).json()
        seen += [c["email"] for c in page["contacts"]]
        token = page["next_token"]
        if not token:
            break
    assert sorted(seen) == ["c0@example.org", "c1@example.org", "c2@example.org", "c4@example.org"]
    assert api.request("GET", "/contacts?status=bogus").json()["errors"][0]["field"] == "status"
    assert api.request("GET", "/contacts?list=nope").status == 404
    assert api.request("GET", "/contacts?field=plan").status == 400


def test_export_csv_has_a_column_per_custom_field(held_api):
    api = held_api
    post(
        api,
        "/contacts",
        {"contacts": [*contacts(2, ["a"], plan="pro"), {"email": "z@example.org", "first_name": "=1+1"}]},
    )
    r = api.request("GET", "/contacts/export")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.body.decode())))
    assert [row["email"] for row in rows] == ["c0@example.org", "c1@example.org", "z@example.org"]
    assert rows[0]["plan"] == "pro" and rows[0]["n"] == "0" and rows[0]["lists"] == "a"
    assert rows[2]["first_name"] == "'=1+1"  # never a formula in a spreadsheet
    only_a = list(csv.DictReader(io.StringIO(api.request("GET", "/contacts/export?list=a").body.decode())))
    assert len(only_a) == 2


def test_patch_refuses_what_it_cannot_do(held_api):
    api = held_api
    post(api, "/contacts", {"contacts": contacts(1, ["a"])})
    assert api.request("PATCH", "/contacts/nobody%40example.org", json_body={"lists": []}).status == 404
    bad = api.request("PATCH", "/contacts/c0%40example.org", json_body={"status": "bounced"})
    assert bad.status == 400 and bad.json()["errors"][0]["field"] == "status"
    api.harness.rt.table("ContactsTable").update_item(
        Key={"email": "c0@example.org"},
        UpdateExpression="SET #s = :b",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":b": "bounced"},
    )
    again = api.request("PATCH", "/contacts/c0%40example.org", json_body={"status": "subscribed"})
    assert again.status == 409 and again.json()["errors"][0]["field"] == "status"


def test_personal_export_returns_the_contact(held_api):
    api = held_api
    post(api, "/contacts", {"contacts": contacts(1, ["a"], plan="pro")})
    got = api.request("GET", "/contacts/c0%40example.org/export").json()
    assert got["contact"]["attributes"] == {"n": 0, "plan": "pro"} and got["deliveries"] == []
    assert api.request("GET", "/contacts/nobody%40example.org/export").status == 404
    assert erased_key("C0@example.org ") == erased_key("c0@example.org")
