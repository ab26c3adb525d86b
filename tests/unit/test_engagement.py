"""SES's engagement events read into what FeedbackFunction counts, and the report made of the counts."""

import json

from bulkmail.feedback import engagement_events, parse_engagement, unsubscribed
from bulkmail.reports import campaign_report, report_csv
from bulkmail.tracking import Tracking


def _event(detail_type="Email Opened", event_type="Open", tags=None, **detail):
    tags = tags if tags is not None else {"campaign_id": ["c1"], "bulkmail-tracking": ["opens-clicks"]}
    kind = {"Open": "open", "Click": "click", "Delivery": "delivery"}[event_type]
    return {
        "source": "aws.ses",
        "detail-type": detail_type,
        "detail": {
            "eventType": event_type,
            "mail": {"messageId": "m1", "destination": ["Ada@Example.org"], "tags": tags, "timestamp": "t0"},
            kind: {"timestamp": "2026-12-02T07:30:00Z", **detail},
        },
    }


def test_an_open_is_attributed_by_its_tags_and_the_same_event_has_the_same_fingerprint():
    (detail,) = engagement_events(_event())
    first, again = parse_engagement(detail), parse_engagement(json.loads(json.dumps(detail)))
    assert (first.kind, first.campaign_id, first.email, first.message_id) == ("open", "c1", "ada@example.org", "m1")
    assert first.fingerprint == again.fingerprint and first.at == "2026-12-02T07:30:00Z"
    other = parse_engagement(engagement_events(_event(ipAddress="192.0.2.7"))[0])
    assert other.fingerprint != first.fingerprint  # another open of the same email


def test_a_click_carries_its_link_and_privacy_mode_drops_the_person():
    tags = {"campaign_id": ["c1"], "bulkmail-tracking": ["clicks"], "bulkmail-privacy": ["true"]}
    click = parse_engagement(engagement_events(_event("Email Clicked", "Click", tags, link="https://x.org/a"))[0])
    assert (click.kind, click.link, click.email, click.private) == ("click", "https://x.org/a", "", True)


def test_what_the_campaign_does_not_count_and_mail_no_campaign_sent_are_dropped():
    clicks_only = {"campaign_id": ["c1"], "bulkmail-tracking": ["clicks"]}
    assert parse_engagement(engagement_events(_event(tags=clicks_only))[0]) is None  # SES's pixel, not counted
    assert parse_engagement(engagement_events(_event(tags={}))[0]) is None
    assert engagement_events({**_event(), "detail-type": "Email Bounced"}) == []


def test_an_unsubscribe_names_nobody_and_repeats_alike():
    one, two = unsubscribed("c1", "a@example.org", "t1"), unsubscribed("c1", "a@example.org", "t2")
    assert one.email == "" and one.fingerprint == two.fingerprint and "a@example.org" not in one.message_id


def test_the_report_sums_kinds_links_and_hours():
    totals = {
        "kinds": {"open": {"n": 5, "u": 3}, "click": {"n": 2, "u": 1}, "delivered": {"n": 6, "u": 6}},
        "hours": {("open", "2026-12-02T08"): {"n": 1, "u": 0}, ("open", "2026-12-02T07"): {"n": 4, "u": 3}},
        "links": [{"url": "https://x.org/b", "n": 1, "u": 1}, {"url": "https://x.org/a", "n": 1, "u": 1}],
    }
    campaign = {"campaign_id": "c1", "sent_count": 6, "bounced_count": 1, "track_opens": True}
    report = campaign_report(campaign, totals, Tracking(clicks=True))
    assert report["tracking"] == {"opens": True, "clicks": True, "privacy_mode": False}
    assert (report["sent"], report["delivered"], report["opens_unique"], report["opens"], report["bounces"]) == (
        6,
        6,
        3,
        5,
        1,
    )
    assert report["open_rate"] == 0.5 and report["click_rate"] == round(1 / 6, 4)
    assert [link["url"] for link in report["links"]] == ["https://x.org/a", "https://x.org/b"]
    assert [p["hour"] for p in report["curves"]] == ["2026-12-02T07", "2026-12-02T08"]
    csv = report_csv(report)
    assert csv.startswith("metric,value\r\nsent,6\r\n") and "https://x.org/a,1,1\r\n" in csv
    assert "2026-12-02T07,0,3,4,0,0\r\n" in csv
