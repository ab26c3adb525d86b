"""Headers and SES message tags every email carries, and a campaign's custom headers."""

import email
import email.policy
import re

import pytest

from bulkmail.errors import CampaignInvalid
from bulkmail.models import Contact
from bulkmail.rendering import build_mime, render
from bulkmail.tracking import (
    NO_TRACK,
    Tracking,
    message_tags,
    tracking_from_tags,
    tracking_of,
)
from bulkmail.validation import validate_campaign
from tests.conftest import SEED_CAMPAIGN

CONTACT = Contact("ada@example.org", "Ada", "Lovelace")
HTML = '<html><body><p>Read <a href="https://example.org/post">the post</a>.</p></body></html>'


def _message(**fields):
    campaign = validate_campaign({**SEED_CAMPAIGN, **fields})
    tracking = tracking_of(campaign, Tracking())
    rendered = render(campaign, CONTACT, "https://u.test/unsubscribe/tok", tracking=tracking)
    raw = build_mime(campaign, CONTACT, rendered).as_bytes()
    return campaign, email.message_from_bytes(raw, policy=email.policy.strict)


def test_every_email_has_a_list_id_and_a_date_with_a_numeric_zone():
    _, msg = _message(list="Monthly News")
    assert msg["List-Id"] == '"Monthly News" <monthly-news.example.com>'
    assert re.search(r" [+-]\d{4}$", msg["Date"]), msg["Date"]
    assert "GMT" not in msg["Date"]


def test_custom_headers_are_added_as_given():
    _, msg = _message(headers={"X-Campaign-Ref": "spring-2026", "Precedence": "bulk"})
    assert msg["X-Campaign-Ref"] == "spring-2026" and msg["Precedence"] == "bulk"


@pytest.mark.parametrize("name", ["From", "subject", "List-Unsubscribe", "Content-Type", "MIME-Version", "To"])
def test_a_custom_header_cannot_override_what_bulkmail_writes(name):
    with pytest.raises(CampaignInvalid) as caught:
        validate_campaign({**SEED_CAMPAIGN, "headers": {name: "x"}})
    assert [e["field"] for e in caught.value.errors] == [f"headers.{name}"]


@pytest.mark.parametrize(("name", "value"), [("X-Ok", "a\r\nBcc: all@example.org"), ("X-Ok", "a\nb"), ("X Bad:", "v")])
def test_a_custom_header_refuses_line_breaks_and_bad_names(name, value):
    with pytest.raises(CampaignInvalid) as caught:
        validate_campaign({**SEED_CAMPAIGN, "headers": {name: value}})
    assert [e["field"] for e in caught.value.errors] == [f"headers.{name}"]


def test_message_tags_name_the_campaign_and_the_feedback_loop_ids():
    campaign = validate_campaign({**SEED_CAMPAIGN, "campaign_id": "c-1", "track_opens": True, "privacy_mode": True})
    tags = message_tags(campaign, tracking_of(campaign, Tracking()), "acme")
    assert tags == {
        "campaign_id": "c-1",
        "ses:feedback-id-a": "c-1",
        "ses:feedback-id-b": "acme",
        "bulkmail-tracking": "opens",
        "bulkmail-privacy": "true",
    }
    assert tracking_from_tags({k: [v] for k, v in tags.items()}) == Tracking(opens=True, privacy=True)


def test_defaults_apply_where_the_campaign_names_none():
    defaults = Tracking(opens=True, clicks=True)
    assert tracking_of({"track_clicks": False}, defaults) == Tracking(opens=True, clicks=False)


def test_opens_without_clicks_marks_every_link_for_ses_to_leave_alone():
    _campaign, msg = _message(body_html=HTML, track_opens=True, track_clicks=False)
    html = msg.get_body(("html",)).get_content()
    assert html.count("<a ") == html.count(f"<a {NO_TRACK}") == 2  # the post and the footer's unsubscribe


def test_clicks_tracked_except_the_unsubscribe_link():
    _campaign, msg = _message(body_html=HTML, track_clicks=True)
    html = msg.get_body(("html",)).get_content()
    assert '<a href="https://example.org/post">' in html
    assert f'{NO_TRACK} href="https://u.test/unsubscribe/tok"' in html


def test_untracked_mail_has_no_marks():
    _, msg = _message(body_html=HTML)
    assert NO_TRACK not in msg.get_body(("html",)).get_content()
