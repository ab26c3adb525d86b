"""The SMTP transport against real SMTP servers on loopback (aiosmtpd): STARTTLS, login, one
connection per batch, and replies classified (421/454 throttle, other 4xx transient, 5xx permanent)."""

import email
import email.policy
import json
import ssl

import pytest

from bulkmail.adapters.smtp import SmtpTransport
from bulkmail.errors import PermanentSendError, SendingPaused, Throttled, TransientSendError
from bulkmail.models import Contact
from bulkmail.rendering import build_mime, render
from bulkmail.validation import validate_campaign
from tests.conftest import SEED_CAMPAIGN, people
from tests.smtp_servers import HOST, PASSWORD, USERNAME, Recorder, SmtpServer, free_port, self_signed_certificate

SECRET_NAME = "bulkmail/smtp-login"


@pytest.fixture
def cert(tmp_path):
    return self_signed_certificate(tmp_path)


@pytest.fixture
def trust(cert):
    return ssl.create_default_context(cafile=str(cert[0]))


def message_to(address: str, campaign=None):
    campaign = campaign or validate_campaign({**SEED_CAMPAIGN})
    contact = Contact(address, "Zoë", "Müller")
    return build_mime(campaign, contact, render(campaign, contact))


def transport(server, trust, **kw):
    return SmtpTransport(HOST, server.port, username=USERNAME, password=PASSWORD, tls_context=trust, **kw)


def test_sends_over_starttls_with_login_and_one_connection_for_many_messages(cert, trust):
    with SmtpServer(cert) as server:
        t = transport(server, trust)
        ids = [t.send(message_to(f"p{i}@example.org")) for i in range(3)]
        assert server.recorder.quits == 0
        t.close()
    rec = server.recorder
    assert rec.quits == 1
    assert len(rec.messages) == 3 and t.connections_opened == 1
    assert len(rec.sessions) == 1 and rec.tls_sessions == rec.sessions and rec.logins == [USERNAME]
    mail_from, rcpts, content = rec.messages[0]
    assert (mail_from, rcpts) == ("noreply@example.com", ["p0@example.org"])
    parsed = email.message_from_bytes(content, policy=email.policy.strict)
    assert parsed["Subject"] == "Hello Zoë!" and parsed["Message-ID"] == ids[0]


def test_wrong_password_pauses_instead_of_failing_every_recipient(cert, trust):
    with SmtpServer(cert) as server:
        t = SmtpTransport(HOST, server.port, username=USERNAME, password="wrong", tls_context=trust)
        with pytest.raises(SendingPaused, match="login"):
            t.send(message_to("p0@example.org"))
    assert server.recorder.messages == []


def test_login_is_never_sent_without_tls(cert, trust):
    with SmtpServer(cert, starttls=False) as server:
        t = transport(server, trust)
        with pytest.raises(SendingPaused, match="STARTTLS"):
            t.send(message_to("p0@example.org"))
    assert server.recorder.logins == []


def test_untrusted_certificate_is_not_accepted(cert):
    with SmtpServer(cert) as server:
        t = SmtpTransport(
            HOST, server.port, username=USERNAME, password=PASSWORD, tls_context=ssl.create_default_context()
        )
        with pytest.raises(TransientSendError, match="failed"):
            t.send(message_to("p0@example.org"))
    assert server.recorder.logins == [] and server.recorder.messages == []


@pytest.mark.parametrize(
    "reply, error",
    [
        ("421 4.7.0 Too many messages, slow down", Throttled),
        ("454 4.7.1 Temporary failure, try again later", Throttled),
        ("451 4.3.0 Local error in processing", TransientSendError),
        ("450 4.2.1 Mailbox busy", TransientSendError),
        ("550 5.1.1 No such user", PermanentSendError),
        ("553 5.1.3 Bad destination mailbox address syntax", PermanentSendError),
    ],
)
def test_recipient_replies_are_classified(cert, trust, reply, error):
    with SmtpServer(cert, Recorder(rcpt_reply={"*": reply})) as server:
        t = transport(server, trust)
        with pytest.raises(error) as info:
            t.send(message_to("p0@example.org"))
        t.close()
    assert str(info.value).startswith(f"SMTP {reply[:3]}")
    assert server.recorder.messages == []


def test_421_drops_the_connection_and_the_next_send_reconnects(cert, trust):
    recorder = Recorder(rcpt_reply={"slow@example.org": "421 4.7.0 Try again later"})
    with SmtpServer(cert, recorder) as server:
        t = transport(server, trust)
        with pytest.raises(Throttled):
            t.send(message_to("slow@example.org"))
        t.send(message_to("fine@example.org"))
        t.close()
    assert t.connections_opened == 2
    assert [m[1] for m in recorder.messages] == [["fine@example.org"]]


def test_data_refused_with_454_is_a_throttle(cert, trust):
    with SmtpServer(cert, Recorder(data_reply="454 4.7.0 Temporary rate limit")) as server:
        t = transport(server, trust)
        with pytest.raises(Throttled, match="454"):
            t.send(message_to("p0@example.org"))
        t.close()


def test_a_refused_sender_pauses_instead_of_failing_every_recipient(cert, trust):
    """Issue 11: a configuration error (this relay does not let us send as this sender) is not a
    property of the recipient: the campaign pauses with the reply."""
    with SmtpServer(cert, Recorder(mail_reply="550 5.7.1 Sender address rejected: not owned by user")) as server:
        t = transport(server, trust)
        with pytest.raises(SendingPaused, match="550"):
            t.send(message_to("p0@example.org"))
        t.close()


def test_no_server_listening_is_transient():
    t = SmtpTransport(HOST, free_port(), tls_context=ssl.create_default_context())
    with pytest.raises(TransientSendError, match="connection"):
        t.send(message_to("p0@example.org"))


def test_password_is_not_in_the_transport_repr(cert, trust):
    with SmtpServer(cert) as server:
        assert PASSWORD not in repr(transport(server, trust))


# --- the worker, through wiring.transport_for, with the login from Secrets Manager ---------------


@pytest.fixture
def smtp_campaign(harness, cert, monkeypatch):
    monkeypatch.setenv("SMTP_CA_FILE", str(cert[0]))
    harness.rt.client("secretsmanager").create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({"username": USERNAME, "password": PASSWORD})
    )

    def make(server, total):
        return harness.add_campaign(
            total=total, email_service="smtp", smtp_server=HOST, smtp_port=server.port, aws_secret_name=SECRET_NAME
        )

    return make


def test_worker_sends_a_batch_over_one_smtp_connection(harness, cert, smtp_campaign):
    h = harness
    h.add_contacts(people(4))
    with SmtpServer(cert) as server:
        c = smtp_campaign(server, total=4)
        h.enqueue(c["campaign_id"], "p0-0", [f"person{i}@example.org" for i in range(4)])
        h.drain()
    rec = server.recorder
    assert sorted(m[1][0] for m in rec.messages) == [f"person{i}@example.org" for i in range(4)]
    assert len(rec.sessions) == 1 and rec.logins == [USERNAME]
    assert rec.quits == 1, "the worker closes its connection at the end of the invocation"
    campaign = h.campaigns.get(c["campaign_id"])
    assert (campaign["sent_count"], campaign["failed_count"]) == (4, 0)
    parsed = email.message_from_bytes(rec.messages[0][2], policy=email.policy.strict)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert PASSWORD not in h.rt.log_file.read_text()


def test_worker_on_a_421_server_counts_nothing_and_retries_the_message(harness, cert, smtp_campaign):
    h = harness
    h.add_contacts(people(2))
    with SmtpServer(cert, Recorder(rcpt_reply={"*": "421 4.7.0 Slow down"})) as server:
        c = smtp_campaign(server, total=2)
        h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
        h.drain()
    campaign = h.campaigns.get(c["campaign_id"])
    assert (campaign["sent_count"], campaign["failed_count"], campaign["processed_count"]) == (0, 0, 0)
    assert h.ledger.deliveries_for(c["campaign_id"]) == []
    assert h.queue_depth()["ApproximateNumberOfMessagesNotVisible"] == 1  # back later, with a backoff


def test_worker_records_a_550_as_failed_with_the_reply(harness, cert, smtp_campaign):
    h = harness
    h.add_contacts(people(2))
    with SmtpServer(cert, Recorder(rcpt_reply={"person1@example.org": "550 5.1.1 No such user"})) as server:
        c = smtp_campaign(server, total=2)
        h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
        h.drain()
    rows = {r["email"]: r for r in h.ledger.deliveries_for(c["campaign_id"])}
    assert rows["person0@example.org"]["status"] == "sent"
    assert rows["person1@example.org"]["status"] == "failed"
    assert rows["person1@example.org"]["reason"] == "SMTP 550: 5.1.1 No such user"


def test_worker_pauses_the_campaign_when_the_smtp_login_is_rejected(harness, cert, monkeypatch):
    h = harness
    monkeypatch.setenv("SMTP_CA_FILE", str(cert[0]))
    h.rt.client("secretsmanager").create_secret(
        Name="bulkmail/smtp-wrong", SecretString=json.dumps({"username": USERNAME, "password": "not-it"})
    )
    h.add_contacts(people(2))
    with SmtpServer(cert) as server:
        c = h.add_campaign(
            total=2,
            email_service="smtp",
            smtp_server=HOST,
            smtp_port=server.port,
            aws_secret_name="bulkmail/smtp-wrong",
        )
        h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
        h.drain()
    campaign = h.campaigns.get(c["campaign_id"])
    assert campaign["status"] == "paused" and "login" in campaign["pause_reason"]
    assert (campaign["sent_count"], campaign["failed_count"]) == (0, 0)
    assert server.recorder.messages == []
    assert "not-it" not in h.rt.log_file.read_text()
