from __future__ import annotations

import pytest

from sms.stop import needs_stop_mention, with_stop_mention

MENTION = "STOP au 36105"


@pytest.mark.parametrize(
    "text",
    [
        "Soldes -50% ce week-end ! STOP au 36105",
        "Soldes ce week-end\nstop au 36105",
        "Soldes ce week-end. Stop AU 36 105",
        "Soldes ce week-end. Stop à 36105",
        "Soldes ce week-end. STOP 36105",
        "Soldes ce week-end. STOP: 36105",
        "Soldes ce week-end. STOP au 38100",  # another number: still an opt-out line
        "Soldes ce week-end. STOP SMS",
        "Soldes ce week-end. Stop Sms au 36105",
    ],
)
def test_existing_mention_is_recognised(text: str) -> None:
    assert not needs_stop_mention(text, MENTION)
    assert with_stop_mention(text, MENTION) == text


@pytest.mark.parametrize(
    "text",
    [
        "Soldes -50% ce week-end !",
        "Ne vous arrêtez pas, stop ou encore ?",
        "STOPPEZ tout au 36105",
        "",
    ],
)
def test_missing_mention_is_detected(text: str) -> None:
    assert needs_stop_mention(text, MENTION)


def test_custom_mention_compared_without_case_or_accents() -> None:
    mention = "Désabonnement : répondre ARRÊT"
    assert not needs_stop_mention("Promo ! desabonnement : repondre arret", mention)
    assert needs_stop_mention("Promo !", mention)


def test_mention_appended_on_its_own_line() -> None:
    assert (
        with_stop_mention("Soldes ce week-end !", MENTION) == "Soldes ce week-end !\nSTOP au 36105"
    )
    assert with_stop_mention("Soldes !  \n", MENTION) == "Soldes !\nSTOP au 36105"
    assert with_stop_mention("Soldes !", MENTION, separator=" ") == "Soldes ! STOP au 36105"
    assert with_stop_mention("", MENTION) == MENTION


def test_appending_is_idempotent() -> None:
    once = with_stop_mention("Soldes !", MENTION)
    assert with_stop_mention(once, MENTION) == once


def test_empty_mention_changes_nothing() -> None:
    assert with_stop_mention("Soldes !", "") == "Soldes !"
