"""Every email of a demo run, parsed with Python's `email` package under the strict policy.

Message-ID, Date, From, To, Subject (RFC 2047 for non-ASCII names), List-Unsubscribe and
List-Unsubscribe-Post; raw headers are 7-bit and within RFC 5322's line limit.
"""

import email
import email.policy
import json
import re
from email.headerregistry import Address
from email.utils import parsedate_to_datetime

import pytest

from bulkmail.models import Contact
from bulkmail.rendering import build_mime, render
from bulkmail.validation import validate_campaign
from bulkmail_local.runtime.stack import LOCAL_PUBLIC_URL, PROJECT_ROOT
from tests.conftest import SEED_CAMPAIGN

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("message_hygiene")

TOKEN = re.compile(r"^1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from bulkmail_local.demo import run_demo

    outbox = tmp_path_factory.mktemp("hygiene") / "outbox"
    result = run_demo(outbox=outbox)
    assert result.campaign["status"] == "completed"
    files = sorted(result.outbox.glob("*.eml"))
    assert len(files) == result.campaign["sent_count"] >= 200
    return result, files


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]


def test_every_eml_parses_strictly_with_the_required_headers(demo):
    _result, files = demo
    contacts = {c["email"]: c for c in json.loads((PROJECT_ROOT / "events" / "contacts.json").read_text())["contacts"]}
    campaign = json.loads((PROJECT_ROOT / "events" / "campaign.json").read_text())
    message_ids = set()
    non_ascii_subjects = 0
    for path in files:
        raw = path.read_bytes()
        head = header_block(raw)
        assert head.isascii(), f"{path.name}: raw headers must be 7-bit (RFC 2047 for the rest)"
        assert max(len(line) for line in head.splitlines()) <= 998, path.name

        msg = email.message_from_bytes(raw, policy=email.policy.strict)
        for _name, value in msg.items():  # parses every header: the strict policy raises on any defect
            str(value)
        for part in msg.walk():
            if not part.is_multipart():
                part.get_content()

        for required in (
            "Message-ID",
            "Date",
            "From",
            "To",
            "Subject",
            "MIME-Version",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ):
            assert len(msg.get_all(required) or []) == 1, f"{path.name}: exactly one {required}"

        assert re.fullmatch(r"<[^<>@\s]+@example\.com>", msg["Message-ID"]), msg["Message-ID"]
        message_ids.add(msg["Message-ID"])
        assert parsedate_to_datetime(msg["Date"]).utcoffset() is not None

        (sender,) = msg["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (campaign["from_name"], campaign["from_email"])
        (rcpt,) = msg["To"].addresses
        contact = contacts[rcpt.addr_spec]
        full_name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
        assert rcpt.display_name == full_name
        assert msg["Subject"] == f"Hello {contact.get('first_name', '')}!"
        if not msg["Subject"].isascii():
            non_ascii_subjects += 1
            assert b"Subject: " in head and b"=?utf-8?" in head.split(b"Subject: ", 1)[1].split(b"\r\n")[0]

        url = str(msg["List-Unsubscribe"]).strip("<>")
        assert url.startswith(f"{LOCAL_PUBLIC_URL}/unsubscribe/") and TOKEN.match(url.rsplit("/", 1)[1])
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert url in msg.get_body(("plain",)).get_content()
        assert f'href="{url}"' in msg.get_body(("html",)).get_content()
    assert len(message_ids) == len(files), "Message-IDs must be unique"
    assert non_ascii_subjects >= 3, "the sample has Zoë, José, Björn…: their subjects must be RFC 2047-encoded"


def test_every_recipient_has_its_own_unsubscribe_link(demo):
    _result, files = demo
    links = {
        str(email.message_from_bytes(p.read_bytes(), policy=email.policy.strict)["List-Unsubscribe"]) for p in files
    }
    assert len(links) == len(files)


@pytest.mark.parametrize("reply_to", [None, "replies@example.com"])
def test_reply_to_is_optional(reply_to):
    campaign = validate_campaign({**SEED_CAMPAIGN, **({"reply_to": reply_to} if reply_to else {})})
    contact = Contact("jose@example.org", "José", "Müller")
    raw = build_mime(campaign, contact, render(campaign, contact, "https://x.example/v1/unsubscribe/t")).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.strict)
    if reply_to:
        assert msg["Reply-To"].addresses == (Address(addr_spec=reply_to),)
    else:
        assert msg["Reply-To"] is None
    assert msg["To"].addresses[0].display_name == "José Müller"
    assert b"=?utf-8?" in header_block(raw)


def test_a_one_line_ascii_html_body_goes_out_with_no_line_over_998_characters(harness):
    """Minified HTML as editors export it: 3,500 ASCII characters on one line. Sent 7-bit, SES (and
    the runtime) would refuse it; quoted-printable keeps every line short."""
    from tests.conftest import people

    cells = "".join(f'<td class="c{i}">cell {i}</td>' for i in range(120))
    body_html = f"<html><body><table><tr>{cells}</tr></table></body></html>"
    body_html = body_html.replace("<table>", "<!--" + "-" * (3500 - len(body_html) - 7) + "--><table>")
    assert len(body_html) == 3500 and body_html.isascii() and "\n" not in body_html
    harness.add_contacts(people(1))
    campaign = validate_campaign({k: v for k, v in SEED_CAMPAIGN.items() if k != "body"} | {"body_html": body_html})
    harness.campaigns.create({**campaign, "status": "queued", "total_contacts": 1, "max_send_rate": 14})
    harness.enqueue(campaign["campaign_id"], "p0-0", ["person0@example.org"])
    harness.drain()
    (row,) = harness.ledger.deliveries_for(campaign["campaign_id"])
    assert row["status"] == "sent", row
    (path,) = (harness.outbox / campaign["campaign_id"]).glob("*.eml")
    raw = path.read_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.strict)
    assert body_html[:3400] in msg.get_body(("html",)).get_content()
