"""GSM 03.38 / UCS-2 encoding choice, segment counting and transliteration.

Counting follows what SMSCs actually do when they concatenate: an extension
character (escape + char) is never cut between two parts, nor is a UTF-16
surrogate pair, so a part may carry 152 septets or 66 code units instead of
153 or 67. Getting this wrong by one segment means billing surprises.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# 3GPP TS 23.038, default alphabet, in table order (0x1B is the escape, not a char).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ"
    "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Default alphabet extension table: each costs the escape septet plus itself.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67


@dataclass(frozen=True)
class TextInfo:
    encoding: str  # "gsm7" | "ucs2"
    length: int  # septets for gsm7, UTF-16 code units for ucs2
    segments: int
    per_segment: int  # 160/153 or 70/67
    chars: int  # code points


def is_gsm7(text: str) -> bool:
    """True when every character exists in the GSM-7 default alphabet or its extension."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _gsm7_cost(c: str) -> int:
    return 2 if c in GSM7_EXTENSION else 1


def _ucs2_cost(c: str) -> int:
    return 2 if ord(c) > 0xFFFF else 1


def _pack(text: str, cost: list[int], capacity: int) -> list[str]:
    """Cut *text* into parts of at most *capacity* units, never splitting one character."""
    parts: list[str] = []
    start = used = 0
    for i, n in enumerate(cost):
        if used + n > capacity:
            parts.append(text[start:i])
            start, used = i, 0
        used += n
    parts.append(text[start:])
    return parts


def _costs(text: str) -> tuple[str, list[int]]:
    if is_gsm7(text):
        return "gsm7", [_gsm7_cost(c) for c in text]
    return "ucs2", [_ucs2_cost(c) for c in text]


def split(text: str) -> list[str]:
    """The parts as they would be sent; ``"".join(split(t)) == t``; ``[""]`` for empty text."""
    encoding, cost = _costs(text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_MULTI)
    if sum(cost) <= single:
        return [text]
    return _pack(text, cost, multi)


def analyse(text: str) -> TextInfo:
    """Encoding, length and exact number of segments of *text*."""
    encoding, cost = _costs(text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_MULTI)
    length = sum(cost)
    if length <= single:
        return TextInfo(encoding, length, 1, single, len(text))
    segments = len(_pack(text, cost, multi))
    return TextInfo(encoding, length, segments, multi, len(text))


# Look-alikes for characters outside GSM-7 that are common in French text
# (typographic punctuation from word processors and Outlook, ligatures, spaces).
_TRANSLIT: dict[str, str] = {
    **dict.fromkeys("’‘‛‚′`´‹›", "'"),
    **dict.fromkeys("“”„‟«»″", '"'),
    **dict.fromkeys("–—―‐‑‒−•", "-"),
    **dict.fromkeys("\u00a0\u202f\u2007\u2009\u200a\u2002\u2003\u2004\u2005\u2006", " "),
    **dict.fromkeys("\u2008\u205f\u3000\t", " "),
    # invisible characters that would otherwise force UCS-2 for nothing
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),
    **dict.fromkeys("\u2028\u2029", "\n"),
    "…": "...",
    "·": ".",
    "œ": "oe",
    "Œ": "OE",
    # GSM-7 has the capital Ç only; ç is far more common and must not become a capital
    "ç": "c",
    "°": "o",
    "©": "(c)",
    "®": "(R)",
    "™": "TM",
    "¢": "c",
    "×": "x",
    "÷": "/",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "TH",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
}


def _fallback(c: str) -> str:
    """Strip diacritics via compatibility decomposition when the result is GSM-7."""
    base = "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
    if base and is_gsm7(base) and not (base.isspace() and not c.isspace()):
        return base
    if not base and unicodedata.combining(c):
        return ""  # a stray accent left after NFC: the letter it sat on is kept
    return c


def transliterate(text: str) -> str:
    """Replace characters outside GSM-7 with look-alikes; characters without one are kept.

    GSM-7 letters (é è ù ì ò à É Ä Ö Ñ Ü ä ö ñ ü ß Ç Å å Ø ø Æ æ) are never touched.
    """
    out: list[str] = []
    for c in unicodedata.normalize("NFC", text):
        if c in GSM7_BASIC or c in GSM7_EXTENSION:
            out.append(c)
        elif c in _TRANSLIT:
            out.append(_TRANSLIT[c])
        else:
            out.append(_fallback(c))
    return "".join(out)
