import email
import email.policy

from bulkmail.models import Contact
from bulkmail.rendering import build_mime, render
from bulkmail.validation import validate_campaign
from tests.conftest import SEED_CAMPAIGN

CAMPAIGN = validate_campaign(dict(SEED_CAMPAIGN))


def test_seed_placeholders_are_filled():
    out = render(CAMPAIGN, Contact("john.doe@example.com", "John", "Doe", "Acme Corp"))
    assert out.subject == "Hello John!"
    assert out.text == "Dear John Doe, welcome to Acme Corp"


def test_values_are_html_escaped_only_in_html():
    out = render(CAMPAIGN, Contact("a@example.org", "<script>", "O'Brien", "Smith & Sons <Ltd>"))
    assert "Smith & Sons <Ltd>" in out.text
    assert "Smith &amp; Sons &lt;Ltd&gt;" in out.html
    assert "&lt;script&gt;" in out.html and "<script>" not in out.html


def test_missing_value_renders_empty_and_default_gives_a_fallback():
    campaign = {**CAMPAIGN, "subject": "Hello {{ first_name | default('friend') }}!"}
    assert render(campaign, Contact("a@example.org")).subject == "Hello friend!"
    assert render(CAMPAIGN, Contact("a@example.org")).subject == "Hello !"


def test_custom_attributes():
    campaign = {**CAMPAIGN, "body": "plan={{ attributes.plan }}"}
    assert render(campaign, Contact("a@example.org", attributes={"plan": "pro"})).text == "plan=pro"


def test_a_contact_value_cannot_inject_a_header():
    out = render(CAMPAIGN, Contact("a@example.org", first_name="Eve\r\nBcc: all@example.org"))
    assert "\r" not in out.subject and "\n" not in out.subject


def test_sandbox_blocks_unsafe_attribute_access():
    campaign = {**CAMPAIGN, "body": "{{ attributes.__class__.__mro__ }}"}
    try:
        text = render(campaign, Contact("a@example.org")).text
    except Exception as exc:  # noqa: BLE001 — SecurityError is the sandbox saying no
        assert "unsafe" in str(exc) or "SecurityError" in type(exc).__name__
    else:
        assert "object" not in text


def test_mime_is_multipart_with_headers():
    contact = Contact("zoe@example.org", "Zoë", "Müller", "Acme")
    msg = build_mime(CAMPAIGN, contact, render(CAMPAIGN, contact))
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.strict)
    assert parsed["Subject"] == "Hello Zoë!"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.org"
    assert parsed["Message-ID"] and parsed["Date"]
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_html_only_campaign_gets_a_text_part_made_from_the_html():
    campaign = validate_campaign(
        {k: v for k, v in SEED_CAMPAIGN.items() if k != "body"}
        | {
            "body_html": "<html><head><style>p {color: red}</style></head><body>"
            "<h1>News for {{first_name}}</h1><p>Dear {{first_name}},<br>"
            "see <a href='https://example.com/n?a=1&amp;b=2'>the news</a>.</p>"
            "<ul><li>one</li><li>two &amp; three</li></ul></body></html>"
        }
    )
    contact = Contact("zoe@example.org", "Zoë & <Co>")
    out = render(campaign, contact, unsubscribe_url="https://x.example/v1/unsubscribe/tok")
    assert out.text == (
        "News for Zoë & <Co>\n\nDear Zoë & <Co>,\nsee the news (https://example.com/n?a=1&b=2).\n\n"
        "- one\n- two & three\n\nTo stop receiving these emails, unsubscribe "
        "(https://x.example/v1/unsubscribe/tok).\n"
    )
    msg = email.message_from_bytes(build_mime(campaign, contact, out).as_bytes(), policy=email.policy.strict)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "color: red" not in msg.get_body(("plain",)).get_content()
