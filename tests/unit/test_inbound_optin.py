"""The opt-in step: START re-subscribes the number it comes from, and only that one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.models import Contact, OptOut
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


OTHER = "+33611111111"


def test_start_after_stop_resubscribes(bench: Bench) -> None:
    bench.sms("STOP")
    outcome = bench.sms("START")
    assert steps(outcome)[-1] == ("optin", "opted in")
    assert bench.query(lambda s: s.get(OptOut, PHONE)) is None
    assert outcome.replies[0].status == "queued"
    assert all(m.status == "queued" for m in bench.messages())


def test_start_only_for_its_own_number(bench: Bench) -> None:
    bench.sms("STOP", sender=OTHER)
    bench.sms("STOP")
    bench.sms("START")
    assert bench.query(lambda s: s.get(OptOut, OTHER)) is not None
    assert bench.query(lambda s: s.get(OptOut, PHONE)) is None


def test_reply_is_rendered_with_the_contact(bench: Bench) -> None:
    bench.db.run_sync(lambda s: s.add(Contact(number=PHONE, first_name="Zoé")))
    bench.sms("STOP")
    assert replies(bench.sms("start")) == ["Re-bonjour Zoé !"]


def test_start_from_a_subscribed_number_goes_on(bench: Bench) -> None:
    outcome = bench.sms("START")
    assert ("optin", "pass") in steps(outcome)
    assert "not opted out" in outcome.decisions[steps(outcome).index(("optin", "pass"))].reason
    assert outcome.decisions[-1].step == "fallback"
