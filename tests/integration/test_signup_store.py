"""The signup store and rate limiter on DynamoDB keep the same contract as the fakes the unit tests use."""

from datetime import UTC, datetime, timedelta

from bulkmail.adapters import dynamo
from bulkmail.adapters.signups import DynamoRateLimiter, SignupStore
from bulkmail.signup import parse_request
from tests.fakes import FakeRateLimiter, FakeSignups

NOW = datetime(2026, 12, 2, 8, 0, 10, tzinfo=UTC)


def request(email, list_id="news", now=NOW):
    parsed, problems = parse_request(
        {"email": email, "list": list_id, "consent": True}, ip="198.51.100.7", default_source="api", now=now
    )
    assert not problems
    return parsed


def check_signups(store, read, suppressed_contact) -> None:
    """`read(email)`: the stored item as plain Python; `suppressed_contact(email)`: store an unsubscribed one."""
    first = request("new@example.org")
    store.request(first)
    assert read("new@example.org")["status"] == "pending" and read("new@example.org")["lists"] == ["news"]
    later = request("new@example.org", now=NOW + timedelta(minutes=1))
    store.request(later)
    confirmed = {"confirmed_at": "2026-12-02T09:00:00.000+00:00", "confirmed_ip": "203.0.113.1"}
    assert store.confirm("new@example.org", "news", first.consent["requested_at"], confirmed) == "superseded"
    assert read("new@example.org")["status"] == "pending"
    assert store.confirm("new@example.org", "news", later.consent["requested_at"], confirmed) == "confirmed"
    assert store.confirm("new@example.org", "news", later.consent["requested_at"], confirmed) == "already"
    item = read("new@example.org")
    assert item["status"] == "subscribed" and "pending_signup" not in item
    assert item["consent"]["news"]["confirmed_ip"] == "203.0.113.1"

    suppressed_contact("gone@example.org")
    back = request("gone@example.org")
    store.request(back)
    assert read("gone@example.org")["status"] == "unsubscribed"  # until confirmed
    assert store.confirm("gone@example.org", "news", back.consent["requested_at"], confirmed) == "confirmed"
    item = read("gone@example.org")
    assert item["status"] == "subscribed" and sorted(item["lists"]) == ["news", "old"]
    assert item["lifted_suppression"]["suppression"] == {"reason": "test"} and "suppressed_at" not in item
    assert store.confirm("nobody@example.org", "news", back.consent["requested_at"], confirmed) == "superseded"


def check_limiter(limiter) -> None:
    assert [limiter.hit("client#x", 2, 60, NOW) for _ in range(3)] == [0, 0, 50]
    assert limiter.hit("client#y", 2, 60, NOW) == 0  # another key
    assert limiter.hit("client#x", 2, 60, NOW + timedelta(seconds=50)) == 0  # the next window


def test_the_fakes_keep_the_contract() -> None:
    fake = FakeSignups()

    def suppressed(email):
        fake.items[email] = {
            "email": email,
            "status": "unsubscribed",
            "lists": ["old"],
            "suppressed_at": "2026-01-01T00:00:00+00:00",
            "suppression": {"reason": "test"},
        }

    check_signups(fake, lambda email: fake.items[email], suppressed)
    check_limiter(FakeRateLimiter())


def test_the_dynamodb_store_and_limiter_keep_the_contract(harness) -> None:
    rt = harness.rt
    store = SignupStore(rt.physical["ContactsTable"], rt.physical["ListsTable"], rt.physical["AudienceTable"])
    table = rt.table("ContactsTable")

    def read(email):
        return dynamo.plain(table.get_item(Key={"email": email}, ConsistentRead=True)["Item"])

    def suppressed(email):
        table.put_item(
            Item={
                "email": email,
                "status": "unsubscribed",
                "lists": ["old"],
                "suppressed_at": "2026-01-01T00:00:00+00:00",
                "suppression": {"reason": "test"},
            }
        )

    check_signups(store, read, suppressed)
    members = rt.table("AudienceTable").query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "list#news"}
    )["Items"]
    # the index holds the members, each row with a copy of the contact's status; a contact's signup joins
    # the list only when confirmed
    assert {m["sk"]: m.get("status") for m in members} == {
        "new@example.org": "subscribed",
        "gone@example.org": "subscribed",
    }
    table.put_item(Item={"email": "member@example.org", "status": "subscribed", "lists": ["old"]})
    store.request(request("member@example.org"))
    members = rt.table("AudienceTable").query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "list#news"}
    )["Items"]
    assert "member@example.org" not in {m["sk"] for m in members}
    check_limiter(DynamoRateLimiter(rt.physical["SignupLimitsTable"]))
