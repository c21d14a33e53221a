"""The fallback step: only when nothing answered and no staff member got the SMS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoresponder.rules import Fallback, RuleSet
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


def test_unmatched_sms_gets_the_fallback(bench: Bench) -> None:
    outcome = bench.sms("Bonjour, c'est pour une question")
    assert steps(outcome)[-1] == ("fallback", "reply")
    assert replies(outcome) == ["Ce numéro ne lit pas les réponses."]
    assert outcome.handled_by == "fallback"


def test_not_when_a_staff_member_got_it(bench: Bench) -> None:
    bench.staff_sent("alice@example.com", PHONE)
    outcome = bench.sms("Bonjour")
    assert steps(outcome)[-1] == ("fallback", "pass")
    assert "alice@example.com" in outcome.decisions[-1].reason
    assert outcome.handled_by == "forward"


def test_forward_to_copies_do_not_count(tmp_path: Path) -> None:
    for b in open_bench(tmp_path, forward_to=("ops@example.com",)):
        assert steps(b.sms("Bonjour"))[-1] == ("fallback", "reply")


def test_once_a_day_per_number(bench: Bench) -> None:
    bench.sms("Bonjour")
    again = bench.sms("Vous êtes là ?")
    assert steps(again)[-1] == ("fallback", "pass")
    assert "less than 24 h" in again.decisions[-1].reason
    assert replies(bench.sms("Salut", sender="+33611111111"))  # another number: yes
    bench.later(hours=24, minutes=1)
    assert replies(bench.sms("Toujours là ?"))


def test_disabled(tmp_path: Path) -> None:
    for b in open_bench(tmp_path, RuleSet(fallback=Fallback(enabled=False, reply="x"))):
        outcome = b.sms("Bonjour")
        assert steps(outcome)[-1] == ("fallback", "pass") and not replies(outcome)


def test_not_to_an_opted_out_number(bench: Bench) -> None:
    bench.sms("STOP")
    outcome = bench.sms("Bonjour")
    assert steps(outcome)[-1] == ("fallback", "pass")
    assert "opted out" in outcome.decisions[-1].reason


def test_not_to_a_sender_that_is_not_a_number(bench: Bench) -> None:
    outcome = bench.sms("Votre forfait", sender="ORANGE")
    assert [(r.status, r.reason) for r in outcome.replies] == [
        ("skipped", "the sender is not a phone number")]
