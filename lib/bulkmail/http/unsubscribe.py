"""The unsubscribe routes behind the link in every email (RFC 8058 one-click unsubscribe), on the public API.

GET  /unsubscribe/{token}  a confirmation page with a button; never changes anything (mail scanners
                           and link previews fetch links).
POST /unsubscribe/{token}  body `List-Unsubscribe=One-Click` (what mailbox providers and the page's
                           button send): the contact is unsubscribed; 200, no redirect.
A malformed, forged or tampered token gets 400 and changes nothing.
"""

from __future__ import annotations

from html import escape

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from bulkmail import audience
from bulkmail.adapters.events import publish_contact_event
from bulkmail.adapters.wiring import engagement_store, stores, unsubscribe_key
from bulkmail.clock import now_iso
from bulkmail.errors import InvalidUnsubscribeToken
from bulkmail.feedback import unsubscribed
from bulkmail.http.pages import page
from bulkmail.http.preferences import contact_lists, preferences_form
from bulkmail.models import ContactStatus
from bulkmail.tracking import contact_events
from bulkmail.unsubscribe import is_one_click_request, verify_token

logger = Logger(child=True)
router = Router()


def _bad_link() -> Response[str]:
    return page(
        400,
        "This unsubscribe link is not valid",
        "<p>Please use the link from the latest email you received, unchanged.</p>",
    )


@router.get("/unsubscribe/<token>")
def confirmationpage(token: str) -> Response[str]:
    try:
        _campaign_id, email = verify_token(unsubscribe_key(), token)
    except InvalidUnsubscribeToken:
        return _bad_link()
    return page(
        200,
        "Unsubscribe?",
        f"<p>Stop sending emails to <strong>{escape(email)}</strong>?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>' + preferences_form(contact_lists(email), token),
    )


@router.post("/unsubscribe/<token>")
def one_click_unsubscribe(token: str) -> Response[str]:
    try:
        campaign_id, email = verify_token(unsubscribe_key(), token)
    except InvalidUnsubscribeToken as exc:
        logger.info("rejected an unsubscribe request", extra={"reason": str(exc)})
        return _bad_link()
    event = router.current_event
    if not is_one_click_request(event.headers.get("Content-Type") or "", event.decoded_body or ""):
        return page(400, "Nothing was changed", "<p>The request did not ask to unsubscribe.</p>")
    # ---- audience (issue 15): the campaign's unsubscribe_scope says: its lists, or all ----
    status = audience.one_click_unsubscribe(stores().contacts, stores().campaigns, campaign_id, email, now_iso())
    # ---- end audience ----
    # ---- engagement (issue 16): counted in the campaign's report, once per recipient ----
    if status in ("left-lists", ContactStatus.UNSUBSCRIBED.value):
        at = now_iso()
        counted = engagement_store().record(unsubscribed(campaign_id, email, at))
        settings = stores().settings
        if counted.counted and contact_events(settings):
            publish_contact_event(settings.event_bus_name, "unsubscribed", campaign_id, email, at, scope=status)
    # ---- end engagement ----
    logger.info("unsubscribe request", extra={"campaign_id": campaign_id, "contact_status": status})
    return page(200, "You are unsubscribed", "<p>You will not receive these emails any more.</p>")
