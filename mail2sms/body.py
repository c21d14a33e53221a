"""The SMS text of an email: the text/plain part, else the HTML part turned into text.

Quoted replies, signatures and mobile footers are removed (`mail2sms.quotes`) and the
whitespace is normalised. Nothing in the text is interpreted: `{{ … }}` stays as written.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator
from email.message import EmailMessage, Message

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement, PreformattedString

from mail2sms.quotes import CUT, strip_quotes


class BodyError(ValueError):
    """The body cannot be read: broken MIME structure or a bad transfer encoding."""


#: MIME nesting deeper than this is not something a mail client writes.
MAX_DEPTH = 32

# Labels that clients write while sending windows-1252 or UTF-8 anyway.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LATIN1_LABELS = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii"}


def extract_text(msg: EmailMessage | Message) -> str:
    """The SMS text of `msg`; "" when it has no text part. Raises BodyError if unreadable."""
    plain, html = _text_parts(msg)
    if plain:
        text = _part_text(plain[0])
        if text.strip():
            return strip_quotes(text)
    if html:
        return strip_quotes(html_to_text(_part_text(html[0])))
    return ""


def _text_parts(msg: Message) -> tuple[list[Message], list[Message]]:
    """The text/plain and text/html parts in document order, attachments left out."""
    plain: list[Message] = []
    html: list[Message] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BodyError(f"MIME parts nested deeper than {MAX_DEPTH} levels")
        maintype = part.get_content_maintype()
        if maintype == "multipart":
            children = _children(part)
            stack.extend((child, depth + 1) for child in reversed(children))
        elif maintype == "text" and not _is_attachment(part):
            subtype = part.get_content_subtype()
            if subtype == "plain":
                plain.append(part)
            elif subtype == "html":
                html.append(part)
        # message/rfc822 and other types: a forwarded email or a file, not the SMS text
    return plain, html


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    boundary = part.get_param("boundary")
    if not boundary:
        raise BodyError(
            f"malformed MIME: {part.get_content_type()} without a boundary parameter "
            '(expected Content-Type: multipart/...; boundary="...")'
        )
    raise BodyError(f'malformed MIME: the boundary "--{boundary}" never appears in the body')


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).split(";", 1)[0].strip().lower()
    return disposition == "attachment"


def _part_text(part: Message) -> str:
    text = without_controls(decode_bytes(_payload_bytes(part), part.get_content_charset()))
    if part.get_content_type() == "text/plain" and _param(part, "format") == "flowed":
        text = unflow(text, delsp=_param(part, "delsp") == "yes")
    return text


def without_controls(text: str) -> str:
    """`text` without control characters (NUL breaks databases, ESC terminals)."""
    return _CONTROLS.sub(" ", text)


def _param(part: Message, name: str) -> str:
    value = part.get_param(name)
    return value.strip().lower() if isinstance(value, str) else ""


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676)."""
    out: list[str] = []
    pending, pending_depth = "", 0
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw_line) - len(raw_line.lstrip(">"))
        quote, line = raw_line[:depth], raw_line[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if pending and depth != pending_depth:
            out.append(pending)  # a paragraph never flows into another quote depth
            pending = ""
        start = pending or quote + (" " if depth and line else "")
        if line.endswith(" ") and line != "-- ":
            pending, pending_depth = start + (line[:-1] if delsp else line), depth
            continue
        out.append(start + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _payload_bytes(part: Message) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        raw = part.get_payload(decode=False)
        if not isinstance(raw, str):
            return b""
        data = re.sub(r"\s+", "", raw)
        try:
            return base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise BodyError(
                "the text is declared Content-Transfer-Encoding: base64 but is not valid base64"
            ) from None
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, then UTF-8, then windows-1252 (never fails)."""
    for candidate in _charset_candidates(charset):
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("cp1252", errors="replace")


def _charset_candidates(charset: str | None) -> list[str]:
    label = (charset or "").strip().strip("\"'").lower()
    if not label or label in _LATIN1_LABELS:
        # An ASCII or Latin-1 label on 8-bit text usually hides UTF-8 or windows-1252.
        return ["utf-8", "cp1252", "latin-1"]
    try:
        codecs.lookup(label)
    except LookupError:
        return ["utf-8", "cp1252"]
    return [label, "utf-8", "cp1252"]


# --- HTML --------------------------------------------------------------------------------

# Markers in the extracted string, turned into line breaks once whitespace is folded.
_SOFT = "\x01"  # a block starts or ends: a line break unless already at a line start
_HARD = "\x02"  # <br>: always a line break
_PARA = "\x03"  # a paragraph with margins: a blank line
_MARKERS = _SOFT + _HARD + _PARA + CUT

_DROP_TAGS = {"head", "style", "script", "title", "meta", "link", "xml", "template", "noscript"}
_BLOCK_TAGS = {
    "address", "article", "aside", "dd", "div", "dl", "dt", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "pre",
    "section", "table", "tr", "ul", "center", "body", "html",
}  # fmt: skip
_PARA_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"}

# Containers whose content is not the author's new text.
_DROP_CLASSES = {
    "gmail_quote", "gmail_attr", "gmail_signature", "moz-cite-prefix", "moz-signature",
    "yahoo_quoted", "AppleMailSignature",
}  # fmt: skip
_DROP_IDS = {"Signature", "AppleMailSignature", "ms-outlook-mobile-signature"}
# Where Outlook and web mails start the quoted original: everything below goes.
_CUT_IDS = {
    "divRplyFwdMsg",
    "appendonsend",
    "stopSpelling",
    "zwchr",
    "mail-editor-reference-message-container",
}
_BORDER_TOP = re.compile(r"border-top(-style)?\s*:[^;]*solid", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Visible text of `html` with line breaks where a browser would put them.

    Quotes are not removed here but marked for `strip_quotes`: a `>` line where a
    `<blockquote>` was, `CUT` where the quoted original begins.
    """
    html = html.translate(dict.fromkeys(map(ord, _MARKERS)))
    return _fold(_render(BeautifulSoup(html, "html.parser")))


def _render(soup: BeautifulSoup) -> str:
    """The strings of `soup` with block markers, in one pass (no recursion, no mutation)."""
    out: list[str] = []
    stack: list[tuple[Tag, Iterator[PageElement]]] = [(soup, iter(soup.contents))]
    while stack:
        tag, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            out.append(_block_marker(tag))
        elif isinstance(child, NavigableString):
            # Comments (Outlook's <!--[if gte mso 9]>), <![if …]>, doctypes are not text.
            if not isinstance(child, PreformattedString):
                out.append(str(child))
        elif isinstance(child, Tag):
            if _is_cut(child):
                out.append(CUT)
                break
            if child.name == "br":
                out.append(_HARD)
            elif child.name == "blockquote":
                out.append(f"{_HARD}>{_HARD}")
            elif not _is_dropped(child):
                out.append(_block_marker(child))
                stack.append((child, iter(child.contents)))
    return "".join(out)


def _block_marker(tag: Tag) -> str:
    if tag.name in ("td", "th"):
        return " "
    if tag.name in _PARA_TAGS and not _is_word_paragraph(tag):
        return _PARA
    if tag.name in _BLOCK_TAGS or tag.name == "p":
        return _SOFT
    return ""


def _classes(tag: Tag) -> set[str]:
    value = tag.get("class") or []
    return set(value.split() if isinstance(value, str) else value)


def _is_dropped(tag: Tag) -> bool:
    """Markup that is not text (styles, scripts) or not the author's (signatures, quotes)."""
    return (
        tag.name in _DROP_TAGS or bool(_classes(tag) & _DROP_CLASSES) or tag.get("id") in _DROP_IDS
    )


def _is_cut(tag: Tag) -> bool:
    """Where Outlook and web mails start the quoted original."""
    return tag.get("id") in _CUT_IDS or (
        tag.name == "div" and bool(_BORDER_TOP.search(str(tag.get("style") or "")))
    )


def _is_word_paragraph(tag: Tag) -> bool:
    # Outlook's <p class=MsoNormal> has no margins: one line each, blank lines are &nbsp;.
    return any(name.startswith("Mso") for name in _classes(tag))


_RUN = re.compile(f"[ {_SOFT}{_HARD}{_PARA}]*[{_SOFT}{_HARD}{_PARA}][ {_SOFT}{_HARD}{_PARA}]*")


def _fold(text: str) -> str:
    # HTML whitespace is one space; NBSP stays (an Outlook blank line is a lone &nbsp;).
    text = re.sub(r"[ \t\r\n\f\v]+", " ", text)
    return _RUN.sub(_breaks, text)


def _breaks(match: re.Match[str]) -> str:
    """Line breaks for a run of block markers, as a browser lays them out."""
    newlines = 0
    at_line_start = match.start() == 0
    for char in match.group():
        if char == _HARD:
            newlines += 1
            at_line_start = True
        elif char == _SOFT and not at_line_start:
            newlines += 1
            at_line_start = True
        elif char == _PARA:
            newlines = max(newlines, 2)
            at_line_start = True
    return "\n" * newlines
