"""Preferences, from the unsubscribe link: a contact chooses which of their lists to stay on.

The unsubscribe page (GET /unsubscribe/{token}, never a change) shows `preferences_form` beside its
one-click button; its checkboxes post here:

POST /unsubscribe/{token}/preferences   `lists=a&lists=b` (a form): the contact stays on those of
                                        their lists and leaves the others; leaving every list
                                        unsubscribes them as well. 400 for a bad token; nothing changes.
"""

from __future__ import annotations

from html import escape
from typing import cast
from urllib.parse import parse_qs

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from bulkmail.adapters.contacts import suppress_contact
from bulkmail.adapters.wiring import stores, unsubscribe_key
from bulkmail.clock import now_iso
from bulkmail.errors import InvalidUnsubscribeToken
from bulkmail.http.pages import page
from bulkmail.http.request import ApiError, raw_body
from bulkmail.models import ContactStatus
from bulkmail.unsubscribe import verify_token

logger = Logger(child=True)
router = Router()

MAX_FORM_BYTES = 16 * 1024


def preferences_form(lists: list[str], token: str) -> str:
    """The checkboxes of a contact's lists, for the unsubscribe page ("" when they are on none)."""
    if not lists:
        return ""
    boxes = "".join(
        f'<p><label><input type="checkbox" name="lists" value="{escape(name)}" checked> {escape(name)}</label></p>'
        for name in lists
    )
    return (
        f'<h2>Or choose your lists</h2><form method="post" action="{escape(token)}/preferences">{boxes}'
        '<input type="hidden" name="preferences" value="save"><button type="submit">Save my choice</button></form>'
    )


def contact_lists(email: str) -> list[str]:
    item = stores().contacts.get_item(email)
    return list((item or {}).get("lists") or [])


@router.post("/unsubscribe/<token>/preferences")
def save_preferences(token: str) -> Response[str]:
    try:
        campaign_id, email = verify_token(unsubscribe_key(), token)
    except InvalidUnsubscribeToken as exc:
        logger.info("rejected a preferences request", extra={"reason": str(exc)})
        return page(400, "This link is not valid", "<p>Please use the link from the latest email, unchanged.</p>")
    event = cast(APIGatewayProxyEvent, router.current_event)
    try:
        fields = parse_qs(raw_body(event, MAX_FORM_BYTES), keep_blank_values=True)
    except ApiError as exc:
        return page(exc.status, "Nothing was changed", f"<p>{escape(exc.errors[0]['message'])}</p>")
    if fields.get("preferences") != ["save"]:
        return page(400, "Nothing was changed", "<p>The request did not say which lists to keep.</p>")
    now = now_iso()
    current = contact_lists(email)
    kept = [name for name in current if name in fields.get("lists", [])]
    left = [name for name in current if name not in kept]
    if left and stores().contacts.update(email, {"lists": kept}, now) is None:
        return page(404, "Nothing was changed", "<p>This address is not on any list any more.</p>")
    if not kept:  # on no list: on nothing at all
        suppress_contact(
            stores().contacts,
            email,
            ContactStatus.UNSUBSCRIBED.value,
            now,
            {"reason": "left every list (preferences)", "campaign_id": campaign_id},
        )
        logger.info("preferences: left every list", extra={"campaign_id": campaign_id, "left": len(left)})
        return page(
            200, "You are unsubscribed", "<p>You left every list; you will not receive these emails any more.</p>"
        )
    logger.info("preferences saved", extra={"campaign_id": campaign_id, "kept": len(kept), "left": len(left)})
    listed = ", ".join(escape(name) for name in kept)
    return page(200, "Your choice is saved", f"<p>You stay on: {listed}.</p>")
