"""Signup with double opt-in: the request and its consent, the rate limits, the confirmation link."""

from datetime import UTC, datetime, timedelta

import pytest

from bulkmail import signup
from bulkmail.adapters.signups import confirmed_fields
from bulkmail.errors import InvalidSignupToken, SignupRateLimited
from bulkmail.unsubscribe import make_token
from tests.fakes import FakeRateLimiter, FakeSignups, FakeTransport

KEY = b"s" * 48
URL = "https://abc.execute-api.us-east-1.amazonaws.com/v1"


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 12, 2, 8, 0, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


def request_for(email="zoe@example.org", ip="198.51.100.7", clock=None, **fields):
    document = {"email": email, "list": "news", "consent": True, **fields}
    parsed, problems = signup.parse_request(document, ip=ip, default_source="api", now=(clock or Clock()).now())
    assert problems == []
    return parsed


def sign_up(world, request):
    signups, limiter, transport, clock = world
    return signup.subscribe(
        request,
        signups=signups,
        limiter=limiter,
        transport=transport,
        key=KEY,
        public_url=URL,
        from_address="no-reply@example.com",
        limits=signup.Limits(),
        clock=clock,
    )


@pytest.fixture
def world():
    return FakeSignups(), FakeRateLimiter(), FakeTransport(), Clock()


def link_token(message) -> str:
    body = message.get_content()
    return body.split(f"{URL}/subscribe/confirm/")[1].split()[0]


def test_every_problem_names_its_field():
    _, problems = signup.parse_request(
        {"email": "not an address", "first_name": "x" * 101, "consent": "no", "consent_text": 5},
        ip="1.2.3.4",
        default_source="form",
        now=Clock().now(),
    )
    assert {p["field"] for p in problems} == {"email", "list", "first_name", "consent", "consent_text"}


def test_consent_records_time_source_ip_and_the_text():
    clock = Clock()
    form = {"email": "Zoe@Example.org", "list": "news", "consent": "on", "first_name": "Zoe"}
    parsed, problems = signup.parse_request(
        form, ip="198.51.100.7", default_source="form", now=clock.now(), headers={"referer": "https://shop.example/"}
    )
    assert problems == [] and parsed.email == "zoe@example.org" and parsed.names == {"first_name": "Zoe"}
    assert parsed.consent == {
        "list": "news",
        "text": signup.default_consent_text("news"),
        "source": "form",
        "ip": "198.51.100.7",
        "requested_at": "2026-12-02T08:00:30.000+00:00",
        "page": "https://shop.example/",
    }
    own, _ = signup.parse_request(
        {**form, "consent_text": "I want the news", "source": "checkout"},
        ip="::1",
        default_source="api",
        now=clock.now(),
    )
    assert own.consent["text"] == "I want the news" and own.consent["source"] == "checkout"


def test_a_signup_keeps_a_pending_contact_and_mails_one_link_that_confirms_it(world):
    signups, _, transport, clock = world
    sign_up(world, request_for(clock=clock))
    assert signups.items["zoe@example.org"]["status"] == "pending"
    [message] = transport.accepted
    assert message["To"] == "zoe@example.org" and message["From"] == "no-reply@example.com"
    assert KEY.decode() not in message.as_string()
    clock.moment += timedelta(hours=2)
    assert signup.confirm(link_token(message), key=KEY, signups=signups, ip="203.0.113.9", clock=clock) == (
        "news",
        "zoe@example.org",
        "confirmed",
    )
    contact = signups.items["zoe@example.org"]
    assert contact["status"] == "subscribed" and contact["lists"] == ["news"] and "pending_signup" not in contact
    consent = contact["consent"]["news"]
    assert consent["ip"] == "198.51.100.7" and consent["confirmed_ip"] == "203.0.113.9"
    assert consent["confirmed_at"] == "2026-12-02T10:00:30.000+00:00"
    # the same button pressed again changes nothing
    assert signup.confirm(link_token(message), key=KEY, signups=signups, ip="x", clock=clock)[2] == "already"


def test_a_later_signup_supersedes_the_earlier_link(world):
    signups, _, transport, clock = world
    sign_up(world, request_for(clock=clock))
    clock.moment += timedelta(minutes=1)
    sign_up(world, request_for(clock=clock))
    first, second = transport.accepted
    assert signup.confirm(link_token(first), key=KEY, signups=signups, ip="x", clock=clock)[2] == "superseded"
    assert signups.items["zoe@example.org"]["status"] == "pending"
    assert signup.confirm(link_token(second), key=KEY, signups=signups, ip="x", clock=clock)[2] == "confirmed"


def test_links_expire_and_cannot_be_forged_or_borrowed(world):
    signups, _, transport, clock = world
    sign_up(world, request_for(clock=clock))
    token = link_token(transport.accepted[0])
    clock.moment += timedelta(days=signup.CONFIRM_DAYS, seconds=1)
    with pytest.raises(InvalidSignupToken, match="older than"):
        signup.confirm(token, key=KEY, signups=signups, ip="x", clock=clock)
    with pytest.raises(InvalidSignupToken, match="signature"):
        signup.read_token(b"another key", token, Clock().now())
    with pytest.raises(InvalidSignupToken):  # an unsubscribe link is not a confirmation
        signup.read_token(KEY, make_token(KEY, "news", "zoe@example.org"), Clock().now())
    assert signups.items["zoe@example.org"]["status"] == "pending"


def test_a_burst_from_one_client_is_limited_and_names_no_address(world):
    signups, _, transport, clock = world
    for n in range(signup.Limits().per_client):
        sign_up(world, request_for(f"p{n}@example.org", clock=clock))
    with pytest.raises(SignupRateLimited) as limited:
        sign_up(world, request_for("late@example.org", clock=clock))
    assert limited.value.field == "$" and limited.value.retry_after == 30
    assert "late@example.org" not in signups.items and len(transport.accepted) == signup.Limits().per_client
    clock.moment += timedelta(seconds=30)  # the next window
    sign_up(world, request_for("late@example.org", clock=clock))


def test_one_address_gets_few_confirmations_from_many_clients(world):
    _, _, transport, clock = world
    for n in range(signup.Limits().per_address):
        sign_up(world, request_for(ip=f"198.51.100.{n}", clock=clock))
    with pytest.raises(SignupRateLimited) as limited:
        sign_up(world, request_for(ip="198.51.100.200", clock=clock))
    assert limited.value.field == "email" and len(transport.accepted) == signup.Limits().per_address


def test_confirming_is_a_new_opt_in_that_lifts_a_suppression():
    item = {
        "email": "zoe@example.org",
        "status": "unsubscribed",
        "lists": ["old"],
        "suppressed_at": "2026-01-01T00:00:00+00:00",
        "suppression": {"reason": "one-click unsubscribe"},
    }
    pending = {"list": "news", "requested_at": "2026-12-02T08:00:00.000+00:00"}
    fields = confirmed_fields(item, pending, {"confirmed_at": "2026-12-02T09:00:00.000+00:00", "confirmed_ip": "x"})
    assert fields["status"] == "subscribed" and fields["lists"] == ["news", "old"]
    assert fields["lifted_suppression"]["suppression"] == {"reason": "one-click unsubscribe"}
    assert fields["opted_in_at"] == "2026-12-02T09:00:00.000+00:00"
    # what a deleted contact left is only a suppression: the confirmed contact starts anew
    deleted = {**item, "deleted_at": "2026-02-01T00:00:00+00:00"}
    fresh = confirmed_fields(deleted, pending, {"confirmed_at": "2026-12-02T09:00:00.000+00:00"})
    assert fresh["lists"] == ["news"] and fresh["created_at"] == "2026-12-02T09:00:00.000+00:00"
