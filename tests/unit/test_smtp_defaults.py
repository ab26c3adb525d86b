"""SMTP goes to the submission port unless the campaign names one: Lambda cannot reach port 25."""

from bulkmail.adapters.smtp import SUBMISSION_PORT, SmtpTransport
from bulkmail.validation import load_schema, validate_campaign
from tests.conftest import SEED_CAMPAIGN


def test_smtp_defaults_to_the_submission_port_587():
    assert SUBMISSION_PORT == 587
    assert load_schema()["properties"]["smtp_port"]["default"] == SUBMISSION_PORT
    campaign = validate_campaign(
        {
            **SEED_CAMPAIGN,
            "email_service": "smtp",
            "smtp_server": "smtp.example.com",
            "aws_secret_name": "bulkmail/smtp-login",
        }
    )
    assert campaign["smtp_port"] == 587
    assert SmtpTransport("smtp.example.com").port == 587
