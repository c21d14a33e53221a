"""Statistics and history of sent messages: the store queries on SQLite and PostgreSQL,
then ``mail2sms stats send|period`` and ``mail2sms export messages`` as real processes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from store import queries, stats
from store.db import make_engine
from tests.integration.test_cli import mail2sms, write_config

pytestmark = pytest.mark.integration

PARIS = ZoneInfo("Europe/Paris")
COLUMNS = ["id", "request_id", "created_at", "user", "category", "to", "sender", "status",
           "reason", "encoding", "segments", "attempts", "gateway_id", "submitted_at",
           "final_at", "text"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _messages(created: datetime, spec: list[tuple[str, int, str | None]],
              start: int) -> list[dict[str, Any]]:
    """(status, how many, reason) into rows; sent ones get a submission time."""
    rows = []
    n = start
    for status, count, reason in spec:
        for _ in range(count):
            n += 1
            sent = status in ("delivered", "failed", "late", "pending", "expired")
            rows.append({"to": f"+336{n:08d}", "status": status, "reason": reason,
                         "segments": 2, "created_at": created, "text": f"text {n}",
                         "submitted_at": created + timedelta(minutes=1) if sent else None,
                         "gateway_id": f"gw{n}" if sent else None})
    return rows


def fill(session: Session) -> dict[str, int]:
    """Four sends around the start of November 2026 (Paris is UTC+1 then)."""
    sends = {
        # 11:00 on the 1st in Paris
        "promo": ("alice@example.com", "marketing", "ACME", utc(2026, 11, 1, 10, 0), [
            ("delivered", 3, None), ("failed", 1, "rejected by operator"), ("late", 1, None),
            ("pending", 1, None), ("skipped", 2, "opted out"),
            ("skipped", 1, "invalid number"), ("refused", 1, "more than 50 SMS today"),
        ]),
        # 23:30 UTC on the 1st is 00:30 on the 2nd in Paris
        "night": ("bob@example.com", "alert", None, utc(2026, 11, 1, 23, 30), [
            ("delivered", 1, None), ("expired", 1, "validity period over"),
        ]),
        "later": ("alice@example.com", "alert", None, utc(2026, 11, 3, 12, 0), [
            ("queued", 2, None),
        ]),
        # 23:59 on 31 October in Paris: before the period
        "before": ("alice@example.com", "alert", None, utc(2026, 10, 31, 22, 59), [
            ("delivered", 1, None),
        ]),
    }
    ids = {}
    n = 0
    for name, (user, category, sender, created, spec) in sends.items():
        rows = _messages(created, spec, n)
        n += len(rows)
        ids[name] = queries.insert_request(
            session, {"user": user, "category": category, "sender": sender,
                      "subject": f"{name} subject", "source": "cli", "created_at": created},
            rows)
    session.commit()
    return ids


def days(first: date, last: date) -> list[tuple[date, datetime, datetime]]:
    def midnight(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=PARIS).astimezone(UTC)

    count = (last - first).days + 1
    return [(d, midnight(d), midnight(d + timedelta(days=1)))
            for d in (first + timedelta(days=i) for i in range(count))]


NOV = days(date(2026, 11, 1), date(2026, 11, 3))


# --- store queries, both backends ----------------------------------------------------


@pytest.fixture
def session(db_url: str) -> Any:
    engine = make_engine(db_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_request_counts_and_rate(session: Session) -> None:
    ids = fill(session)
    counts = stats.request_counts(session, ids["promo"])
    expected = dict.fromkeys(stats.STATUSES, 0) | {
        "delivered": 3, "failed": 1, "late": 1, "pending": 1, "skipped": 3, "refused": 1}
    assert counts.by_status == expected
    assert (counts.total, counts.segments, counts.sent) == (10, 20, 6)
    assert counts.delivery_rate == pytest.approx(3 / 5)  # 3 / (3 delivered + 1 failed + 1 late)
    assert stats.reason_counts(session, "skipped", request_id=ids["promo"]) == {
        "opted out": 2, "invalid number": 1}


def test_period_counts_follow_utc_bounds_and_user(session: Session) -> None:
    fill(session)
    start, end = NOV[0][1], NOV[-1][2]
    counts = stats.period_counts(session, start, end)
    assert counts.total == 14  # not the message of 31 October
    assert counts.by_status["delivered"] == 4 and counts.by_status["expired"] == 1
    assert counts.delivery_rate == pytest.approx(4 / 7)
    alice = stats.period_counts(session, start, end, "alice@example.com")
    assert alice.total == 12 and alice.by_status["expired"] == 0
    reasons = stats.reason_counts(session, "expired", start=start, end=end,
                                  user="bob@example.com")
    assert reasons == {"validity period over": 1}


def test_daily_counts_use_the_local_day(session: Session) -> None:
    fill(session)
    daily = stats.daily_counts(session, NOV)
    assert list(daily) == [d for d, _, _ in NOV]
    totals = {d.day: c.total for d, c in daily.items()}
    assert totals == {1: 10, 2: 2, 3: 2}
    assert daily[date(2026, 11, 2)].by_status["delivered"] == 1
    assert daily[date(2026, 11, 3)].delivery_rate is None
    bob = stats.daily_counts(session, NOV, "bob@example.com")
    assert {d.day: c.total for d, c in bob.items()} == {1: 0, 2: 2, 3: 0}


def test_empty_period_is_zeros(session: Session) -> None:
    fill(session)
    empty = days(date(2025, 1, 1), date(2025, 1, 2))
    counts = stats.period_counts(session, empty[0][1], empty[-1][2])
    assert counts.total == 0 and counts.segments == 0 and counts.delivery_rate is None
    assert all(c.total == 0 for c in stats.daily_counts(session, empty).values())
    assert list(stats.iter_messages(session, empty[0][1], empty[-1][2])) == []


def test_iter_messages_in_id_order_by_chunks(session: Session) -> None:
    ids = fill(session)
    rows = list(stats.iter_messages(session, NOV[0][1], NOV[-1][2], chunk=3))
    assert len(rows) == 14
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert set(stats.EXPORT_COLUMNS) <= set(rows[0]._mapping)
    first = rows[0]
    assert (first.request_id, first.user, first.category, first.subject) == (
        ids["promo"], "alice@example.com", "marketing", "promo subject")
    bob = list(stats.iter_messages(session, NOV[0][1], NOV[-1][2], "bob@example.com"))
    assert [r.status for r in bob] == ["delivered", "expired"]


# --- the command line, SQLite ----------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    config = write_config(tmp_path / "site")
    engine = make_engine(f"sqlite:///{config.parent / 'mail2sms.db'}")
    with Session(engine) as s:
        ids = fill(s)
    engine.dispose()
    return config, ids


def run(config: Path, *args: str) -> Any:
    return mail2sms(*args, "--config", str(config), cwd=config.parent)


def test_stats_send(site: tuple[Path, dict[str, int]]) -> None:
    config, ids = site
    out = run(config, "stats", "send", str(ids["promo"]), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["request"]["user"] == "alice@example.com"
    assert data["request"]["category"] == "marketing" and data["request"]["sender"] == "ACME"
    assert data["request"]["created_at"] == "2026-11-01T11:00:00+01:00"
    assert data["counts"]["delivered"] == 3 and data["counts"]["refused"] == 1
    assert data["reasons"]["skipped"] == {"opted out": 2, "invalid number": 1}
    assert (data["segments"], data["total"]) == (20, 10)
    assert data["delivery_rate"] == pytest.approx(0.6)
    text = run(config, "stats", "send", str(ids["promo"])).stdout
    for line in ("delivered (OK)", "pending (phone off)", "late (no report after 48 h)",
                 "failed (rejected)", "refused (spam rule)", "opted out", "60.0%",
                 "promo subject"):
        assert line in text
    missing = run(config, "stats", "send", "999")
    assert missing.returncode == 1 and "no send request 999" in missing.stderr


def test_stats_period_by_day_and_user(site: tuple[Path, dict[str, int]]) -> None:
    config, _ = site
    span = ("--from", "2026-11-01", "--to", "2026-11-03")
    out = run(config, "stats", "period", *span, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["total"] == 14 and data["counts"]["delivered"] == 4
    assert "days" not in data
    by_day = json.loads(run(config, "stats", "period", *span, "--by-day", "--json").stdout)
    assert [(d["day"], d["total"]) for d in by_day["days"]] == [
        ("2026-11-01", 10), ("2026-11-02", 2), ("2026-11-03", 2)]
    bob = json.loads(run(config, "stats", "period", *span, "--by-day", "--json",
                         "--user", "bob@example.com").stdout)
    assert bob["total"] == 2 and [d["total"] for d in bob["days"]] == [0, 2, 0]
    text = run(config, "stats", "period", *span, "--by-day").stdout
    assert "2026-11-02" in text and "delivered (OK)" in text


def test_stats_period_empty_and_bad_date(site: tuple[Path, dict[str, int]]) -> None:
    config, _ = site
    out = run(config, "stats", "period", "--from", "2025-01-01", "--to", "2025-01-07",
              "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["total"] == 0 and data["delivery_rate"] is None
    assert set(data["counts"].values()) == {0}
    default = run(config, "stats", "period")  # the last 7 days: nothing there
    assert default.returncode == 0 and "messages 0" in default.stdout
    for bad in ("01/11/2026", "2026-11-31", "2026-11-1"):
        out = run(config, "stats", "period", "--from", bad)
        assert out.returncode == 2 and "YYYY-MM-DD" in out.stderr, (bad, out.stderr)
    out = run(config, "export", "messages", "--to", "yesterday")
    assert out.returncode == 2 and "YYYY-MM-DD" in out.stderr


def test_export_messages_of_a_range(site: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    config, ids = site
    out = run(config, "export", "messages", "--from", "2026-11-02", "--to", "2026-11-02")
    assert out.returncode == 0, out.stderr
    reader = csv.DictReader(io.StringIO(out.stdout))
    assert reader.fieldnames == COLUMNS
    rows = list(reader)
    assert [(r["request_id"], r["user"], r["status"]) for r in rows] == [
        (str(ids["night"]), "bob@example.com", "delivered"),
        (str(ids["night"]), "bob@example.com", "expired")]
    assert rows[0]["created_at"] == "2026-11-01T23:30:00+00:00"
    assert rows[1]["reason"] == "validity period over" and rows[1]["segments"] == "2"
    target = tmp_path / "all.csv"
    out = run(config, "export", "messages", "--from", "2026-10-01", "--to", "2026-11-30",
              "--user", "alice@example.com", str(target))
    assert out.returncode == 0, out.stderr
    with target.open(encoding="utf-8", newline="") as fh:
        alice = list(csv.DictReader(fh))
    assert len(alice) == 13 and {r["user"] for r in alice} == {"alice@example.com"}
    assert [int(r["id"]) for r in alice] == sorted(int(r["id"]) for r in alice)
