from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoresponder.fold import first_word, fold


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("stop merci", "STOP MERCI"),
        ("Stop.", "STOP"),
        ("STÖP", "STOP"),
        ("  arrêt ", "ARRET"),
        ("stop sms", "STOP SMS"),
        ("stop   \t\n SMS !!", "STOP SMS"),
        ("stop,merci", "STOP MERCI"),
        ("d'accord", "DACCORD"),
        ("d’accord", "DACCORD"),
        ("Après-midi", "APRES MIDI"),
        ("Ça marche ÉTÉ", "CA MARCHE ETE"),
        ("ﬁn", "FIN"),
        ("straße", "STRASSE"),
        ("4/5", "4 5"),
        ("😀👍", ""),
        ("", ""),
        ("under_score", "UNDER SCORE"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "word"),
    [("stop merci", "STOP"), ("Stop.", "STOP"), ("  arrêt ", "ARRET"), ("STÖP", "STOP"),
     ("stop sms", "STOP"), ("...", ""), ("", ""), ("Horaires ?", "HORAIRES")],
)
def test_first_word(text: str, word: str) -> None:
    assert first_word(text) == word


@given(st.text())
def test_fold_never_raises_and_is_stable(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert folded == folded.strip()
    assert "  " not in folded
    assert first_word(text) == folded.partition(" ")[0]
