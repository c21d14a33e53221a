"""``mail2sms optouts``: the opt-out list, managed by hand, with every change kept."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from mail2sms.config import Config
from sms.phones import normalise
from store import queries
from store.db import Database

app = typer.Typer(help="The opt-out list (STOP): add, remove, list, import, export, history.",
                  no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who makes the change (kept in the "
                                                        "history).")]


def _config(path: Path) -> Config:
    from mail2sms.cli import load_or_exit

    return load_or_exit(path)


def _number(raw: str, config: Config) -> str:
    phone = normalise(raw, config.compliance.country, allow_landlines=True)
    if phone.e164 is None:
        typer.echo(f"{raw!r}: {phone.reason or 'invalid number'}", err=True)
        raise typer.Exit(2)
    return phone.e164


@app.command("add")
def add(numbers: list[str], config: ConfigOpt = Path("config.yaml"), by: ByOpt = None) -> None:
    """Put numbers on the opt-out list (they will receive nothing more)."""
    cfg = _config(config)
    e164 = [_number(n, cfg) for n in numbers]
    db = Database(cfg.database.url)
    try:
        added = db.run_sync(lambda s: [n for n in e164 if queries.add_optout(s, n, "cli", by)])
    finally:
        db.close()
    for number in e164:
        typer.echo(f"{number}: {'added' if number in added else 'already opted out'}")


@app.command("remove")
def remove(
    number: str,
    consent: Annotated[str, typer.Option(help="How the person asked to receive SMS again "
                                              "(kept in the history).")],
    config: ConfigOpt = Path("config.yaml"),
    by: ByOpt = None,
) -> None:
    """Take a number off the list. Needs the person's consent: START from that phone
    does it by itself; by hand, say how consent was given."""
    cfg = _config(config)
    if not consent.strip():
        typer.echo("--consent must say how the person asked to receive SMS again", err=True)
        raise typer.Exit(2)
    e164 = _number(number, cfg)
    db = Database(cfg.database.url)
    try:
        removed = db.run_sync(lambda s: queries.remove_optout(s, e164, "cli", by, consent))
    finally:
        db.close()
    typer.echo(f"{e164}: {'removed' if removed else 'was not opted out'}")
    if not removed:
        raise typer.Exit(1)


@app.command("list")
def list_(config: ConfigOpt = Path("config.yaml")) -> None:
    """One E.164 number per line."""
    cfg = _config(config)
    db = Database(cfg.database.url)
    try:
        rows = db.run_sync(queries.list_optouts)
    finally:
        db.close()
    for row in rows:
        print(row.number)


@app.command("export")
def export(
    file: Annotated[Path | None, typer.Argument(help="CSV file; standard output when absent.")]
    = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """CSV of the list: number, since, source, by."""
    cfg = _config(config)
    db = Database(cfg.database.url)
    try:
        rows = db.run_sync(queries.list_optouts)
    finally:
        db.close()
    out = file.open("w", newline="", encoding="utf-8") if file else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["number", "since", "source", "by"])
        for row in rows:
            writer.writerow([row.number, row.created_at.isoformat(), row.source, row.by or ""])
    finally:
        if file:
            out.close()


@app.command("import")
def import_(
    file: Path,
    config: ConfigOpt = Path("config.yaml"),
    by: ByOpt = None,
) -> None:
    """Add every number of a file (one per line, or the first CSV column); lines that
    are not numbers are listed with their line number and skipped."""
    cfg = _config(config)
    try:
        lines = file.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as exc:
        typer.echo(f"cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    numbers: list[str] = []
    problems: list[str] = []
    for lineno, row in enumerate(csv.reader(lines), start=1):
        raw = row[0].strip() if row else ""
        if not raw or raw.lower() in ("number", "numero", "numéro", "phone", "telephone"):
            continue
        phone = normalise(raw, cfg.compliance.country, allow_landlines=True)
        if phone.e164 is None:
            problems.append(f"{file}:{lineno}: {raw!r}: {phone.reason or 'invalid number'}")
        else:
            numbers.append(phone.e164)
    db = Database(cfg.database.url)
    added = 0
    try:
        with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("importing", total=len(numbers))
            for start in range(0, len(numbers), 1000):
                chunk = numbers[start : start + 1000]
                added += db.run_sync(lambda s, c=chunk: sum(
                    queries.add_optout(s, n, "import", by, f"from {file.name}") for n in c))
                progress.advance(task, len(chunk))
    finally:
        db.close()
    for problem in problems:
        typer.echo(problem, err=True)
    typer.echo(f"{added} added, {len(numbers) - added} already there, "
               f"{len(problems)} line(s) skipped")


@app.command("history")
def history(
    number: Annotated[str | None, typer.Argument(help="One number; every change when absent.")]
    = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """When, how and by whom each change was made."""
    cfg = _config(config)
    e164 = _number(number, cfg) if number else None
    db = Database(cfg.database.url)
    try:
        events = db.run_sync(lambda s: queries.optout_history(s, e164))
    finally:
        db.close()
    for event in events:
        note = f" ({event.note})" if event.note else ""
        print(f"{event.at.isoformat(timespec='seconds')}  {event.number}  {event.action:6}  "
              f"{event.source}  {event.by or '-'}{note}")
