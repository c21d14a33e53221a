"""``mail2sms export`` and ``mail2sms stats``: results of what was sent and received."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from autoresponder.rules import RuleSet, Survey
from autoresponder.survey import summarise
from mail2sms.config import Config
from store.db import Database
from store.surveys import Respondent, respondents

export_app = typer.Typer(help="Export results as CSV.", no_args_is_help=True)
stats_app = typer.Typer(help="Summaries of results.", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]


def _survey(config: Config, name: str) -> Survey:
    """The survey's definition from the rules file in force."""
    from autoresponder.loader import RulesError, load_rules

    path = config.rules_file
    ruleset = RuleSet()
    if path is not None and path.is_file():
        try:
            ruleset = load_rules(path)
        except RulesError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    survey = ruleset.surveys.get(name)
    if survey is None:
        known = ", ".join(sorted(ruleset.surveys)) or "none"
        typer.echo(f"no survey {name!r} in {path} (surveys: {known})", err=True)
        raise typer.Exit(2)
    return survey


def _load(config_path: Path, name: str) -> tuple[Survey, list[Respondent]]:
    from mail2sms.cli import load_or_exit

    config = load_or_exit(config_path)
    survey = _survey(config, name)
    db = Database(config.database.url)
    try:
        return survey, db.run_sync(lambda s: respondents(s, name))
    finally:
        db.close()


@export_app.command("survey")
def export_survey(
    name: str,
    file: Annotated[Path | None, typer.Argument(help="CSV file; standard output when absent.")]
    = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """One row per respondent: number, status, dates, then one column per question."""
    survey, people = _load(config, name)
    questions = list(survey.questions)
    out = file.open("w", newline="", encoding="utf-8") if file else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["number", "status", "started_at", "closed_at", *questions])
        for person in people:
            closed = person.closed_at.isoformat() if person.closed_at else ""
            writer.writerow([person.number, person.status, person.started_at.isoformat(),
                             closed, *(person.answers.get(q, "") for q in questions)])
    finally:
        if file:
            out.close()


@stats_app.command("survey")
def stats_survey(
    name: str,
    config: ConfigOpt = Path("config.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
    = False,
) -> None:
    """Per question: how many answered, counts per choice, mean for numbers."""
    survey, people = _load(config, name)
    pairs = [(q, v) for person in people for q, v in person.answers.items()]
    summary = summarise(survey, pairs)
    finished = sum(1 for p in people if p.status == "done")
    if as_json:
        print(json.dumps({"survey": name, "respondents": len(people), "finished": finished,
                          "questions": summary}, ensure_ascii=False, indent=2))
        return
    print(f"survey {name}: {len(people)} respondent(s), {finished} finished")
    for qid, info in summary.items():
        print(f"\n{qid} ({info['type']}): {info['text']}")
        print(f"  answered: {info['answered']}")
        _print_counts(info)


def _print_counts(info: dict[str, Any]) -> None:
    if info.get("mean") is not None:
        print(f"  mean {info['mean']:.2f}, min {info['min']}, max {info['max']}")
    labels = info.get("labels", {})
    for key, count in info.get("counts", {}).items():
        label = f" ({labels[key]})" if key in labels else ""
        print(f"  {key}{label}: {count}")
