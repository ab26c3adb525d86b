import json
from datetime import UTC, datetime, timedelta

import pytest

from bulkmail.errors import CampaignInvalid
from bulkmail.validation import load_schema, validate_campaign
from tests.conftest import SEED_CAMPAIGN


def problems(document) -> dict[str, str]:
    with pytest.raises(CampaignInvalid) as caught:
        validate_campaign(document)
    found: dict[str, str] = {}
    for e in caught.value.errors:
        found[e["field"]] = "; ".join(filter(None, (found.get(e["field"]), e["message"])))
    return found


def test_seed_campaign_is_valid_and_normalised():
    campaign = validate_campaign(dict(SEED_CAMPAIGN))
    assert campaign["campaign_id"].startswith("campaign_")
    assert campaign["email_service"] == "ses" and campaign["smtp_port"] == 587
    assert campaign["created_at"]


def test_missing_fields_are_each_named():
    found = problems({"campaign_name": "x"})
    assert found == {"subject": "is required", "body": "is required (or body_html)", "from_email": "is required"}


def test_body_or_body_html_is_enough_but_an_empty_html_alone_is_not():
    html_only = {k: v for k, v in SEED_CAMPAIGN.items() if k != "body"}
    assert validate_campaign(html_only)["body_html"] == SEED_CAMPAIGN["body_html"]
    text_only = {k: v for k, v in SEED_CAMPAIGN.items() if k != "body_html"}
    assert "body_html" not in validate_campaign(text_only)
    assert problems({**html_only, "body_html": ""}) == {"body": "is required (or body_html)"}
    assert "unknown placeholder" in problems({**html_only, "body_html": "<p>{{frist_name}}</p>"})["body_html"]


def test_not_an_object():
    assert problems(["a list"]) == {"$": "the campaign must be a JSON object"}


def test_wrong_type_names_field_and_type():
    assert problems({**SEED_CAMPAIGN, "smtp_port": "25"})["smtp_port"] == "must be of type integer"


def test_cr_lf_in_subject_and_from_are_rejected():
    found = problems({**SEED_CAMPAIGN, "subject": "Hi\r\nBcc: victim@example.org", "from_name": "a\nb"})
    assert found["subject"] == "must not contain line breaks or control characters"
    assert found["from_name"] == "must not contain line breaks or control characters"


def test_invalid_from_address():
    assert "not a valid email address" in problems({**SEED_CAMPAIGN, "from_email": "noreply@"})["from_email"]


def test_unknown_placeholder_is_caught_at_validation():
    found = problems({**SEED_CAMPAIGN, "body": "Dear {{frist_name}}"})
    assert found["body"].startswith("unknown placeholder {{frist_name}}")


def test_template_syntax_error_names_the_line():
    assert "syntax error on line 2" in problems({**SEED_CAMPAIGN, "body": "ok\n{{ first_name "})["body"]


def test_unknown_field_is_not_silently_dropped():
    assert problems({**SEED_CAMPAIGN, "subjct": "typo"}) == {"subjct": "is not a known field"}


def test_unknown_email_service():
    assert (
        problems({**SEED_CAMPAIGN, "email_service": "pigeon"})["email_service"]
        == "must be one of 'ses', 'smtp', not 'pigeon'"
    )


def test_smtp_without_secret_gives_the_seed_message():
    found = problems({**SEED_CAMPAIGN, "email_service": "smtp", "smtp_server": "mail.example.com"})
    assert found["aws_secret_name"].startswith("No AWS secret name configured in campaign")


def test_send_at_in_the_past_and_without_offset():
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert "is in the past" in problems({**SEED_CAMPAIGN, "send_at": past})["send_at"]


def test_oversize_body():
    found = problems({**SEED_CAMPAIGN, "body": "x" * 140_000, "body_html": "y" * 140_000})
    assert "the limit is 250000" in found["body"]


def test_custom_attributes_are_known_placeholders():
    validate_campaign({**SEED_CAMPAIGN, "body": "Your plan: {{ attributes.plan | default('free') }}"})


@pytest.mark.parametrize(
    "field, value",
    [
        ("from_email", "noreply@example.com\n"),
        ("from_name", "Team\n"),
        ("reply_to", "help@example.com\n"),
        ("subject", "Hello\n"),
        ("campaign_id", "spring-sale\n"),
        ("aws_region", "eu-west-1\n"),
        ("list", "vip\n"),
    ],
)
def test_a_trailing_newline_is_refused_everywhere(field, value):
    """Python's `$` matches before a final newline: no pattern may let one through to a header or a name."""
    assert field in problems({**SEED_CAMPAIGN, field: value})


@pytest.mark.parametrize(
    "address", ["üser@example.org", "a..b@example.org", ".a@example.org", "a@example", "a b@example.org"]
)
def test_addresses_ses_cannot_send_to_are_refused(address):
    assert "not a valid email address" in problems({**SEED_CAMPAIGN, "from_email": address})["from_email"]


def test_send_at_in_any_rfc3339_spelling_is_understood_and_a_bad_one_named():
    assert validate_campaign({**SEED_CAMPAIGN, "send_at": "2030-01-01t00:00:00z"})["send_at"]
    assert "send_at" in problems({**SEED_CAMPAIGN, "send_at": "2030-01-01T23:59:60Z"})


def test_resend_of_is_not_a_client_field():
    assert "not by clients" in problems({**SEED_CAMPAIGN, "resend_of": "spring"})["resend_of"]
    assert validate_campaign({**SEED_CAMPAIGN, "resend_of": "spring"}, trusted=True)["resend_of"] == "spring"


def test_the_workflow_state_is_counted_in_utf8_bytes_of_what_is_sent():
    """Counted on the JSON sent to Step Functions, in UTF-8: non-ASCII text is not inflated by escapes
    (a 216 KB French newsletter fits), and what JSON escapes (quotes, newlines) is counted as sent."""
    from bulkmail.errors import CampaignTooLarge
    from bulkmail.models import STATE_PAYLOAD_BYTES, state_json

    french = "Élégant café à côté, où l'été dure. " * 5_200  # 216,000 bytes of UTF-8
    newsletter = {**SEED_CAMPAIGN, "body": french[:130_000], "body_html": french[:55_000]}
    assert 210_000 < len((newsletter["body"] + newsletter["body_html"]).encode()) < 250_000
    assert len(json.dumps(newsletter).encode()) > STATE_PAYLOAD_BYTES  # as ASCII escapes it would not fit
    campaign = validate_campaign(newsletter)
    assert len(state_json({"campaign": campaign}).encode()) <= STATE_PAYLOAD_BYTES
    quoted = {**SEED_CAMPAIGN, "body": "\n" * 120_000, "body_html": '<p class="x">' * 9_000}
    assert sum(len(quoted[f].encode()) for f in ("subject", "body", "body_html")) < 250_000
    with pytest.raises(CampaignTooLarge) as caught:
        validate_campaign(quoted)
    assert caught.value.errors[0]["field"] == "body" and "Step Functions" in caught.value.errors[0]["message"]


@pytest.mark.parametrize("rate", [0, 0.001, 100_001])
def test_a_send_rate_outside_what_the_worker_paces_is_refused(rate):
    with pytest.raises(CampaignInvalid) as caught:
        validate_campaign({**SEED_CAMPAIGN, "max_send_rate": rate})
    assert caught.value.errors[0]["field"] == "max_send_rate"


def test_the_schemas_send_rate_bounds_are_the_pacers():
    from bulkmail.settings import MAX_SEND_RATE, MIN_SEND_RATE

    rate = load_schema()["properties"]["max_send_rate"]
    assert (rate["minimum"], rate["maximum"]) == (MIN_SEND_RATE, MAX_SEND_RATE)
