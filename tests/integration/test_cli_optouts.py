"""``mail2sms optouts`` as an admin runs it, and what it does to later sends."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.integration.test_cli import mail2sms, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "site")


def run(config: Path, *args: str):  # type: ignore[no-untyped-def]
    return mail2sms(*args, "--config", str(config), cwd=config.parent)


def test_add_list_and_every_later_send_is_skipped(config: Path) -> None:
    added = run(config, "optouts", "add", "06 12 34 56 78", "+33 7 51 22 33 44", "--by", "admin")
    assert added.returncode == 0, added.stderr
    assert "+33612345678: added" in added.stdout
    again = run(config, "optouts", "add", "0612345678")
    assert "already opted out" in again.stdout
    listed = run(config, "optouts", "list")
    assert listed.stdout.split() == ["+33612345678", "+33751223344"]
    dry = run(config, "send", "--as", "alice@example.com", "--to", "0612345678",
              "--to", "0611223345", "--text", "Bonjour", "--dry-run", "--json")
    rows = {r["number"]: r for r in json.loads(dry.stdout)}
    assert (rows["+33612345678"]["status"], rows["+33612345678"]["reason"]) == (
        "skipped", "opted out")
    assert rows["+33611223345"]["status"] == "queued"


def test_remove_needs_consent_and_history_keeps_every_change(config: Path) -> None:
    run(config, "optouts", "add", "0612345678", "--by", "admin")
    refused = run(config, "optouts", "remove", "0612345678")
    assert refused.returncode != 0 and "--consent" in refused.stderr
    removed = run(config, "optouts", "remove", "0612345678", "--consent",
                  "signed form of 2026-11-28", "--by", "admin")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert run(config, "optouts", "list").stdout.strip() == ""
    history = run(config, "optouts", "history", "06 12 34 56 78").stdout.splitlines()
    assert len(history) == 2
    assert "add" in history[0] and "cli" in history[0] and "admin" in history[0]
    assert "remove" in history[1] and "signed form of 2026-11-28" in history[1]
    not_there = run(config, "optouts", "remove", "0612345678", "--consent", "x")
    assert not_there.returncode == 1 and "was not opted out" in not_there.stdout


def test_import_reports_bad_lines_and_export_round_trips(config: Path) -> None:
    source = config.parent / "stop.csv"
    source.write_text("numero,date\n06 12 34 56 78,2026-01-02\nnot a number,x\n"
                      "+33 6 99 88 77 66,2026-01-03\n0612345678,dup\n", encoding="utf-8")
    imported = run(config, "optouts", "import", str(source), "--by", "dpo")
    assert imported.returncode == 0, imported.stderr
    assert f"{source}:3: 'not a number'" in imported.stderr
    assert "2 added, 1 already there, 1 line(s) skipped" in imported.stdout
    exported = run(config, "optouts", "export")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["number"], r["source"], r["by"]) for r in rows] == [
        ("+33612345678", "import", "dpo"), ("+33699887766", "import", "dpo")]
    target = config.parent / "out.csv"
    run(config, "optouts", "export", str(target))
    with target.open(encoding="utf-8", newline="") as written:
        assert list(csv.DictReader(written)) == rows
