"""Unsubscribe tokens, links and the headers and footer they put into every email."""

import email
import email.policy

import pytest

from bulkmail.errors import InvalidUnsubscribeToken
from bulkmail.models import Contact
from bulkmail.rendering import build_mime, render
from bulkmail.unsubscribe import UnsubscribeLinks, make_token, verify_token
from bulkmail.validation import validate_campaign
from tests.conftest import SEED_CAMPAIGN

KEY = b"k" * 48
CAMPAIGN = validate_campaign(dict(SEED_CAMPAIGN))
LINKS = UnsubscribeLinks(KEY, "https://abc123.execute-api.us-east-1.amazonaws.com/v1")


def test_token_round_trips_and_names_campaign_and_contact():
    token = make_token(KEY, "campaign_1", "zoe@example.org")
    assert verify_token(KEY, token) == ("campaign_1", "zoe@example.org")
    assert "zoe@example.org" not in token and "/" not in token and "+" not in token


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # tag changed
        lambda t: t.replace(t.split(".")[1], make_token(KEY, "campaign_1", "eve@example.org").split(".")[1]),
        lambda t: "2" + t[1:],  # unknown version
        lambda t: t + "=",  # alternative spelling
        lambda t: t.split(".", 1)[1],  # missing part
        lambda t: "",
        lambda t: "x" * 5000,
        lambda t: t.replace(".", ".!", 1),  # not base64url
    ],
)
def test_tampered_or_malformed_token_is_rejected(mutate):
    token = make_token(KEY, "campaign_1", "zoe@example.org")
    with pytest.raises(InvalidUnsubscribeToken):
        verify_token(KEY, mutate(token))


def test_token_made_with_another_key_is_rejected():
    with pytest.raises(InvalidUnsubscribeToken, match="signature"):
        verify_token(KEY, make_token(b"another key", "campaign_1", "zoe@example.org"))


def test_empty_key_is_refused():
    with pytest.raises(ValueError):
        make_token(b"", "c", "a@example.org")
    with pytest.raises(ValueError):
        UnsubscribeLinks(b"", "https://x.example")


def test_links_never_show_the_key():
    assert "k" * 10 not in repr(LINKS)


def test_every_email_carries_rfc8058_headers_and_a_visible_link():
    contact = Contact("zoe@example.org", "Zoë", "Müller")
    rendered = render(CAMPAIGN, contact, **LINKS.for_recipient(CAMPAIGN["campaign_id"], contact.email))
    raw = build_mime(CAMPAIGN, contact, rendered).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.strict)
    url = LINKS.url(CAMPAIGN["campaign_id"], contact.email)
    assert msg["List-Unsubscribe"] == f"<{url}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"=?utf-8?" not in raw.split(b"List-Unsubscribe:")[1].split(b"\r\n")[0]  # not RFC 2047-encoded
    assert url in msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f'<a href="{url}">unsubscribe</a>' in html
    assert verify_token(KEY, url.rsplit("/", 1)[1]) == (CAMPAIGN["campaign_id"], "zoe@example.org")


def test_template_that_shows_the_link_gets_no_second_footer():
    campaign = {
        **CAMPAIGN,
        "body": "Bye: {{unsubscribe_url}}",
        "body_html": "<html><body><a href='{{unsubscribe_url}}'>leave</a></body></html>",
    }
    contact = Contact("a@example.org")
    rendered = render(campaign, contact, **LINKS.for_recipient(campaign["campaign_id"], contact.email))
    url = LINKS.url(campaign["campaign_id"], contact.email)
    assert rendered.text == f"Bye: {url}"
    assert rendered.html.count(url) == 1


def test_footer_goes_inside_the_html_body():
    campaign = {**CAMPAIGN, "body_html": "<html><BODY><p>Hi</p></BODY></html>"}
    rendered = render(campaign, Contact("a@example.org"), unsubscribe_url="https://x.example/unsubscribe/t")
    assert rendered.html.endswith("unsubscribe</a>.</p></BODY></html>")


def test_mailto_is_offered_when_a_mailbox_is_configured():
    links = UnsubscribeLinks(KEY, "https://x.example/v1", mailbox="unsubscribe@example.com")
    contact = Contact("a@example.org")
    rendered = render(CAMPAIGN, contact, **links.for_recipient("c1", contact.email))
    msg = email.message_from_bytes(build_mime(CAMPAIGN, contact, rendered).as_bytes(), policy=email.policy.strict)
    https, mailto = [p.strip(" <>") for p in str(msg["List-Unsubscribe"]).split(",")]
    assert https.startswith("https://x.example/v1/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe%20")


def test_without_links_no_list_headers():
    contact = Contact("a@example.org")
    msg = build_mime(CAMPAIGN, contact, render(CAMPAIGN, contact))
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


def test_tokens_mailed_before_the_shared_token_module_still_verify():
    # made by the unsubscribe module before signing moved to bulkmail.tokens: links in sent mail stay valid
    mailed = "1.Y2FtcGFpZ25fMR96b2VAZXhhbXBsZS5vcmc.H9Lb-mfhXdUD06Vo94hEkQ"
    assert verify_token(KEY, mailed) == ("campaign_1", "zoe@example.org")
