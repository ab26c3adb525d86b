"""The public routes' HTML pages (unsubscribe, preferences, signup): one shell, one set of headers."""

from __future__ import annotations

from html import escape

from aws_lambda_powertools.event_handler import Response

# Never cached (a link is personal), never framed, posting only back to this API.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}


def page(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> Response[str]:
    """A small HTML page: `title` is text (escaped here); `body` is markup the caller escaped."""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title></head>'
        f'<body style="font-family:sans-serif;max-width:32em;margin:3em auto"><h1>{escape(title)}</h1>{body}'
        "</body></html>"
    )
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=html,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
