"""A readable text/plain alternative made from an HTML body (stdlib html.parser, no dependencies).

Blocks become paragraphs, <br> a line break, list items "- item", links "text (url)"; scripts,
styles and the head are dropped; whitespace is collapsed the way a browser would.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "aside",
        "nav",
        "table",
        "tr",
        "ul",
        "ol",
        "dl",
        "blockquote",
        "pre",
        "form",
        "fieldset",
        "address",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
    }
)
_HIDDEN = frozenset({"head", "script", "style", "title", "template", "noscript"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, position in out) of the open <a> elements

    def _break(self, lines: int) -> None:
        """End the current line so that `lines` line breaks (at least) separate it from what follows."""
        tail = "".join(self.out[-4:]).rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n"))
        if self.out and have < lines:
            self.out.append("\n" * (lines - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self._break(1)
            self.out.append("- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCKS:
            self._break(2)
            if tag == "pre":
                self.pre += 1
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS or tag == "li":
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._break(2 if tag in _BLOCKS else 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and not href.startswith(("#", "javascript:")) and href != label:
                self.out.append(f" ({href[7:] if href.startswith('mailto:') else href})")

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "".join(parser.out)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
