"""The dedup step: an SMS the gateway sends twice is handled once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.inbound_helpers import Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


def test_first_time_is_stored_and_goes_on(bench: Bench) -> None:
    outcome = bench.sms("HORAIRES", key="id:abc")
    assert outcome.decisions[0].step == "dedup"
    assert outcome.decisions[0].decision == "new"
    assert outcome.inbound_id is not None
    assert not outcome.decisions[0].done


def test_same_key_twice_is_answered_once(bench: Bench) -> None:
    first = bench.sms("HORAIRES", key="id:abc")
    second = bench.sms("HORAIRES", key="id:abc")
    assert replies(first) and not replies(second)
    assert steps(second) == [("dedup", "duplicate")]
    assert f"#{first.inbound_id}" in second.decisions[0].reason
    assert second.duplicate and second.inbound_id is None
    assert len(bench.inbound()) == 1
    assert len(bench.messages()) == 1


def test_duplicate_leaves_the_first_verdict_alone(bench: Bench) -> None:
    bench.sms("HORAIRES", key="id:abc")
    before = bench.inbound()[0].decisions
    bench.sms("STOP", key="id:abc")  # a different text under the same id: still the same SMS
    (row,) = bench.inbound()
    assert row.decisions == before and row.text == "HORAIRES"


def test_dry_run_sees_a_duplicate_without_writing(bench: Bench) -> None:
    bench.sms("HORAIRES", key="id:abc")
    outcome = bench.sms("HORAIRES", key="id:abc", dry_run=True)
    assert steps(outcome) == [("dedup", "duplicate")]
    fresh = bench.sms("HORAIRES", key="id:new", dry_run=True)
    assert fresh.decisions[0].decision == "new"
    assert len(bench.inbound()) == 1
