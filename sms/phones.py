"""Phone number normalisation to E.164, SMS reachability, and masking for logs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

INVALID = "invalid number"
LANDLINE = "landline (cannot receive SMS)"
VOIP = "VoIP number (cannot receive SMS)"
SPECIAL = "special-rate or service number (cannot receive SMS)"
UNKNOWN = "number of unknown type (cannot receive SMS)"


@dataclass(frozen=True)
class Phone:
    raw: str
    e164: str | None  # None only when the number could not be understood at all
    kind: str  # "mobile", "mobile_or_landline", "landline", "voip", "special", "unknown", "invalid"
    reason: str | None  # why it cannot receive SMS; None when it can

    @property
    def sendable(self) -> bool:
        return self.reason is None


# Characters people paste from web pages and mail clients along with numbers.
_INVISIBLE = re.compile(r"[\u00a0\u202f\u2007\u2009\u200a\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_TEL_PREFIX = re.compile(r"^\s*(?:tel|sms|callto)\s*:\s*(?://)?", re.IGNORECASE)
# "+33 (0)6 ..." : the bracketed trunk prefix must go, or it becomes part of the number.
_TRUNK_IN_BRACKETS = re.compile(r"\(\s*0\s*\)")
_LETTER = re.compile(r"[A-Za-z]")

# French overseas departments share the 0 trunk prefix with mainland France, so a
# national "0690 ..." typed by a French user is a Guadeloupe mobile, not invalid.
_FR_OVERSEAS = ("GP", "MQ", "GF", "RE", "YT", "PM")

_SPECIAL_TYPES = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
        PhoneNumberType.PAGER,
        PhoneNumberType.PERSONAL_NUMBER,
    }
)


def _clean(raw: str) -> str:
    text = _INVISIBLE.sub(" ", raw)
    text = _TEL_PREFIX.sub("", text)
    return _TRUNK_IN_BRACKETS.sub(" ", text).strip()


def _is_international(cleaned: str) -> bool:
    digits = re.sub(r"[^\d+]", "", cleaned)
    return digits.startswith(("+", "00"))


def _parse(cleaned: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(cleaned, region)
    except NumberParseException:
        return None
    if phonenumbers.is_valid_number(number):
        return number
    if region == "FR" and not _is_international(cleaned):
        for overseas in _FR_OVERSEAS:
            try:
                candidate = phonenumbers.parse(cleaned, overseas)
            except NumberParseException:
                continue
            if phonenumbers.is_valid_number(candidate):
                return candidate
    return None


def normalise(raw: str, region: str = "FR", *, allow_landlines: bool = False) -> Phone:
    """Parse a number in any usual notation and say whether it can receive SMS.

    National numbers are read in *region*; ``6.12.34.56.78`` (French mobile without
    its leading 0) is understood. Landlines and VoIP numbers are refused unless
    *allow_landlines* (for gateways that turn SMS into voice calls).
    """
    region = region.upper()
    cleaned = _clean(raw)
    if not cleaned or _LETTER.search(cleaned):
        return Phone(raw, None, "invalid", INVALID)
    number = _parse(cleaned, region)
    if number is None or number.extension:
        return Phone(raw, None, "invalid", INVALID)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    kind_of = phonenumbers.number_type(number)
    if kind_of == PhoneNumberType.MOBILE:
        return Phone(raw, e164, "mobile", None)
    if kind_of == PhoneNumberType.FIXED_LINE_OR_MOBILE:
        return Phone(raw, e164, "mobile_or_landline", None)
    if kind_of == PhoneNumberType.FIXED_LINE:
        return Phone(raw, e164, "landline", None if allow_landlines else LANDLINE)
    if kind_of == PhoneNumberType.VOIP:
        return Phone(raw, e164, "voip", None if allow_landlines else VOIP)
    if kind_of in _SPECIAL_TYPES:
        return Phone(raw, e164, "special", SPECIAL)
    return Phone(raw, e164, "unknown", UNKNOWN)


def mask(number: str) -> str:
    """Hide a number for logs: country code, first national digit and last 2 digits stay.

    ``+33612345678`` -> ``+336******78``. Anything that is not E.164 keeps only its
    last 2 digits. At least half of the digits are always hidden.
    """
    text = number.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return "*" * len(text) if text else ""
    keep_head = 0
    if text.startswith("+"):
        try:
            parsed = phonenumbers.parse(text, None)
            keep_head = len(str(parsed.country_code)) + 1
        except NumberParseException:
            keep_head = 0
    keep_tail = 2 if len(digits) > 2 else 0
    # never reveal more than half of the number, however short it is
    keep_head = max(0, min(keep_head, len(digits) // 2 - keep_tail))
    hidden = len(digits) - keep_head - keep_tail
    plus = "+" if text.startswith("+") else ""
    return plus + digits[:keep_head] + "*" * hidden + digits[len(digits) - keep_tail :]


def dedupe(phones: Iterable[Phone]) -> list[Phone]:
    """Keep the first occurrence of each number (by E.164; unparsed ones by raw text)."""
    seen: set[str] = set()
    out: list[Phone] = []
    for phone in phones:
        key = phone.e164 or "raw:" + _clean(phone.raw)
        if key not in seen:
            seen.add(key)
            out.append(phone)
    return out
