"""Issue 15 on `bulkmail serve`: a CSV with custom columns, a segment on a list and attributes, a campaign
to exactly the matching subscribed contacts personalised with a custom field, export, erase and re-import."""

import csv
import email
import io
import json
import urllib.request

from tests.e2e.test_serve import cli, http, send_and_watch, served  # noqa: F401 (the fixture)


def text_of(path):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return message["To"].addresses[0].addr_spec, message.get_body(preferencelist=("plain",)).get_content()


def send_to_segment(served, name, segment):  # noqa: F811
    body = served["dir"] / "body.txt"
    body.write_text('Hello {{first_name}}, your plan is {{plan}} ({{region|default("anywhere")}}).')
    campaign_id, record = send_and_watch(
        served, "--segment", segment, "--from", "news@example.com", name=name, subject="For {{plan}} users", body=body
    )
    return record, sorted((served["dir"] / "outbox" / campaign_id).glob("*.eml"))


def test_csv_custom_columns_to_a_segment_campaign_export_and_erasure(served):  # noqa: F811
    api, workdir = served["api"], served["dir"]
    rows = ["email,first_name,lists,plan,seats:number,region"]
    for i in range(30):
        plan = "pro" if i % 3 == 0 else "free"
        lists = "news;beta" if i % 2 == 0 else ("news" if i < 25 else "other")
        rows.append(f"p{i}@example.org,P{i},{lists},{plan},{i},{'eu' if i % 4 == 0 else ''}")
    (workdir / "contacts.csv").write_text("\n".join(rows) + "\n")
    imported = cli(served, "contacts", "import", str(workdir / "contacts.csv"), "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout) == {"imported": 30, "rejected": []}
    stored = http("GET", f"{api}/contacts/p3%40example.org")[1]
    assert stored["attributes"] == {"plan": "pro", "seats": 3}  # typed where the header said so
    # p9 unsubscribes (PATCH, as the dashboard does): only subscribed contacts are mailed
    status, _ = http(
        "PATCH", f"{api}/contacts/p9%40example.org", json.dumps({"status": "unsubscribed"}).encode(),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 200

    made = cli(served, "segments", "create", "pro-news", "--list", "news", "--match", "plan:eq:pro", "--match",
               "seats:gt:5", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    # pro, more than 5 seats, on news (27 is on "other" only), subscribed (not 9): 6, 12, 15, 18, 21, 24
    expected = sorted(
        f"p{i}@example.org" for i in range(30) if i % 3 == 0 and i > 5 and (i % 2 == 0 or i < 25) and i != 9
    )
    counted = json.loads(cli(served, "segments", "count", "pro-news", "--json").stdout)
    assert counted["count"] == len(expected) and counted["read_units"] > 0

    record, sent = send_to_segment(served, "Pro news", "pro-news")
    assert (record["status"], record["sent_count"], record["total_contacts"]) == (
        "completed",
        len(expected),
        len(expected),
    )
    mails = dict(text_of(p) for p in sent)
    assert sorted(mails) == expected
    assert mails["p12@example.org"].startswith("Hello P12, your plan is pro (eu).")
    assert mails["p6@example.org"].startswith("Hello P6, your plan is pro (anywhere).")

    exported = cli(served, "contacts", "export", "--list", "news", "--output", str(workdir / "out.csv"))
    assert exported.returncode == 0, exported.stderr
    table = list(csv.DictReader(io.StringIO((workdir / "out.csv").read_text())))
    assert len(table) == 27 and {"plan", "seats", "region"} <= set(table[0])
    personal = http("GET", f"{api}/contacts/p6%40example.org/export")[1]
    assert personal["contact"]["attributes"]["plan"] == "pro"
    assert [d["status"] for d in personal["deliveries"]] == ["sent"]

    # Erase p6: nothing personal stays; a re-import of the same CSV does not mail p6 again.
    req = urllib.request.Request(
        f"{api}/contacts/p6%40example.org?erase=true", method="DELETE", headers={"Content-Type": "application/json"}
    )
    for _ in range(2):  # erasure is idempotent
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 204
    assert http("GET", f"{api}/contacts/p6%40example.org/export")[0] == 404
    deliveries = http("GET", f"{api}/campaigns/{record['campaign_id']}/deliveries?limit=100")[1]["deliveries"]
    assert "p6@example.org" not in {d["email"] for d in deliveries} and len(deliveries) == len(expected)
    again = cli(served, "contacts", "import", str(workdir / "contacts.csv"), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["imported"] == 30
    assert http("GET", f"{api}/contacts/p6%40example.org")[1]["status"] == "unsubscribed"
    record2, sent2 = send_to_segment(served, "Pro news again", "pro-news")
    assert sorted(dict(text_of(p) for p in sent2)) == [e for e in expected if e != "p6@example.org"]
    assert record2["sent_count"] == len(expected) - 1
