"""``mail2sms schedules``: periodic and event sends, added and changed from the shell.

The command writes the ``schedules`` table only; a running server picks the change up
within 30 s (see ``campaigns.schedules``), a server started later at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer

from campaigns.schedules import ScheduleProblem, Scheduler, targets
from mail2sms.config import Config
from sms.phones import normalise
from store import schedules as store
from store.db import Database
from store.models import Schedule

schedules_app = typer.Typer(
    help="Periodic and event sends (birthdays): add, list, edit, pause, resume, cancel.",
    no_args_is_help=True)

T = TypeVar("T")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]
NameOpt = Annotated[str, typer.Option("--name", help="A name to recognise it by.")]
TextOpt = Annotated[str, typer.Option("--text", help="The SMS text; {{ first_name }} "
                                                     "and other fields are filled.")]
AtOpt = Annotated[str, typer.Option("--at", help="Time of day, HH:MM (config zone).")]
MarketingOpt = Annotated[bool, typer.Option("--marketing", help="A marketing SMS (window, "
                                                                "STOP mention).")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Sender ID.")]
AsOpt = Annotated[str | None, typer.Option("--as", help="Send as this user.")]
JSON_KEYS = ("id", "name", "kind", "status", "user", "text", "recipients", "groups",
             "category", "sender", "at", "every", "weekday", "day", "repetitions", "until",
             "field", "offset_days", "group", "runs", "last_run_at", "next_run_at")


def _config(path: Path) -> Config:
    from mail2sms.cli import load_or_exit

    return load_or_exit(path)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@contextmanager
def _scheduler(cfg: Config) -> Iterator[Scheduler]:
    db = Database(cfg.database.url)
    try:
        yield Scheduler(db, cfg.compliance.timezone)
    finally:
        db.close()


def _do(cfg: Config, action: Callable[[Scheduler], T], code: int = 2) -> T:
    with _scheduler(cfg) as scheduler:
        try:
            return action(scheduler)
        except ScheduleProblem as exc:
            raise _fail(str(exc), code) from exc


def _user(cfg: Config, as_user: str | None) -> str:
    if not as_user:
        if len(cfg.users) != 1:
            raise _fail("--as USER is needed (the config has more than one user)")
        return cfg.users[0].email
    if cfg.user(as_user) is None:
        raise _fail(f"--as {as_user}: not a user in the config")
    return as_user.lower()


def _targets(cfg: Config, to: list[str]) -> tuple[str, str]:
    for raw in to:
        if raw.startswith("#"):
            continue
        phone = normalise(raw, cfg.compliance.country,
                          allow_landlines=cfg.compliance.allow_landlines)
        if phone.e164 is None:
            raise _fail(f"--to {raw!r}: {phone.reason or 'invalid number'}")
    return targets(to)


def _local(when: datetime | None, cfg: Config) -> str | None:
    if when is None:
        return None
    return when.astimezone(ZoneInfo(cfg.compliance.timezone)).isoformat(timespec="minutes")


def _row(row: Schedule, cfg: Config) -> dict[str, Any]:
    out = {key: getattr(row, key) for key in JSON_KEYS}
    out["recipients"], out["groups"] = json.loads(row.recipients), json.loads(row.groups)
    out["last_run_at"] = _local(row.last_run_at, cfg)
    out["next_run_at"] = _local(row.next_run_at, cfg)
    return out


def _when(row: Schedule) -> str:
    if row.kind == "event":
        days = row.offset_days
        rel = "on" if days == 0 else f"{abs(days)} day(s) {'before' if days < 0 else 'after'}"
        scope = f" of #{row.group}" if row.group else ""
        return f"{rel} {row.field}{scope} at {row.at}"
    detail = {"weekly": f" on {row.weekday}", "monthly": f" on day {row.day}"}.get(
        row.every or "", "")
    limit = (f", {row.repetitions} times" if row.repetitions
             else f", until {row.until}" if row.until else "")
    return f"{row.every}{detail} at {row.at}{limit}"


def _added(schedule_id: int, cfg: Config) -> None:
    with _scheduler(cfg) as scheduler:
        row = scheduler.get(schedule_id)
    assert row is not None
    typer.echo(f"schedule #{schedule_id} {row.name!r}: {_when(row)}; next run "
               f"{_local(row.next_run_at, cfg)}")


@schedules_app.command("add-periodic")
def add_periodic(
    name: NameOpt,
    text: TextOpt,
    every: Annotated[str, typer.Option(help="daily, weekly or monthly.")],
    at: AtOpt,
    to: Annotated[list[str], typer.Option("--to", help="Number or #Group; repeatable.")],
    weekday: Annotated[str | None, typer.Option(help="Weekly: mon..sun.")] = None,
    day: Annotated[int | None, typer.Option(help="Monthly: day of the month, 1-31.")] = None,
    times: Annotated[int | None, typer.Option(help="Stop after this many runs.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    marketing: MarketingOpt = False,
    sender: FromOpt = None,
    as_user: AsOpt = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Send the same SMS daily, weekly or monthly at a time."""
    cfg = _config(config)
    recipients, groups = _targets(cfg, to)
    schedule = Schedule(
        name=name, user=_user(cfg, as_user), kind="periodic", text=text,
        recipients=recipients, groups=groups, category="marketing" if marketing else None,
        sender=sender, every=every.lower(), at=at,
        weekday=weekday.lower()[:3] if weekday else None, day=day, repetitions=times,
        until=until)
    _added(_do(cfg, lambda s: s.add(schedule)), cfg)


@schedules_app.command("add-event")
def add_event(
    name: NameOpt,
    text: TextOpt,
    at: AtOpt,
    field: Annotated[str, typer.Option(help="The contact's date field.")] = "birthday",
    days: Annotated[int, typer.Option(help="Days after the date (-1: the day before).")]
    = 0,
    group: Annotated[str | None, typer.Option(help="Only the members of this group.")]
    = None,
    marketing: MarketingOpt = False,
    sender: FromOpt = None,
    as_user: AsOpt = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Send to each contact on a date of their record (birthday), N days before or after."""
    cfg = _config(config)
    group = group.removeprefix("#") if group else None
    schedule = Schedule(
        name=name, user=_user(cfg, as_user), kind="event", text=text, field=field,
        offset_days=days, group=group, at=at, category="marketing" if marketing else None,
        sender=sender)
    schedule_id = _do(cfg, lambda s: s.add(schedule))
    if group and not _do(cfg, lambda s: s.db.run_sync(lambda x: store.group_exists(x, group))):
        typer.echo(f"note: no group #{group} yet: nobody will receive it until it exists",
                   err=True)
    _added(schedule_id, cfg)


@schedules_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Every schedule, with its status, runs made and next run."""
    cfg = _config(config)
    rows = _do(cfg, lambda s: s.list())
    if as_json:
        print(json.dumps([_row(r, cfg) for r in rows], ensure_ascii=False, indent=2))
        return
    for row in rows:
        print(f"#{row.id}  {row.name}  {row.status}  {_when(row)}  runs {row.runs}  "
              f"next {_local(row.next_run_at, cfg) or '-'}  {row.text}")


def _state(action: str, schedule_id: int, config: Path) -> None:
    cfg = _config(config)
    row = _do(cfg, lambda s: getattr(s, action)(schedule_id), code=1)
    typer.echo(f"schedule #{schedule_id} {row.name!r}: {row.status}; next run "
               f"{_local(row.next_run_at, cfg) or '-'}")


@schedules_app.command("pause")
def pause(schedule_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Stop the runs until resumed."""
    _state("pause", schedule_id, config)


@schedules_app.command("resume")
def resume(schedule_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Run again from the next time due; runs missed while paused are not made."""
    _state("resume", schedule_id, config)


@schedules_app.command("cancel")
def cancel(schedule_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """No more runs; the schedule stays listed as cancelled."""
    _state("cancel", schedule_id, config)


@schedules_app.command("edit")
def edit(
    schedule_id: int,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    text: Annotated[str | None, typer.Option(help="New text.")] = None,
    at: Annotated[str | None, typer.Option(help="New time of day, HH:MM.")] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="New recipients (replace "
                                                              "the old ones).")] = None,
    every: Annotated[str | None, typer.Option(help="daily, weekly or monthly.")] = None,
    weekday: Annotated[str | None, typer.Option(help="Weekly: mon..sun.")] = None,
    day: Annotated[int | None, typer.Option(help="Monthly: 1-31.")] = None,
    times: Annotated[int | None, typer.Option(help="Runs in all.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    days: Annotated[int | None, typer.Option(help="Event: days after the date.")] = None,
    field: Annotated[str | None, typer.Option(help="Event: the date field.")] = None,
    group: Annotated[str | None, typer.Option(help="Event: only this group.")] = None,
    category: Annotated[str | None, typer.Option(help="alert or marketing.")] = None,
    sender: FromOpt = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Change a schedule; its next run is counted again from now."""
    cfg = _config(config)
    changes: dict[str, Any] = {
        "name": name, "text": text, "at": at, "every": every.lower() if every else None,
        "weekday": weekday.lower()[:3] if weekday else None, "day": day,
        "repetitions": times, "until": until, "offset_days": days, "field": field,
        "group": group.removeprefix("#") if group else None, "sender": sender,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if category is not None:
        if category not in ("alert", "marketing"):
            raise _fail(f"--category {category!r}: expected alert or marketing")
        changes["category"] = category
    if to:
        changes["recipients"], changes["groups"] = _targets(cfg, to)
    if not changes:
        raise _fail("nothing to change: give at least one option")
    row = _do(cfg, lambda s: s.edit(schedule_id, **changes))
    typer.echo(f"schedule #{schedule_id} {row.name!r}: {_when(row)}; next run "
               f"{_local(row.next_run_at, cfg) or '-'}")
