"""Turn an email into a `SendRequest` (see "Email format (mail-to-SMS)" in DESIGN.md).

Recipients and options come from the Subject and the To local parts, the text from the
body (`mail2sms.body`). Everything wrong is a `ParseError` with an SMTP-style code:
550 no sender, 553 no recipient, 554 anything else (unreadable message, bad option, no
text). Nothing else is ever raised, whatever the bytes.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from zoneinfo import ZoneInfo

from campaigns.request import SendRequest
from mail2sms.body import BodyError, decode_bytes, extract_text, without_controls


class ParseError(Exception):
    """A message that cannot become a send request; `message` says what and what to do."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


#: Warnings beyond this many are summed up in one line (hostile subjects).
MAX_WARNINGS = 20

_OPTION = re.compile(r"\[([^\[\]]{0,200})\]")
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|tr|fwd?|fw|aw|wg|sv|vs|rv|r[ée]f|antw)\s*(?:\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)
_GROUP = re.compile(r"^#[\w-]+$")
_NUMBERISH = re.compile(r"^\+?[\d().\-]*\d[\d().\-]*$")
_TRUNK = re.compile(r"\(0\)")
_LOCAL_NUMBER = re.compile(r"^\+?[\d.\-]+$")
_AT_FORMATS = [
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2})[:h](\d{2})(?::(\d{2}))?$"), "ymd"),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2})[:h](\d{2})(?::(\d{2}))?$"), "dmy"),
]
_AT_EXPECTED = "expected [at:YYYY-MM-DD HH:MM] (or [at:DD/MM/YYYY HH:MM])"
_MIN_DIGITS = 8
_MAX_DIGITS = 15
_NO_RECIPIENT = (
    "no recipient: put numbers or #Group in the Subject, or the number as the To address"
)


def parse_email(
    raw: bytes,
    *,
    user: str | None,
    domains: list[str],
    timezone: str = "Europe/Paris",
    rcpt_tos: list[str] | None = None,
    source: str = "smtp",
) -> SendRequest:
    """Read `raw` as sent by `user` (None: the From address, as `send --eml` does).

    Numbers in To local parts count at `domains`: from `rcpt_tos` (the SMTP envelope) or,
    when None, from the To and Cc headers.
    """
    try:
        return _parse(raw, user, domains, timezone, rcpt_tos, source)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError(554, "the message is nested too deeply to be read") from None
    except Exception as exc:  # the stdlib email package has many ways to fail on junk
        raise ParseError(554, f"the message cannot be read: {type(exc).__name__}") from None


def _parse(
    raw: bytes,
    user: str | None,
    domains: list[str],
    timezone: str,
    rcpt_tos: list[str] | None,
    source: str,
) -> SendRequest:
    msg = _read_message(raw)
    sender_address = user if user is not None else _from_address(msg)
    subject = without_controls(_decoded_header(msg, "Subject")).strip()
    request = SendRequest(
        user=sender_address,
        text="",
        source=source,
        subject=subject,
        email_message_id=_header(msg, "Message-ID").strip() or None,
    )
    addresses = rcpt_tos if rcpt_tos is not None else _header_addresses(msg)
    _add_recipients(request, _numbers_from_addresses(addresses, domains))
    _apply_subject(request, subject, timezone)
    _dedupe(request)
    if not request.recipients and not request.groups:
        raise ParseError(553, _NO_RECIPIENT)
    # With [template:NAME] the saved text is the SMS: an empty body is expected.
    request.text = _text(msg, required=request.template is None)
    _cap_warnings(request)
    return request


def _read_message(raw: bytes) -> Message:
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise ParseError(554, "the message is empty: expected headers, a blank line, the text")
    # compat32: every header is read raw and decoded here, and the modern policy would
    # build a header object for each lookup, the costliest part of reading an email.
    msg = BytesParser(policy=policy.compat32).parsebytes(bytes(raw))
    if not msg.keys():
        raise ParseError(
            554,
            "not an email message: no header found (expected 'Name: value' header lines, "
            "a blank line, then the text)",
        )
    return msg


def _text(msg: Message, *, required: bool = True) -> str:
    try:
        text = extract_text(msg)
    except BodyError as exc:
        raise ParseError(554, str(exc)) from None
    if not text and required:
        raise ParseError(
            554,
            "the message has no text: write the SMS in the body (quoted replies, signatures "
            "and attachments are not sent)",
        )
    return text


# --- headers -----------------------------------------------------------------------------


def _header(msg: Message, name: str) -> str:
    """The raw value of the first `name` header, unfolded; 8-bit bytes decoded."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            value = str(value)
            if any("\udc80" <= char <= "\udcff" for char in value):
                value = decode_bytes(value.encode("ascii", "surrogateescape"), "utf-8")
            return re.sub(r"\r?\n[ \t]*", " ", value).strip()
    return ""


def _decoded_header(msg: Message, name: str) -> str:
    """`name` with RFC 2047 encoded words decoded, whatever their charset label."""
    value = _header(msg, name)
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # a malformed encoded word: keep the text as written
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_bytes(chunk, charset))
    return "".join(out).strip()


def _from_address(msg: Message) -> str:
    address = parseaddr(_header(msg, "From"))[1].strip().lower()
    if "@" not in address:
        raise ParseError(
            550, "no sender: the message has no From address (expected From: name@domain)"
        )
    return address


def _header_addresses(msg: Message) -> list[str]:
    values = [_header(msg, "To"), _header(msg, "Cc")]
    return [address for _, address in getaddresses([v for v in values if v])]


def _numbers_from_addresses(addresses: list[str], domains: list[str]) -> list[str]:
    """Local parts that are phone numbers, at an accepted domain."""
    accepted = {domain.strip().lower() for domain in domains}
    numbers = []
    for address in addresses:
        local, _, domain = address.strip().strip("<>").rpartition("@")
        local = local.strip().strip('"')
        if domain.lower() in accepted and _LOCAL_NUMBER.match(local):
            if _MIN_DIGITS <= _digit_count(local) <= _MAX_DIGITS:
                numbers.append(local)
    return numbers


# --- subject -----------------------------------------------------------------------------


def _apply_subject(request: SendRequest, subject: str, timezone: str) -> None:
    # Prefixes go before options ("RE[2]:") and after them ("[EXT] RE:").
    rest = _REPLY_PREFIX.sub("", subject)
    rest = _OPTION.sub(lambda match: _apply_option(request, match, timezone), rest)
    rest = _REPLY_PREFIX.sub("", rest)
    for piece in re.split(r"[,;]", rest):
        _apply_piece(request, piece)


def _apply_option(request: SendRequest, match: re.Match[str], timezone: str) -> str:
    """Apply one `[option]` to `request`; the replacement text for the Subject."""
    written = match.group(0)
    name, sep, value = match.group(1).partition(":")
    name, value = name.strip().lower(), value.strip()
    if name in ("marketing", "alert") and not sep:
        _set_once(request, "category", name, written)
    elif name == "test" and not sep:
        request.test = True
    elif name == "draft" and not sep:
        request.draft = True
    elif name == "from" and sep:
        if not value:
            raise ParseError(554, f"{written} has no sender ID: expected [from:NAME]")
        _set_once(request, "sender", value, written)
    elif name == "at" and sep:
        _set_once(request, "at", _parse_at(value, written, timezone), written)
    elif name == "template" and sep:
        if not value:
            raise ParseError(554, f"{written} has no name: expected [template:NAME]")
        _set_once(request, "template", value, written)
    else:
        request.warnings.append(
            f'ignored "{written}" in the Subject: not an option (expected [marketing], '
            "[alert], [test], [draft], [from:NAME], [at:YYYY-MM-DD HH:MM] or [template:NAME])"
        )
    return " "


def _set_once(request: SendRequest, field: str, value: object, written: str) -> None:
    current = getattr(request, field)
    if current is not None and current != value:
        raise ParseError(
            554, f"{written} contradicts an earlier option in the Subject: give it once"
        )
    setattr(request, field, value)


def _parse_at(value: str, written: str, timezone: str) -> datetime:
    """`[at:…]` as an aware datetime; naive values are in `timezone`."""
    for pattern, order in _AT_FORMATS:
        match = pattern.match(value)
        if match is None:
            continue
        a, b, c, hour, minute, second = match.groups()
        year, month, day = (a, b, c) if order == "ymd" else (c, b, a)
        try:
            return datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                tzinfo=_zone(timezone),
            )  # fmt: skip
        except ValueError:
            break
    try:
        # An explicit offset is fine too: 2026-11-24T09:00+01:00 (a time is required).
        if len(value) <= len("YYYY-MM-DD"):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(554, f"{written} is not a date: {_AT_EXPECTED}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_zone(timezone))


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise ParseError(
            554, f"unknown timezone {timezone!r}: expected an IANA name like Europe/Paris"
        ) from None


def _apply_piece(request: SendRequest, piece: str) -> None:
    """One `,`/`;`-separated piece: numbers, groups and words to warn about."""
    run: list[re.Match[str]] = []
    words: list[str] = []
    for token in re.finditer(r"\S+", piece):
        text = token.group()
        if _NUMBERISH.match(text):
            _flush_words(request, words)
            run.append(token)
            continue
        _flush_run(request, piece, run)
        if _GROUP.match(text):
            _flush_words(request, words)
            request.groups.append(text[1:])
        else:
            words.append(text)
    _flush_run(request, piece, run)
    _flush_words(request, words)


def _flush_words(request: SendRequest, words: list[str]) -> None:
    if words:
        request.warnings.append(
            f'ignored "{" ".join(words)}" in the Subject: not a number, #Group or [option]'
        )
        words.clear()


def _flush_run(request: SendRequest, piece: str, run: list[re.Match[str]]) -> None:
    """Split a run of digit groups ("06 12 34 56 78 07 11 …") into numbers."""
    for start, end in _split_numbers([token.group() for token in run]):
        written = piece[run[start].start() : run[end - 1].end()]
        if _digit_count(written) >= _MIN_DIGITS:
            _add_recipients(request, [written])
        else:
            request.warnings.append(
                f'ignored "{written}" in the Subject: not a number, #Group or [option]'
            )
    run.clear()


def _split_numbers(tokens: list[str]) -> list[tuple[int, int]]:
    """Token ranges [start, end) that each make one number."""
    ranges = []
    start = 0
    while start < len(tokens):
        end = start + 1
        digits = _digit_count(tokens[start])
        if digits < _MIN_DIGITS:
            target = _expected_digits(tokens[start])
            while end < len(tokens) and digits < target and not tokens[end].startswith("+"):
                digits += _digit_count(tokens[end])
                end += 1
        ranges.append((start, end))
        start = end
    return ranges


def _expected_digits(first: str) -> int:
    """How many digits a number written starting with `first` has (French rules)."""
    digits = re.sub(r"\D", "", _TRUNK.sub("", first))
    if first.startswith("+"):
        return 11 if digits.startswith("33") else _MAX_DIGITS
    if digits.startswith("00"):
        return 13 if digits.startswith("0033") else _MAX_DIGITS + 2
    return 10 if digits.startswith("0") else 9


def _digit_count(text: str) -> int:
    # "+33 (0)6 …": the bracketed trunk zero is not dialled.
    return sum(char.isdigit() for char in _TRUNK.sub("", text))


def _add_recipients(request: SendRequest, numbers: list[str]) -> None:
    request.recipients.extend(number.strip() for number in numbers)


def _dedupe(request: SendRequest) -> None:
    """Keep the first of identical texts (other notations are merged once normalised)."""
    request.recipients = list(dict.fromkeys(request.recipients))
    request.groups = list(dict.fromkeys(request.groups))


def _cap_warnings(request: SendRequest) -> None:
    extra = len(request.warnings) - MAX_WARNINGS
    if extra > 0:
        del request.warnings[MAX_WARNINGS:]
        request.warnings.append(f"… and {extra} more warnings like these")
