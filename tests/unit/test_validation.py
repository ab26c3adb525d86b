from datetime import datetime, timedelta, timezone

import pytest

from bulkmail.errors import CampaignInvalid
from bulkmail.validation import validate_campaign
from tests.conftest import SEED_CAMPAIGN


def problems(document) -> dict[str, str]:
    with pytest.raises(CampaignInvalid) as caught:
        validate_campaign(document)
    return {e["field"]: e["message"] for e in caught.value.errors}


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
    assert found["subject"] == "must not contain CR or LF characters"
    assert found["from_name"] == "must not contain CR or LF characters"


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
    assert problems({**SEED_CAMPAIGN, "email_service": "pigeon"})["email_service"] == "must be one of 'ses', 'smtp', not 'pigeon'"


def test_smtp_without_secret_gives_the_seed_message():
    found = problems({**SEED_CAMPAIGN, "email_service": "smtp", "smtp_server": "mail.example.com"})
    assert found["aws_secret_name"].startswith("No AWS secret name configured in campaign")


def test_send_at_in_the_past_and_without_offset():
    past = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    assert "is in the past" in problems({**SEED_CAMPAIGN, "send_at": past})["send_at"]


def test_oversize_body():
    found = problems({**SEED_CAMPAIGN, "body": "x" * 140_000, "body_html": "y" * 140_000})
    assert "the limit is 250000" in found["body"]


def test_custom_attributes_are_known_placeholders():
    validate_campaign({**SEED_CAMPAIGN, "body": "Your plan: {{ attributes.plan | default('free') }}"})
