"""Contact-level events (stack parameter ContactEvents): a recipient's first open and click of a
campaign reach the campaign bus once each, whatever EventBridge redelivers; privacy mode sends none."""

from __future__ import annotations

import pytest

from bulkmail_local.runtime import EmbeddedRuntime
from tests.conftest import Harness, people
from tests.e2e.test_operations import BusObserver

HTML = '<html><body><a href="https://example.org/a">a</a></body></html>'


@pytest.fixture
def harness_with_contact_events(tmp_path):
    with EmbeddedRuntime(outbox=tmp_path / "outbox", parameters={"ContactEvents": "true"}) as rt:
        rt.pause_workers()
        yield Harness(rt, tmp_path / "outbox")


def _engage(h: Harness, campaign_id: str, **tracking) -> None:
    h.add_contacts(people(2))
    h.add_campaign(2, campaign_id=campaign_id, body_html=HTML, track_opens=True, track_clicks=True, **tracking)
    h.enqueue(campaign_id, "p0-0", [p["email"] for p in people(2)])
    h.drain()
    events = h.rt.ses_events
    assert events is not None and events.wait_idle()
    (row, _) = sorted(h.ledger.deliveries_for(campaign_id), key=lambda r: r["email"])
    mail = {
        "m": row["message_id"],
        "s": "n@example.com",
        "d": [row["email"]],
        "c": h.rt.physical["TrackedConfigurationSet"],
        "t": {"campaign_id": campaign_id, "bulkmail-tracking": "opens-clicks", **tracking_tags(tracking)},
    }
    opened = events.event("open", mail, {"timestamp": "2026-12-02T08:00:00.000Z"})
    reopened = events.event("open", mail, {"timestamp": "2026-12-02T09:00:00.000Z"})
    click = {"timestamp": "2026-12-02T08:01:00.000Z", "link": "https://example.org/a", "linkTags": {}}
    events.publish([opened, opened, reopened, events.event("click", mail, click)])  # a redelivery, a reopen
    assert events.wait_idle()


def tracking_tags(tracking: dict) -> dict[str, str]:
    return {"bulkmail-privacy": "true"} if tracking.get("privacy_mode") else {}


def test_first_open_and_click_are_published_once_with_the_address(harness_with_contact_events):
    h = harness_with_contact_events
    bus = BusObserver(h.rt)
    _engage(h, "contact_events")
    seen = [e for e in bus.received() if e["detail-type"] in ("EmailOpened", "LinkClicked")]
    assert sorted(e["detail-type"] for e in seen) == ["EmailOpened", "LinkClicked"]
    opened = next(e["detail"] for e in seen if e["detail-type"] == "EmailOpened")
    assert (opened["campaign_id"], opened["email"]) == ("contact_events", "person0@example.org")
    clicked = next(e["detail"] for e in seen if e["detail-type"] == "LinkClicked")
    assert clicked["link"] == "https://example.org/a"


def test_privacy_mode_publishes_no_contact_event(harness_with_contact_events):
    h = harness_with_contact_events
    bus = BusObserver(h.rt)
    _engage(h, "private_events", privacy_mode=True)
    assert [e for e in bus.received() if e["detail-type"] in ("EmailOpened", "LinkClicked")] == []
