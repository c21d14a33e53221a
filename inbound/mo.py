"""A received SMS as gateways hand it over (Kannel's get-url, generic JSON) -> ``Sms``.

Kannel passes ``%a`` as the message's own bytes: UTF-8 for text it decoded, but UTF-16BE
for a UCS-2 SMS (``coding=2``, ``charset=UTF-16BE`` when the get-url asks for ``%c`` and
``%C``). The text is therefore read as bytes and decoded here, never by the web
framework.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from inbound.model import Sms
from sms.phones import normalise

#: Longer texts are cut (a concatenated SMS of 255 parts is under 40,000 characters;
#: no phone sends that, and the limit keeps a hostile caller from storing megabytes).
MAX_TEXT = 10_000
# Controls other than tab and newline are not text: binary junk or a broken gateway.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_UTF16 = {"utf-16be", "utf-16", "ucs-2", "ucs2", "utf16be", "utf-16-be"}


class BadMo(ValueError):
    """An MO that cannot be taken; the message says what is wrong and what is expected."""


@dataclass
class Received:
    sms: Sms
    #: What was changed on the way in (decoding, control characters, length): logged.
    notes: list[str] = field(default_factory=list)


def raw_params(query: bytes) -> dict[str, bytes]:
    """Form or query string -> name: value bytes (percent-decoding only)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {name: value.encode("latin-1") for name, value in pairs}


def decode_text(raw: bytes, coding: str | None, charset: str | None) -> tuple[str, list[str]]:
    """The SMS text from Kannel's bytes, and a note when the guess was not obvious."""
    notes: list[str] = []
    label = (charset or "").strip().lower()
    if coding == "2" or label in _UTF16:
        if len(raw) % 2:
            notes.append("UCS-2 text of odd length: last byte dropped")
        return raw[: len(raw) - len(raw) % 2].decode("utf-16-be", "replace"), notes
    if coding == "1" and label in ("", "binary"):
        notes.append("8-bit (binary) SMS: not text, read as Latin-1")
        return raw.decode("latin-1"), notes
    if label and label != "gsm":
        try:
            return raw.decode(label), notes
        except LookupError:
            notes.append(f"unknown charset {charset!r}: read as UTF-8")
        except UnicodeDecodeError:
            notes.append(f"text is not valid {charset}: read as UTF-8")
    # No usable label. UCS-2 of Latin text is a NUL every other byte; UTF-8 text has
    # none (a stray NUL is junk, dropped later with the other controls).
    if len(raw) % 2 == 0 and raw.count(0) * 4 >= len(raw) and (ucs2 := _utf16(raw)):
        notes.append("no charset given: read as UCS-2 (UTF-16BE)")
        return ucs2, notes
    try:
        return raw.decode("utf-8"), notes
    except UnicodeDecodeError:
        pass
    # Emoji-only UCS-2 has no NUL either; its surrogate pairs are a safe tell. (Other
    # scripts in UCS-2 cannot be told from Windows-1252 bytes: hence charset=%C.)
    ucs2 = _utf16(raw) if len(raw) % 2 == 0 else None
    if ucs2 and any(ord(c) > 0xFFFF for c in ucs2):
        notes.append("no charset given: read as UCS-2 (UTF-16BE)")
        return ucs2, notes
    notes.append("text is not UTF-8: read as Windows-1252")
    return raw.decode("cp1252", "replace"), notes


def _utf16(raw: bytes) -> str | None:
    """The bytes as UTF-16BE when that gives printable text, else None."""
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        return None
    return text if all(c.isprintable() or c in "\n\r\t" for c in text) else None


def clean_text(text: str) -> tuple[str, list[str]]:
    """Line ends unified, control characters dropped, length capped."""
    notes: list[str] = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = _CONTROLS.sub("", text)
    if cleaned != text:
        notes.append(f"{len(text) - len(cleaned)} control character(s) removed")
    if len(cleaned) > MAX_TEXT:
        notes.append(f"text of {len(cleaned)} characters cut to {MAX_TEXT}")
        cleaned = cleaned[:MAX_TEXT]
    return cleaned, notes


def number(raw: str, country: str) -> str:
    """E.164 when the sender parses as a phone number; as received otherwise (a
    shortcode, an alphanumeric operator sender)."""
    raw = _CONTROLS.sub("", raw).strip()[:64]
    return normalise(raw, country, allow_landlines=True).e164 or raw


def dedup_key(gateway_id: str | None, sender: str, receiver: str, text: str,
              gateway_time: str | None, now: datetime) -> str:
    """The gateway's id when it gives one; else a hash of sender, receiver, text and
    the gateway's time (the arrival second when it gives none: retries of a gateway
    that gives neither are only caught within the same second)."""
    if gateway_id:
        return f"id:{gateway_id[:200]}"
    when = gateway_time or now.strftime("%Y-%m-%dT%H:%M:%S")
    digest = hashlib.sha256("\x1f".join((sender, receiver, text, when)).encode()).hexdigest()
    return f"sha256:{digest}"


def _str(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    value = _CONTROLS.sub("", raw.decode("utf-8", "replace")).strip()
    return value or None


def from_kannel(params: Mapping[str, bytes], *, country: str, now: datetime) -> Received:
    """Kannel's get-url parameters (``from=%p&to=%P&text=%a&ts=%t&id=%I`` and
    optionally ``coding=%c&charset=%C``). Raises BadMo."""
    sender = _str(params.get("from"))
    if not sender:
        raise BadMo("missing 'from' (expected get-url …&from=%p&to=%P&text=%a&ts=%t&id=%I)")
    text, notes = decode_text(params.get("text", b""), _str(params.get("coding")),
                              _str(params.get("charset")))
    return _received(sender, _str(params.get("to")) or "", text, _str(params.get("id")),
                     _str(params.get("ts")), notes, country, now)


def from_json(item: Any, *, country: str, now: datetime) -> Received:
    """One generic JSON MO: ``{"from", "to", "text", "id"?, "ts"?}``. Raises BadMo."""
    if not isinstance(item, dict):
        raise BadMo("expected a JSON object {\"from\", \"to\", \"text\", \"id\", \"ts\"}")
    for key in ("from", "to", "text", "id", "ts"):
        value = item.get(key)
        if value is not None and not isinstance(value, str | int):
            raise BadMo(f"{key!r} must be a string, got {type(value).__name__}")
    sender = str(item.get("from") or "").strip()
    if not sender:
        raise BadMo("missing 'from': the sender's number")
    if "text" not in item:
        raise BadMo("missing 'text' (an empty string for an empty SMS)")
    gateway_id = item.get("id")
    ts = item.get("ts")
    return _received(sender, str(item.get("to") or ""), str(item.get("text") or ""),
                     str(gateway_id) if gateway_id not in (None, "") else None,
                     str(ts) if ts not in (None, "") else None, [], country, now)


def _received(sender: str, receiver: str, text: str, gateway_id: str | None,
              gateway_time: str | None, notes: list[str], country: str,
              now: datetime) -> Received:
    text, more = clean_text(text)
    sender = number(sender, country)
    receiver = _CONTROLS.sub("", receiver).strip()[:64]
    key = dedup_key(gateway_id, sender, receiver, text, gateway_time, now)
    sms = Sms(sender=sender, receiver=receiver, text=text, dedup_key=key,
              gateway_id=gateway_id, gateway_time=gateway_time, received_at=now)
    return Received(sms, notes + more)


def trial(text: str, sender: str, receiver: str = "", *, country: str = "FR",
          now: datetime) -> Sms:
    """An SMS for ``mail2sms rules try``: read like a real one, with a key of its own."""
    import uuid

    return _received(sender, receiver, text, f"try-{uuid.uuid4()}", None, [], country,
                     now).sms
