"""The status of a send from its hand-set state and its message counts."""

from __future__ import annotations

import pytest

from store.campaigns import BUCKETS, buckets, status_of
from store.models import MessageStatus


@pytest.mark.parametrize(("state", "counts", "expected"), [
    (None, {"queued": 3}, "ready"),
    (None, {"deferred": 2, "skipped": 1}, "ready"),
    (None, {"queued": 2, "sending": 1}, "sending"),
    (None, {"queued": 2, "submitted": 5}, "sending"),
    (None, {"sending": 1, "delivered": 4}, "sending"),  # in flight: not done yet
    (None, {"deferred": 1, "failed": 1}, "sending"),  # a retry waits
    (None, {"submitted": 3, "delivered": 2}, "done"),
    (None, {"pending": 1, "late": 1, "uncertain": 1, "expired": 1}, "done"),
    (None, {"skipped": 2, "refused": 1}, "done"),  # nothing could be sent
    (None, {}, "done"),
    (None, {"paused": 2, "submitted": 1}, "paused"),  # held without a state
    ("draft", {"paused": 2}, "draft"),
    ("paused", {"paused": 2, "delivered": 3}, "paused"),
    ("paused", {"delivered": 3}, "paused"),
    ("cancelled", {"cancelled": 2, "submitted": 1}, "cancelled"),
])
def test_status_from_state_and_messages(state: str | None, counts: dict[str, int],
                                        expected: str) -> None:
    assert status_of(state, "accepted", counts) == expected


def test_a_refused_request_is_refused_whatever_else() -> None:
    assert status_of(None, "refused", {}) == "refused"
    assert status_of("cancelled", "refused", {"queued": 1}) == "refused"


def test_every_message_status_is_in_exactly_one_count() -> None:
    for status in MessageStatus:
        assert sum(status.value in members for members in BUCKETS.values()) == 1, status
    every = {s.value: 1 for s in MessageStatus}
    assert sum(buckets(every).values()) == len(MessageStatus)
    assert buckets({"deferred": 2, "paused": 1, "expired": 4, "late": 1}) == {
        "queued": 3, "sent": 1, "delivered": 0, "failed": 4, "skipped": 0, "cancelled": 0}
