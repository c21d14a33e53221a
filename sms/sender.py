"""Sender ID rules: alphanumeric custom senders versus numeric senders that take replies."""

from __future__ import annotations

import re

_ALNUM = re.compile(r"[A-Za-z0-9 ]+")
_LETTER = re.compile(r"[A-Za-z]")
_NUMERIC = re.compile(r"\+?\d+")

ALNUM_MIN, ALNUM_MAX = 3, 11
SHORTCODE_MIN, SHORTCODE_MAX = 4, 6
LONG_MIN, LONG_MAX = 7, 15  # E.164 allows at most 15 digits


def is_numeric_sender(sender: str) -> bool:
    """True for a valid shortcode or long number (a sender recipients can reply to)."""
    return _NUMERIC.fullmatch(sender) is not None and validate_sender(sender) is None


def validate_sender(sender: str) -> str | None:
    """Return what is wrong with *sender*, or None when operators will accept it.

    Alphanumeric: 3–11 characters, ASCII letters, digits and spaces, at least one
    letter. Numeric: a 4–6 digit shortcode, or a long number of 7–15 digits with an
    optional leading ``+``.
    """
    if not sender:
        return "sender ID is empty"
    if _NUMERIC.fullmatch(sender):
        digits = sender.lstrip("+")
        if not sender.startswith("+") and SHORTCODE_MIN <= len(digits) <= SHORTCODE_MAX:
            return None
        if LONG_MIN <= len(digits) <= LONG_MAX:
            return None
        return (
            f"numeric sender {sender!r} has {len(digits)} digits; expected a shortcode of "
            f"{SHORTCODE_MIN}–{SHORTCODE_MAX} digits or a number of {LONG_MIN}–{LONG_MAX} digits"
        )
    if not _ALNUM.fullmatch(sender):
        bad = "".join(sorted({c for c in sender if not _ALNUM.fullmatch(c)}))
        return (
            f"sender ID {sender!r} contains {bad!r}; only letters A–Z, digits and spaces "
            "are allowed"
        )
    if sender != sender.strip():
        return f"sender ID {sender!r} must not start or end with a space"
    if not _LETTER.search(sender):
        return f"sender ID {sender!r} must contain at least one letter"
    if not ALNUM_MIN <= len(sender) <= ALNUM_MAX:
        return (
            f"sender ID {sender!r} has {len(sender)} characters; expected "
            f"{ALNUM_MIN} to {ALNUM_MAX}"
        )
    return None


def can_receive_replies(sender: str | None, shortcode: str | None) -> bool:
    """Whether recipients can answer an SMS sent as *sender* (None means the shortcode).

    Only numeric senders route replies back; an alphanumeric custom sender cannot.
    """
    effective = sender or shortcode
    return bool(effective) and is_numeric_sender(effective or "")
