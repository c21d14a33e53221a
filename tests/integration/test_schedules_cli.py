"""``mail2sms schedules`` as an admin runs it, against a config's SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from store.db import make_engine
from store.models import Schedule
from tests.integration.test_cli import _script, mail2sms, write_config
from tests.servers.mail2sms_server import Mail2SmsServer, base_config

pytestmark = pytest.mark.integration

#: Until the main command registers the group, its sub-app runs as its own process.
_STANDALONE = ("import sys; sys.argv[0] = 'mail2sms schedules'; "
               "from mail2sms.cli_schedules import schedules_app; schedules_app()")


def _registered() -> bool:
    out = subprocess.run([*_script(), "--help"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "NO_COLOR": "1"})
    return " schedules " in out.stdout


REGISTERED = _registered()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "site")


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if REGISTERED:
        return mail2sms("schedules", *args, "--config", str(config), cwd=config.parent)
    env = {k: v for k, v in os.environ.items() if k != "MAIL2SMS_CONFIG"}
    return subprocess.run(
        [sys.executable, "-c", _STANDALONE, *args, "--config", str(config)],
        cwd=config.parent, capture_output=True, text=True, encoding="utf-8", timeout=60,
        env={**env, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})


def listed(config: Path) -> dict[int, dict[str, Any]]:
    out = run(config, "list", "--json")
    assert out.returncode == 0, out.stderr
    return {row["id"]: row for row in json.loads(out.stdout)}


def test_add_list_pause_resume_cancel(config: Path) -> None:
    added = run(config, "add-periodic", "--name", "rappel", "--to", "06 12 34 56 78",
                "--to", "#Clients", "--text", "Rappel: réunion lundi", "--every", "weekly",
                "--weekday", "mon", "--at", "09:30", "--times", "3", "--marketing",
                "--as", "alice@example.com")
    assert added.returncode == 0, added.stderr
    assert "schedule #1 'rappel': weekly on mon at 09:30, 3 times; next run" in added.stdout
    birthday = run(config, "add-event", "--name", "anniv", "--field", "birthday",
                   "--days", "-1", "--at", "10:00", "--text",
                   "Joyeux anniversaire demain {{ first_name }}", "--group", "Clients",
                   "--as", "alice@example.com")
    assert birthday.returncode == 0, birthday.stderr
    assert "1 day(s) before birthday of #Clients at 10:00" in birthday.stdout
    assert "no group #Clients yet" in birthday.stderr

    rows = listed(config)
    weekly, event = rows[1], rows[2]
    assert (weekly["kind"], weekly["status"], weekly["recipients"], weekly["groups"]) == (
        "periodic", "active", ["06 12 34 56 78"], ["Clients"])
    assert (weekly["category"], weekly["repetitions"], weekly["runs"]) == ("marketing", 3, 0)
    assert weekly["next_run_at"].endswith(("+01:00", "+02:00"))
    assert weekly["next_run_at"][11:16] == "09:30"
    assert (event["field"], event["offset_days"], event["group"]) == ("birthday", -1,
                                                                      "Clients")

    paused = run(config, "pause", "1")
    assert paused.returncode == 0 and "paused; next run -" in paused.stdout
    assert listed(config)[1]["next_run_at"] is None
    resumed = run(config, "resume", "1")
    assert resumed.returncode == 0 and "active" in resumed.stdout
    assert listed(config)[1]["next_run_at"] == weekly["next_run_at"]

    cancelled = run(config, "cancel", "2")
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    again = run(config, "resume", "2")
    assert again.returncode == 1 and "is cancelled" in again.stderr
    text = run(config, "list").stdout
    assert "#1  rappel  active" in text and "#2  anniv  cancelled" in text


def test_edit_changes_time_and_text(config: Path) -> None:
    run(config, "add-periodic", "--name", "daily", "--to", "0612345678", "--text", "A",
        "--every", "daily", "--at", "08:00", "--as", "alice@example.com")
    edited = run(config, "edit", "1", "--text", "B", "--at", "21:45", "--until",
                 "2099-12-31")
    assert edited.returncode == 0, edited.stderr
    row = listed(config)[1]
    assert (row["text"], row["at"], row["until"]) == ("B", "21:45", "2099-12-31")
    assert row["next_run_at"][11:16] == "21:45"
    nothing = run(config, "edit", "1")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--every", "weekly", "--at", "09:00"], "--weekday"),
    (["--every", "daily", "--at", "9h"], "HH:MM"),
    (["--every", "monthly", "--day", "40", "--at", "09:00"], "--day"),
    (["--every", "daily", "--at", "09:00", "--times", "2", "--until", "2099-01-01"],
     "one or the other"),
    (["--every", "daily", "--at", "09:00", "--until", "2001-01-01"], "no run left"),
])
def test_a_schedule_that_cannot_run_is_refused(config: Path, args: list[str],
                                               message: str) -> None:
    out = run(config, "add-periodic", "--name", "x", "--to", "0612345678", "--text", "T",
              "--as", "alice@example.com", *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert listed(config) == {}


def test_unknown_user_and_bad_number_are_refused(config: Path) -> None:
    common = ["--name", "x", "--text", "T", "--every", "daily", "--at", "09:00"]
    nobody = run(config, "add-periodic", *common, "--to", "0612345678", "--as", "eve@x.org")
    assert nobody.returncode == 2 and "not a user" in nobody.stderr
    bad = run(config, "add-periodic", *common, "--to", "12", "--as", "alice@example.com")
    assert bad.returncode == 2 and "--to '12'" in bad.stderr
    missing = run(config, "pause", "42")
    assert missing.returncode == 1 and "no schedule #42" in missing.stderr


def test_a_server_back_from_downtime_makes_the_missed_run_within_grace_only(
        tmp_path: Path) -> None:
    server = Mail2SmsServer(tmp_path, base_config(tmp_path))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    engine = make_engine(server.db_url)
    with Session(engine) as session:
        for name, late in (("recent", timedelta(hours=1)), ("old", timedelta(hours=7))):
            due = now - late
            local = due.astimezone(ZoneInfo("Europe/Paris"))
            session.add(Schedule(name=name, user="alice@example.com", kind="periodic",
                                 text=f"run {name}", recipients='["0612345678"]',
                                 every="daily", at=f"{local:%H:%M}", next_run_at=due))
        session.commit()
    server.start()
    try:
        sent = tmp_path / "sent.jsonl"
        for _ in range(200):
            if sent.exists() and "run recent" in sent.read_text(encoding="utf-8"):
                break
            time.sleep(0.05)
        lines = sent.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["text"] for line in lines] == ["run recent"]
        assert "missed by" in server.log and "'old'" in server.log
    finally:
        server.stop()
    with Session(engine) as session:
        rows = {r.name: r for r in session.exec(select(Schedule))}
    engine.dispose()
    assert (rows["recent"].runs, rows["old"].runs) == (1, 0)
    assert all(r.status == "active" and r.next_run_at is not None for r in rows.values())
