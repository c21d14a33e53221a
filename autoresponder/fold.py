"""Folding: the form in which people would call two SMS words "the same".

``fold("  Arrêt. ")`` is ``"ARRET"``; ``fold("stop,merci")`` is ``"STOP MERCI"``.
Keywords, opt-out words and survey answers are all compared in this form.
"""

from __future__ import annotations

import re
import unicodedata

# Apostrophes join ("d'accord" -> "DACCORD") so a word stays one word; any other
# punctuation separates, so "STOP,merci" still starts with STOP.
_APOSTROPHES = str.maketrans("", "", "'’‘`´ʼ")
_NOT_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Upper case, no accents, letters and digits only, single spaces, stripped."""
    if text.isascii():
        folded = text.translate(_APOSTROPHES).upper()
    else:
        # upper() can bring marks back ("ǰ" -> "J" + caron), hence marks stripped after it
        folded = _strip_marks(_strip_marks(text.translate(_APOSTROPHES)).upper())
    folded = _NOT_WORD.sub(" ", folded)
    return _SPACES.sub(" ", folded).strip()


def first_word(text: str) -> str:
    """The folded first word of the text ('' when it has none)."""
    return fold(text).partition(" ")[0]

