"""``mail2sms export survey`` and ``mail2sms stats survey`` over stored results."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from store.db import Database
from store.models import SurveyAnswer, SurveySession
from tests.integration.test_cli import mail2sms, write_config

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "rules.example.yaml"


def store_results(config: Path) -> None:
    db = Database(f"sqlite:///{config.parent / 'mail2sms.db'}")

    def fill(s) -> None:  # type: ignore[no-untyped-def]
        why = ("pourquoi", "trop long", "trop long")
        people = [
            ("+33611111111", "done", [("note", "4", "4"), ("recommande", "oui", "yes")]),
            ("+33622222222", "done", [("note", "2", "2"), why, ("recommande", "non", "no")]),
            ("+33633333333", "timeout", [("note", "5/5", "5")]),
        ]
        for number, status, answers in people:
            row = SurveySession(number=number, survey="satisfaction", status=status)
            s.add(row)
            s.flush()
            for step, text, value in answers:
                s.add(SurveyAnswer(session_id=row.id, survey="satisfaction", step=step,
                                   text=text, value=value))

    try:
        db.run_sync(fill)
    finally:
        db.close()


def test_export_has_one_row_per_respondent(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", rules=str(EXAMPLE))
    store_results(config)
    out = mail2sms("export", "survey", "satisfaction", "--config", str(config),
                   cwd=config.parent)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    columns = ("number", "status", "note", "pourquoi", "recommande")
    assert [tuple(r[c] for c in columns) for r in rows] == [
        ("+33611111111", "done", "4", "", "yes"),
        ("+33622222222", "done", "2", "trop long", "no"),
        ("+33633333333", "timeout", "5", "", ""),
    ]


def test_stats_counts_choices_and_averages_numbers(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", rules=str(EXAMPLE))
    store_results(config)
    out = mail2sms("stats", "survey", "satisfaction", "--json", "--config", str(config),
                   cwd=config.parent)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["respondents"], summary["finished"]) == (3, 2)
    note = summary["questions"]["note"]
    assert note["answered"] == 3 and note["mean"] == pytest.approx(11 / 3)
    assert (note["min"], note["max"]) == (2, 5)
    assert summary["questions"]["recommande"]["counts"] == {"yes": 1, "no": 1}
    text = mail2sms("stats", "survey", "satisfaction", "--config", str(config),
                    cwd=config.parent).stdout
    assert "3 respondent(s), 2 finished" in text and "mean 3.67" in text


def test_unknown_survey_names_the_known_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", rules=str(EXAMPLE))
    out = mail2sms("stats", "survey", "nope", "--config", str(config), cwd=config.parent)
    assert out.returncode == 2
    assert "no survey 'nope'" in out.stderr and "satisfaction" in out.stderr
