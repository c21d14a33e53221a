"""The opt-out mention that marketing SMS from a custom sender must carry."""

from __future__ import annotations

import re
import unicodedata


def _fold(text: str) -> str:
    """Lower case, without accents, for comparisons people would call "the same"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# "STOP au 36105", "STOP 36105", "Stop: 36 105", "STOP SMS": some opt-out instruction is
# already there, even if worded differently from the configured mention.
_ANY_STOP = re.compile(r"\bstop\b\s*(?:(?:au|at|to|a|:)\s*)?\+?\d|\bstop\s+sms\b")


def needs_stop_mention(text: str, mention: str) -> bool:
    """True when *text* lacks *mention* (case, accents and spacing ignored) and any STOP line."""
    folded = _fold(text)
    wanted = re.sub(r"\s+", "", _fold(mention))
    if wanted and wanted in re.sub(r"\s+", "", folded):
        return False
    return _ANY_STOP.search(folded) is None


def with_stop_mention(text: str, mention: str, *, separator: str = "\n") -> str:
    """*text* with *mention* appended on its own line, unless it already has one."""
    if not mention.strip() or not needs_stop_mention(text, mention):
        return text
    body = text.rstrip()
    return f"{body}{separator}{mention}" if body else mention
