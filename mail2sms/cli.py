"""The ``mail2sms`` command line."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from campaigns.plan import Plan
from campaigns.request import SendRequest
from mail2sms.config import Config, ConfigError, load_config
from mail2sms.parse import ParseError, parse_email
from mail2sms.report import summary_line
from store.models import MessageStatus

app = typer.Typer(help="Email-to-SMS and inbound keyword bot server.", no_args_is_help=True,
                  add_completion=False)
# markup off: user text is full of [brackets] ([test], [at:...]) that Rich would eat.
# soft_wrap: "file:line: key: message" stays one line whatever the terminal width.
console = Console(markup=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)


def _fail(label: str, text: object) -> None:
    """``label`` in red, then the text exactly as it is."""
    err.print(Text.assemble((label, "red"), " ", str(text)))

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]
DEFAULT_CONFIG = Path("config.yaml")


def load_or_exit(path: Path) -> Config:
    """The config, or every problem printed and exit code 2."""
    return _load(path)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            _fail("error", problem)
        raise typer.Exit(2) from exc


def _logging(config: Config) -> None:
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every SMTP command at INFO; that is debugging detail, not a log.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.root.level))


@app.command()
def serve(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Run the server: SMTP intake, HTTP API, dispatcher, in one process."""
    import uvloop

    from mail2sms.serve import serve as run_server

    cfg = _load(config)
    _logging(cfg)
    # libuv's loop: each webhook call costs less than on asyncio's own (bench/RESULTS.md)
    uvloop.run(run_server(cfg))


@app.command("check-config")
def check_config(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Validate the configuration (and rules); errors are given with file:line."""
    from mail2sms.checks import check_all

    cfg = _load(config)
    problems = check_all(cfg, config)
    for problem in problems:
        _fail("error", problem)
    if problems:
        raise typer.Exit(2)
    from mail2sms.cli_credit import config_warnings

    for warning in config_warnings(cfg, config):
        err.print(Text.assemble(("warning", "yellow"), " ", warning))
    console.print(f"{config}: OK ({len(cfg.users)} user(s), gateway {cfg.gateway.driver}, "
                  f"database {cfg.database.url.split('@')[-1]})", highlight=False)


@app.command("hash-password")
def hash_password(
    password: Annotated[str | None, typer.Option(help="Read from a prompt when omitted.")]
    = None,
) -> None:
    """Print an argon2 hash for a user's ``password_hash``."""
    from mail2sms.auth import hash_password as make_hash

    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != password:
                err.print("the two passwords differ")
                raise typer.Exit(1)
        else:
            password = sys.stdin.readline().rstrip("\n")
    if not password:
        err.print("empty password")
        raise typer.Exit(1)
    print(make_hash(password))


def _parse_at(value: str, timezone: str) -> datetime:
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=ZoneInfo(timezone))
        except ValueError:
            continue
    err.print(f"--at {value!r} is not a date: expected 'YYYY-MM-DD HH:MM'")
    raise typer.Exit(2)


def plan_rows(plan: Plan) -> list[dict]:
    rows = []
    for m in plan.messages:
        row = {"number": m.to, "status": str(m.status), "reason": m.reason,
               "encoding": m.encoding, "segments": m.segments, "text": m.text}
        if m.not_before is not None:
            row["not_before"] = m.not_before.isoformat()
        rows.append(row)
    return rows


#: Rows of the send table printed unless --all: a large send's table would take longer to
#: draw than the send takes to queue.
TABLE_ROWS = 200


def _show(plan: Plan, as_json: bool, cost: Callable[[int], str | None],
          show_all: bool = False) -> None:
    if as_json:
        if plan.refused:
            _fail("refused:", plan.refused)
        print(json.dumps(plan_rows(plan), ensure_ascii=False, indent=2))
        return
    if plan.refused:
        console.print(Text.assemble(("refused:", "red"), " ", plan.refused))
    table = Table("number", "status", "reason", "encoding", "segments", "text")
    rows = plan_rows(plan)
    shown = rows if show_all else rows[:TABLE_ROWS]
    for row in shown:
        status = row["status"] + (f" until {row['not_before']}" if "not_before" in row else "")
        cells = (row["number"], status, row["reason"] or "", row["encoding"],
                 str(row["segments"]), row["text"])
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"… {len(rows) - len(shown):,} more row(s): --all shows every one, "
                      "--json prints them all")
    if not plan.refused:
        sendable = [m for m in plan.messages
                    if m.status in (MessageStatus.QUEUED, MessageStatus.DEFERRED)]
        segments = sum(m.segments for m in sendable)
        price = cost(segments)
        console.print(f"total: {len(sendable)} SMS to send, {segments} segment(s)"
                      + (f", cost {price}" if price is not None else "")
                      + f" ({summary_line(plan)})")
    for notice in plan.notices:
        console.print(f"note: {notice}")


@app.command()
def send(
    config: ConfigOpt = DEFAULT_CONFIG,
    to: Annotated[list[str] | None, typer.Option("--to", help="Number or #Group; repeatable.")]
    = None,
    text: Annotated[str | None, typer.Option(help="The SMS text.")] = None,
    template: Annotated[str | None, typer.Option(help="A saved template's name, instead of "
                                                      "--text.")] = None,
    marketing: Annotated[bool, typer.Option("--marketing", help="A marketing SMS.")] = False,
    sender: Annotated[str | None, typer.Option("--from", help="Sender ID.")] = None,
    at: Annotated[str | None, typer.Option(help="Send at 'YYYY-MM-DD HH:MM' (config zone).")]
    = None,
    test: Annotated[bool, typer.Option("--test", help="Only to your own test number.")] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="Send as this user.")] = None,
    eml: Annotated[Path | None, typer.Option(help="Process a saved email as if its From "
                                                  "user had sent it.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, send nothing.")] = False,
    draft: Annotated[bool, typer.Option("--draft", help="Queue it held, until "
                                                        "`mail2sms sends release ID`.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help=f"Print every recipient's row (the "
                                                         f"table stops at {TABLE_ROWS}).")]
    = False,
) -> None:
    """Send an SMS (or show what an email would do with --eml --dry-run)."""
    cfg = _load(config)
    if eml is not None:
        try:
            request = parse_email(eml.read_bytes(), user=as_user, domains=cfg.smtp.domains,
                                  timezone=cfg.compliance.timezone, source="cli")
        except ParseError as exc:
            _fail(f"refused ({exc.code}):", exc.message)
            raise typer.Exit(1) from exc
        except OSError as exc:
            err.print(f"cannot read {eml}: {exc}")
            raise typer.Exit(2) from exc
    else:
        if not as_user:
            if len(cfg.users) != 1:
                err.print("--as USER is needed (the config has more than one user)")
                raise typer.Exit(2)
            as_user = cfg.users[0].email
        if not text and not template:
            err.print("--text is needed (or --template NAME, or --eml FILE)")
            raise typer.Exit(2)
        targets = to or []
        request = SendRequest(
            user=as_user.lower(), text=text or "", template=template,
            recipients=[t for t in targets if not t.startswith("#")],
            groups=[t[1:] for t in targets if t.startswith("#")],
            category="marketing" if marketing else None, sender=sender,
            at=_parse_at(at, cfg.compliance.timezone) if at else None, test=test, source="cli",
        )
    request.draft = request.draft or draft
    exit_code = asyncio.run(_send(cfg, request, dry_run=dry_run, as_json=as_json,
                                  show_all=show_all))
    raise typer.Exit(exit_code)


async def _send(cfg: Config, request: SendRequest, *, dry_run: bool, as_json: bool,
                show_all: bool = False) -> int:
    from mail2sms.service import Service, UnknownUser
    from store.db import Database

    db = Database(cfg.database.url)
    try:
        service = Service(cfg, db)
        try:
            if dry_run:
                plan = await service.preview(request)
            else:
                outcome = await service.submit(request, report=False)
                plan = outcome.plan
                if request.draft and not plan.refused:
                    err.print(f"draft #{outcome.request_id}: nothing goes out until "
                              f"`mail2sms sends release {outcome.request_id}`")
        except UnknownUser as exc:
            _fail("refused:", exc)
            return 1
        _show(plan, as_json, cfg.credit.cost, show_all)
        return 1 if plan.refused else 0
    finally:
        db.close()


def _register_groups() -> None:
    from mail2sms.cli_contacts import contacts_app, groups_app
    from mail2sms.cli_credit import app as credit_app
    from mail2sms.cli_npai import app as npai_app
    from mail2sms.cli_optouts import app as optouts
    from mail2sms.cli_results import export_app, stats_app
    from mail2sms.cli_rules import app as rules
    from mail2sms.cli_schedules import schedules_app
    from mail2sms.cli_sends import app as sends
    from mail2sms.cli_templates import templates_app

    app.add_typer(optouts, name="optouts")
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(groups_app, name="groups")
    app.add_typer(export_app, name="export")
    app.add_typer(stats_app, name="stats")
    app.add_typer(rules, name="rules")
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(sends, name="sends")
    app.add_typer(templates_app, name="templates")
    app.add_typer(credit_app, name="credit")
    app.add_typer(npai_app, name="npai")


_register_groups()

if __name__ == "__main__":
    app()
