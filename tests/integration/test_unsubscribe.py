"""One-click unsubscribe end to end: the link in a sent email, the real UnsubscribeFunction behind an
API Gateway proxy event, the contact's status, and the next campaign skipping the contact."""

import pytest

from bulkmail_local.runtime.stack import LOCAL_PUBLIC_URL
from tests.conftest import people


def api_event(
    method: str, token: str, body: str | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> dict:
    path = f"/unsubscribe/{token}"
    headers = {"Content-Type": content_type} if body is not None else {}
    return {
        "resource": "/unsubscribe/{token}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"token": token},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/unsubscribe/{token}",
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": "test",
            "accountId": "123456789012",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def header(response: dict, name: str) -> str | None:
    values = (response.get("multiValueHeaders") or {}).get(name) or []
    return values[0] if values else (response.get("headers") or {}).get(name)


def unsubscribe_fn(h):
    return next(f for f in h.rt.functions.values() if f.logical_id == "UnsubscribeFunction")


def status_of(h, email):
    return h.contacts.get(email).status


@pytest.fixture
def sent(harness):
    """Two contacts, one campaign sent to both; returns (harness, campaign, token for person0)."""
    h = harness
    h.add_contacts(people(2))
    c = h.add_campaign(total=2)
    h.enqueue(c["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
    h.drain()
    msg = next(m for m in h.sent_messages(c["campaign_id"]) if m["To"].addresses[0].addr_spec == "person0@example.org")
    url = str(msg["List-Unsubscribe"]).strip("<>")
    assert url.startswith(f"{LOCAL_PUBLIC_URL}/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in msg.get_body(("plain",)).get_content()
    assert f'href="{url}"' in msg.get_body(("html",)).get_content()
    return h, c, url.rsplit("/", 1)[1]


def test_get_shows_a_confirmation_form_and_changes_nothing(sent):
    h, _c, token = sent
    response = unsubscribe_fn(h).invoke(api_event("GET", token))
    assert response["statusCode"] == 200
    assert header(response, "Content-Type").startswith("text/html")
    assert header(response, "Cache-Control") == "no-store"
    assert '<form method="post">' in response["body"]
    assert 'name="List-Unsubscribe" value="One-Click"' in response["body"]
    assert "person0@example.org" in response["body"]
    assert status_of(h, "person0@example.org") == "subscribed"


def test_one_click_post_unsubscribes_without_redirect_and_next_campaign_skips(sent):
    h, _c, token = sent
    fn = unsubscribe_fn(h)
    response = fn.invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))
    assert response["statusCode"] == 200
    assert header(response, "Location") is None
    assert status_of(h, "person0@example.org") == "unsubscribed"
    assert status_of(h, "person1@example.org") == "subscribed"
    assert fn.invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))["statusCode"] == 200  # idempotent

    # The fan-out no longer lists the contact, and the worker skips it if it was queued anyway.
    emails, _ = h.contacts.recipients_page(None, None, 100)
    assert sorted(emails) == ["person1@example.org"]
    nxt = h.add_campaign(total=2, campaign_name="Next")
    h.enqueue(nxt["campaign_id"], "p0-0", ["person0@example.org", "person1@example.org"])
    h.drain()
    assert [m["To"].addresses[0].addr_spec for m in h.sent_messages(nxt["campaign_id"])] == ["person1@example.org"]
    rows = {r["email"]: r for r in h.ledger.deliveries_for(nxt["campaign_id"])}
    assert (rows["person0@example.org"]["status"], rows["person0@example.org"]["reason"]) == ("skipped", "unsubscribed")


def test_multipart_form_one_click_is_accepted(sent):
    h, _c, token = sent
    body = '--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--XyZ--\r\n'
    response = unsubscribe_fn(h).invoke(api_event("POST", token, body, "multipart/form-data; boundary=XyZ"))
    assert response["statusCode"] == 200
    assert status_of(h, "person0@example.org") == "unsubscribed"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0] + "." + "cGVyc29uMUBleGFtcGxlLm9yZw" + "." + t.split(".")[2],
        lambda t: "not-a-token",
    ],
)
def test_tampered_token_gets_400_and_changes_nothing(sent, tamper):
    h, _c, token = sent
    fn = unsubscribe_fn(h)
    for method in ("GET", "POST"):
        response = fn.invoke(
            api_event(method, tamper(token), "List-Unsubscribe=One-Click" if method == "POST" else None)
        )
        assert response["statusCode"] == 400
    assert status_of(h, "person0@example.org") == "subscribed"
    assert status_of(h, "person1@example.org") == "subscribed"


def test_post_without_the_one_click_body_changes_nothing(sent):
    h, _c, token = sent
    response = unsubscribe_fn(h).invoke(api_event("POST", token, "something=else"))
    assert response["statusCode"] == 400
    assert status_of(h, "person0@example.org") == "subscribed"


def test_bounced_contact_keeps_its_status_when_it_also_unsubscribes(sent):
    h, _c, token = sent
    h.contacts.table.update_item(
        Key={"email": "person0@example.org"},
        UpdateExpression="SET #s = :b",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":b": "bounced"},
    )
    assert unsubscribe_fn(h).invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))["statusCode"] == 200
    assert status_of(h, "person0@example.org") == "bounced"


def test_signing_key_is_never_logged(sent):
    h, _c, token = sent
    unsubscribe_fn(h).invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))
    sm = h.rt.client("secretsmanager")
    key = sm.get_secret_value(SecretId=h.rt.physical["UnsubscribeSigningKey"])["SecretString"]
    assert len(key) == 64
    assert key not in h.rt.log_file.read_text()
