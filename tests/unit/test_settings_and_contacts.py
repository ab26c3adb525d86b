import pytest

from bulkmail.contact_import import normalise_contacts
from bulkmail.errors import ConfigurationError
from bulkmail.settings import Settings

BASE = {
    "CAMPAIGNS_TABLE": "c",
    "CONTACTS_TABLE": "k",
    "DELIVERIES_TABLE": "d",
    "BATCHES_TABLE": "b",
    "SEND_QUEUE_URL": "q",
    "LEASE_SECONDS": "180",
}


def test_missing_environment_variable_is_named():
    with pytest.raises(ConfigurationError, match="SEND_QUEUE_URL is required"):
        Settings.from_env({k: v for k, v in BASE.items() if k != "SEND_QUEUE_URL"})


def test_malformed_number_is_named():
    with pytest.raises(ConfigurationError, match="POLL_SECONDS must be a int"):
        Settings.from_env({**BASE, "POLL_SECONDS": "soon"})


def test_message_size_is_bounded_by_the_transaction_limit():
    with pytest.raises(ConfigurationError, match="RECIPIENTS_PER_MESSAGE"):
        Settings.from_env({**BASE, "RECIPIENTS_PER_MESSAGE": "99"})


def test_contacts_are_normalised_and_bad_ones_rejected_with_reasons():
    items, rejected = normalise_contacts(
        [
            {"email": "Ada@Example.org", "first_name": "Ada", "lists": ["news"]},
            {"email": "not-an-address"},
            {"first_name": "no email"},
            {"email": "x@example.org", "attributes": {"bad key": 1}},
            "just a string",
        ]
    )
    assert [i["email"] for i in items] == ["ada@example.org"]
    assert items[0]["status"] == "subscribed"
    assert [(r["index"], r["email"]) for r in rejected] == [
        (1, "not-an-address"),
        (2, None),
        (3, "x@example.org"),
        (4, None),
    ]
    assert "is not a valid email address" in rejected[0]["error"]
    assert rejected[1]["error"] == "email: is required"
