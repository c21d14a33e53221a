"""``mail2sms export`` and ``mail2sms stats``: results of what was sent and received."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlmodel import Session

from autoresponder.rules import RuleSet, Survey
from autoresponder.survey import summarise
from mail2sms.config import Config
from store import stats
from store.db import Database
from store.models import SendRequestRow
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


# --- sent messages: statistics and history -----------------------------------------

#: How users read the statuses (README, "Delivery states").
STATUS_LABELS = {
    "delivered": "delivered (OK)",
    "pending": "pending (phone off)",
    "late": "late (no report after 48 h)",
    "failed": "failed (rejected)",
    "expired": "expired (not delivered in time)",
    "refused": "refused (spam rule)",
    "skipped": "skipped (never sent)",
    "uncertain": "uncertain (stopped mid-call)",
}
DAY_COLUMNS = ("delivered", "pending", "late", "failed", "expired", "refused", "skipped")


def _day(value: str | None) -> date | None:
    """``--from``/``--to``: a calendar day in the config timezone."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip()) if len(value.strip()) == 10 else _bad(value)
    except ValueError:
        return _bad(value)


def _bad(value: str) -> date:
    raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {value!r}")


FromOpt = Annotated[str | None, typer.Option(
    "--from", callback=_day, help="First day, YYYY-MM-DD (default: 6 days before --to).")]
ToOpt = Annotated[str | None, typer.Option(
    "--to", callback=_day, help="Last day included, YYYY-MM-DD (default: today).")]
UserOpt = Annotated[str | None, typer.Option("--user", help="Only this user's sends.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _days(first: date | None, last: date | None,
          tz: ZoneInfo) -> list[tuple[date, datetime, datetime]]:
    """Each day from ``first`` to ``last`` with its UTC bounds; the last 7 days by default."""
    last = last or datetime.now(tz).date()
    first = first or last - timedelta(days=6)
    if first > last:
        typer.echo(f"--from {first} is after --to {last}", err=True)
        raise typer.Exit(2)
    count = (last - first).days + 1
    return [(d, _midnight(d, tz), _midnight(d + timedelta(days=1), tz))
            for d in (first + timedelta(days=n) for n in range(count))]


def _iso(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    """Stored timestamps are UTC, naive once read back: make them aware (in ``tz``)."""
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (value.astimezone(tz) if tz else value).isoformat()


def _rate(rate: float | None) -> str:
    if rate is None:
        return "n/a (nothing delivered, failed, expired or late)"
    return f"{rate:.1%}"


def _open(config_path: Path) -> tuple[Config, Database]:
    from mail2sms.cli import load_or_exit

    config = load_or_exit(config_path)
    return config, Database(config.database.url, workers=1)


def _print_counts_block(counts: stats.Counts, reasons: dict[str, dict[str, int]]) -> None:
    print(f"messages {counts.total}, segments {counts.segments}, "
          f"accepted by the gateway {counts.sent}")
    for status in stats.STATUSES:
        print(f"  {STATUS_LABELS.get(status, status):<34} {counts.by_status.get(status, 0):>8}")
        for why, number in reasons.get(status, {}).items():
            print(f"      {why or '(no reason)':<30} {number:>8}")
    print(f"delivery rate {_rate(counts.delivery_rate)}"
          "  (delivered / delivered + failed + expired + late)")


@stats_app.command("send")
def stats_send(
    request_id: int,
    config: ConfigOpt = Path("config.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """One send: who, what, when, then its messages per status, segments and rate."""
    cfg, db = _open(config)
    tz = ZoneInfo(cfg.compliance.timezone)

    def gather(s: Session) -> tuple[SendRequestRow | None, stats.Counts, dict[str, Any]]:
        request = s.get(SendRequestRow, request_id)
        reasons = {st: stats.reason_counts(s, st, request_id=request_id)
                   for st in ("skipped", "refused")}
        return request, stats.request_counts(s, request_id), reasons

    try:
        request, counts, reasons = db.run_sync(gather)
    finally:
        db.close()
    if request is None:
        typer.echo(f"no send request {request_id}", err=True)
        raise typer.Exit(1)
    info = {"id": request.id, "user": request.user, "subject": request.subject,
            "created_at": _iso(request.created_at, tz), "category": request.category,
            "sender": request.sender, "source": request.source, "status": request.status,
            "reason": request.reason}
    if as_json:
        print(json.dumps({"request": info, **counts.as_dict(), "reasons": reasons},
                         ensure_ascii=False, indent=2))
        return
    print(f"send {request.id} by {request.user} ({request.source}), "
          f"subject {request.subject!r}")
    print(f"created {info['created_at']}, category {request.category}, "
          f"sender {request.sender or '(default)'}")
    if request.status != "accepted":
        print(f"request {request.status}: {request.reason or ''}")
    _print_counts_block(counts, reasons)


@stats_app.command("period")
def stats_period(
    config: ConfigOpt = Path("config.yaml"),
    first: FromOpt = None,
    last: ToOpt = None,
    user: UserOpt = None,
    by_day: Annotated[bool, typer.Option("--by-day", help="One line per day.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Messages created over a period (days in the config timezone), per status."""
    cfg, db = _open(config)
    tz = ZoneInfo(cfg.compliance.timezone)
    days = _days(first, last, tz)  # type: ignore[arg-type]  (the callback made dates)
    start, end = days[0][1], days[-1][2]
    user = user.strip().lower() if user else None

    def gather(s: Session) -> tuple[stats.Counts, dict[str, Any], dict[date, stats.Counts]]:
        reasons = {st: stats.reason_counts(s, st, start=start, end=end, user=user)
                   for st in ("skipped", "refused")}
        daily = stats.daily_counts(s, days, user) if by_day else {}
        return stats.period_counts(s, start, end, user), reasons, daily

    try:
        counts, reasons, daily = db.run_sync(gather)
    finally:
        db.close()
    period = {"from": days[0][0].isoformat(), "to": days[-1][0].isoformat(),
              "timezone": cfg.compliance.timezone, "user": user}
    if as_json:
        out: dict[str, Any] = {**period, **counts.as_dict(), "reasons": reasons}
        if by_day:
            out["days"] = [{"day": d.isoformat(), **c.as_dict()} for d, c in daily.items()]
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    who = f" for {user}" if user else ""
    print(f"{period['from']} to {period['to']} ({period['timezone']}){who}")
    _print_counts_block(counts, reasons)
    if by_day:
        print()
        print(f"{'day':<10} {'messages':>8} " + " ".join(f"{c:>9}" for c in DAY_COLUMNS)
              + f" {'segments':>8}  rate")
        for d, c in daily.items():
            rate = "-" if c.delivery_rate is None else f"{c.delivery_rate:.1%}"
            print(f"{d.isoformat():<10} {c.total:>8} "
                  + " ".join(f"{c.by_status.get(s, 0):>9}" for s in DAY_COLUMNS)
                  + f" {c.segments:>8}  {rate}")


@export_app.command("messages")
def export_messages(
    file: Annotated[Path | None, typer.Argument(help="CSV file; standard output when absent.")]
    = None,
    config: ConfigOpt = Path("config.yaml"),
    first: FromOpt = None,
    last: ToOpt = None,
    user: UserOpt = None,
) -> None:
    """Message history over a period (days in the config timezone; default the last 7),
    one CSV row per message in id order, streamed. Timestamps are UTC, ISO 8601."""
    cfg, db = _open(config)
    tz = ZoneInfo(cfg.compliance.timezone)
    days = _days(first, last, tz)  # type: ignore[arg-type]
    user = user.strip().lower() if user else None
    out = file.open("w", newline="", encoding="utf-8") if file else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(stats.EXPORT_COLUMNS)
        with Session(db.engine) as session:
            for row in stats.iter_messages(session, days[0][1], days[-1][2], user):
                values = row._mapping
                writer.writerow([
                    _iso(values[c]) if c in ("created_at", "submitted_at", "final_at")
                    else ("" if values[c] is None else values[c])
                    for c in stats.EXPORT_COLUMNS
                ])
    finally:
        db.close()
        if file:
            out.close()
