"""Personalisation: a sandboxed, autoescaping Jinja2 and the MIME message it fills.

`{{first_name}}` works as in the seed; a missing value renders empty, and Jinja's own
`{{first_name | default("friend")}}` gives a fallback. Contact values are HTML-escaped in the HTML
part. Templates are compiled once per distinct source text, so an edited campaign compiles anew.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, make_msgid
from functools import lru_cache
from html import escape
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from bulkmail.html_text import html_to_text
from bulkmail.models import Contact

# The names a template may use. Custom contact attributes are reached as {{attributes.plan}}.
TEMPLATE_FIELDS = frozenset(
    {"email", "first_name", "last_name", "company", "attributes", "campaign_name", "unsubscribe_url"}
)

_text_env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
_html_env = SandboxedEnvironment(autoescape=True, keep_trailing_newline=True)
# Used only to find problems at validation time: a typo such as {{frist_name}} is an error there.
_check_env = SandboxedEnvironment(undefined=StrictUndefined)


def template_problems(source: str) -> list[str]:
    """Syntax errors and unknown placeholders in one template, as readable sentences."""
    try:
        ast = _check_env.parse(source)
    except TemplateSyntaxError as exc:
        return [f"template syntax error on line {exc.lineno}: {exc.message}"]
    unknown = sorted(meta.find_undeclared_variables(ast) - TEMPLATE_FIELDS)
    if unknown:
        known = ", ".join(sorted(TEMPLATE_FIELDS))
        return [f"unknown placeholder {{{{{name}}}}} (known: {known})" for name in unknown]
    return []


@lru_cache(maxsize=256)
def _compile(source: str, html: bool):
    return (_html_env if html else _text_env).from_string(source)


def template_context(contact: Contact, campaign: dict[str, Any], unsubscribe_url: str = "") -> dict[str, Any]:
    """Values for the templates. Empty values are left out so that `default(...)` applies to them."""
    values = {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "company": contact.company,
        "campaign_name": campaign.get("campaign_name", ""),
        "unsubscribe_url": unsubscribe_url,
    }
    context = {k: v for k, v in values.items() if v}
    context["attributes"] = dict(contact.attributes)
    return context


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _text_footer(text: str, url: str) -> str:
    return f"{text.rstrip()}\n\n--\nTo stop receiving these emails, unsubscribe: {url}\n"


def _html_footer(html: str, url: str) -> str:
    footer = (f'<p style="font-size:12px;color:#666666">To stop receiving these emails, '
              f'<a href="{escape(url)}">unsubscribe</a>.</p>')
    ends = list(_BODY_END.finditer(html))
    if ends:
        at = ends[-1].start()
        return html[:at] + footer + html[at:]
    return html + footer


def render(campaign: dict[str, Any], contact: Contact, unsubscribe_url: str = "",
           unsubscribe_mailto: str = "") -> RenderedEmail:
    """Subject and bodies for one contact; without a text body, the text is made from the HTML one.
    With an unsubscribe URL, a body whose template does not
    show it (`{{unsubscribe_url}}`) gets a footer with the link, so every email has a visible one."""
    context = template_context(contact, campaign, unsubscribe_url)
    # A contact's value must not smuggle a header line into the subject.
    subject = " ".join(_compile(campaign["subject"], False).render(context).splitlines()).strip()
    html = _compile(campaign["body_html"], True).render(context) if campaign.get("body_html") else None
    if html is not None and unsubscribe_url and escape(unsubscribe_url) not in html:
        html = _html_footer(html, unsubscribe_url)
    if campaign.get("body"):
        text = _compile(campaign["body"], False).render(context)
    else:  # only HTML given: the text alternative is made from it (footer link included)
        text = html_to_text(html or "")
    if unsubscribe_url and unsubscribe_url not in text:
        text = _text_footer(text, unsubscribe_url)
    return RenderedEmail(subject=subject, text=text, html=html, unsubscribe_url=unsubscribe_url,
                         unsubscribe_mailto=unsubscribe_mailto)


# The fast, classic email API: building a message with the header-parsing API cost 2.4 ms, this
# 0.5 ms (measured on 500 messages) — a fifth of the send path's CPU on the embedded runtime.
# Header lines are folded only past RFC 5322's hard limit: a List-Unsubscribe URL must not be split.
_WIRE = compat32.clone(linesep="\r\n", max_line_length=998)
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable bodies; 8-bit is not safe on every hop


def _header(value: str) -> str | Header:
    """ASCII stays as it is; anything else is RFC 2047-encoded."""
    return value if value.isascii() else Header(value, "utf-8")


# RFC 5322: at most 998 characters a line before its CRLF (SES refuses longer lines).
MAX_LINE_CHARACTERS = 998


def _text_part(text: str, subtype: str) -> MIMEText:
    """7-bit as it is when it can go so; otherwise quoted-printable, whose lines stay under 77
    characters whatever the content (a minified HTML body is one long ASCII line)."""
    if text.isascii() and max(map(len, text.splitlines()), default=0) <= MAX_LINE_CHARACTERS:
        return MIMEText(text, subtype, "us-ascii", policy=_WIRE)
    return MIMEText(text, subtype, _UTF8, policy=_WIRE)


def build_mime(campaign: dict[str, Any], contact: Contact, rendered: RenderedEmail) -> Message:
    """The RFC 5322 message sent through SES (raw) or SMTP, and written to the local outbox."""
    text = _text_part(rendered.text, "plain")
    if rendered.html is None:
        msg = text
    else:
        msg = MIMEMultipart("alternative", policy=_WIRE)
        msg.attach(text)
        msg.attach(_text_part(rendered.html, "html"))
    msg["From"] = formataddr((campaign.get("from_name", ""), campaign["from_email"]), charset="utf-8")
    full_name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    msg["To"] = formataddr((full_name, contact.email), charset="utf-8")
    if campaign.get("reply_to"):
        msg["Reply-To"] = campaign["reply_to"]
    msg["Subject"] = _header(rendered.subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=campaign["from_email"].rpartition("@")[2])
    msg["X-Bulkmail-Campaign"] = campaign["campaign_id"]
    if rendered.unsubscribe_url:
        # RFC 2369 + RFC 8058: mailbox providers show an unsubscribe button that POSTs to the URL.
        targets = [rendered.unsubscribe_url] + ([rendered.unsubscribe_mailto] if rendered.unsubscribe_mailto else [])
        msg["List-Unsubscribe"] = ", ".join(f"<{t}>" for t in targets)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return msg
