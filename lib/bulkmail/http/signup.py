"""The public signup routes (no auth; on the public API, throttled by its stage):

POST /subscribe                     JSON or an HTML form post: a pending contact, a confirmation email.
                                    JSON gets JSON (202; 400/415/429 naming the field), a form gets a page.
GET  /subscribe/form/{list}         the embeddable signup form of a list (a page; iframe it or copy its form).
GET  /subscribe/confirm/{token}     the confirmation page: a button; never changes anything.
POST /subscribe/confirm/{token}     the button: the contact is subscribed to the list, consent recorded.
"""

from __future__ import annotations

from html import escape
from typing import Any, cast
from urllib.parse import parse_qs

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from bulkmail.adapters.wiring import signup_wiring, transport_for, unsubscribe_key
from bulkmail.clock import SYSTEM_CLOCK
from bulkmail.errors import InvalidSignupToken, SendError, SignupRateLimited
from bulkmail.http.pages import page
from bulkmail.http.request import ApiError, error_response, json_body, json_response, raw_body
from bulkmail.signup import LIST_ID_CHARS, confirm, default_consent_text, parse_request, read_token, subscribe

logger = Logger(child=True)
router = Router()

MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def _event() -> APIGatewayProxyEvent:
    return cast(APIGatewayProxyEvent, router.current_event)  # the public API is a REST API


def _client_ip() -> str:
    return str(_event().request_context.identity.source_ip or "")


def _public_url() -> str:
    """The public API's base URL: configured (locally), else the one this request came to (the function
    cannot name its own API in the template: the API names the function)."""
    configured = signup_wiring().public_url
    if configured:
        return configured
    context = _event().request_context
    return f"https://{context.domain_name}/{context.stage}"


def _is_form() -> bool:
    content_type = (router.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    return content_type == FORM_TYPE


def _document() -> dict[str, Any]:
    """The request's fields: a JSON object, or an HTML form's fields (the last value of each)."""
    event = _event()
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return json_body(event, MAX_FORM_BYTES)
    if content_type == FORM_TYPE:
        fields = parse_qs(raw_body(event, MAX_FORM_BYTES), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}
    raise ApiError(415, "Content-Type", f"send application/json or {FORM_TYPE}, not {content_type or 'nothing'}")


def _errors_page(status: int, errors: list[dict[str, str]], headers: dict[str, str] | None = None) -> Response[str]:
    items = "".join(f"<li>{escape(e['field'])}: {escape(e['message'])}</li>" for e in errors)
    return page(
        status,
        "Your signup was not accepted",
        f"<ul>{items}</ul><p>Go back, correct it and send it again.</p>",
        headers,
    )


@router.post("/subscribe")
def post_subscribe() -> Response[str]:
    as_form = _is_form()
    try:
        return _subscribe(as_form)
    except ApiError as exc:
        return _errors_page(exc.status, exc.errors) if as_form else error_response(exc.status, exc.errors)
    except SignupRateLimited as exc:
        errors = [{"field": exc.field, "message": str(exc)}]
        headers = {"Retry-After": str(exc.retry_after)}
        logger.info("signup rate-limited", extra={"limited": exc.field})
        return _errors_page(429, errors, headers) if as_form else error_response(429, errors, headers)


def _subscribe(as_form: bool) -> Response[str]:
    wiring = signup_wiring()
    event = router.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    request, problems = parse_request(
        _document(),
        ip=_client_ip(),
        default_source="form" if as_form else "api",
        now=SYSTEM_CLOCK.now(),
        headers=headers,
    )
    if request is None:
        raise ApiError(400, "", "", errors=problems)
    if not wiring.store.list_exists(request.list_id):
        raise ApiError(400, "list", f"there is no list {request.list_id!r}")
    try:
        subscribe(
            request,
            signups=wiring.store,
            limiter=wiring.limiter,
            transport=transport_for({"campaign_id": "signup-confirmation"}),
            key=unsubscribe_key(),
            public_url=_public_url(),
            from_address=wiring.from_address,
            limits=wiring.limits,
        )
    except SendError as exc:
        logger.warning("signup confirmation not sent", extra={"list": request.list_id, "error": str(exc)})
        raise ApiError(503, "email", "the confirmation email could not be sent; try again later") from None
    logger.info("signup requested", extra={"list": request.list_id, "source": request.consent["source"]})
    message = f"Check your inbox: we sent a link to {request.email} to confirm the subscription to {request.list_id}."
    if as_form:
        return page(202, "Check your inbox", f"<p>{escape(message)}</p>")
    return json_response(
        202, {"status": "pending", "email": request.email, "list": request.list_id, "message": message}
    )


@router.get("/subscribe/form/<list_id>")
def signup_form(list_id: str) -> Response[str]:
    wiring = signup_wiring()
    if len(list_id) > LIST_ID_CHARS or not wiring.store.list_exists(list_id):
        return page(404, "No such list", "<p>This signup form is for a list that does not exist.</p>")
    headers = {  # a form for other sites to embed (iframe): it may be framed, and posts to this API only
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        f"form-action {_public_url()}/subscribe"
    }
    return page(200, f"Subscribe to {list_id}", embed_form(_public_url(), list_id), headers)


def embed_form(public_url: str, list_id: str) -> str:
    """The HTML form a site pastes into its page to sign people up to `list_id`."""
    url, lid = escape(f"{public_url.rstrip('/')}/subscribe"), escape(list_id)
    return (
        f'<form method="post" action="{url}" accept-charset="utf-8" data-bulkmail-list="{lid}">'
        f'<input type="hidden" name="list" value="{lid}">'
        '<p><label>Email <input type="email" name="email" required maxlength="254" autocomplete="email"></label></p>'
        '<p><label>First name <input type="text" name="first_name" maxlength="100" autocomplete="given-name">'
        "</label></p>"
        '<p><label><input type="checkbox" name="consent" value="true" required> '
        f"{escape(default_consent_text(list_id))}</label></p>"
        '<p><button type="submit">Subscribe</button></p></form>'
    )


@router.get("/subscribe/confirm/<token>")
def confirmation_page(token: str) -> Response[str]:
    try:
        list_id, email, _ = read_token(unsubscribe_key(), token, SYSTEM_CLOCK.now())
    except InvalidSignupToken as exc:
        return _bad_link(str(exc))
    return page(
        200,
        "Confirm your subscription",
        f"<p>Send the <strong>{escape(list_id)}</strong> emails to <strong>{escape(email)}</strong>?</p>"
        '<form method="post"><input type="hidden" name="confirm" value="yes">'
        '<button type="submit">Yes, subscribe me</button></form>',
    )


@router.post("/subscribe/confirm/<token>")
def confirm_subscription(token: str) -> Response[str]:
    wiring = signup_wiring()
    try:
        list_id, _email, outcome = confirm(token, key=unsubscribe_key(), signups=wiring.store, ip=_client_ip())
    except InvalidSignupToken as exc:
        logger.info("rejected a signup confirmation", extra={"reason": str(exc)})
        return _bad_link(str(exc))
    logger.info("signup confirmation", extra={"list": list_id, "outcome": outcome})
    if outcome == "superseded":
        return page(
            409,
            "This link was replaced",
            "<p>A newer confirmation email was sent for this address, or the address was removed. "
            "Use the link in the latest email, or sign up again.</p>",
        )
    return page(200, "You are subscribed", f"<p>Thank you: you will receive the {escape(list_id)} emails.</p>")


def _bad_link(reason: str) -> Response[str]:
    return page(
        400,
        "This confirmation link is not valid",
        f"<p>{escape(reason[:1].upper() + reason[1:])}. Please use the link from the latest email, unchanged, "
        "or sign up again.</p>",
    )
