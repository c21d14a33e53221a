"""The help step: HELP / AIDE answered with the configured text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoresponder.rules import DEFAULT_HELP, KeywordList, RuleSet
from tests.unit.inbound_helpers import Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


@pytest.mark.parametrize("text", ["AIDE", "aide svp", "Help!"])
def test_help_words_get_the_help_text(bench: Bench, text: str) -> None:
    outcome = bench.sms(text)
    assert steps(outcome)[-1] == ("help", "help")
    assert replies(outcome) == ["ACME, 01 23 45 67 89."]


def test_without_help_text_the_sms_goes_on(tmp_path: Path) -> None:
    ruleset = RuleSet(help=KeywordList(DEFAULT_HELP, None))
    for b in open_bench(tmp_path, ruleset):
        outcome = b.sms("HELP")
        assert ("help", "pass") in steps(outcome)
        assert not replies(outcome)
