"""``mail2sms credit``: the balance in segments and its ledger."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from mail2sms.cli_db import run_once
from mail2sms.config import Config, load_yaml_with_lines
from store import credit
from store.models import CreditEntry

app = typer.Typer(help="The SMS credit in segments: show, add, set, history.",
                  no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return None


ByOpt = Annotated[str | None, typer.Option("--by", help="Who makes the change (kept in the "
                                                        "ledger); the system user by default.")]


def _config(path: Path) -> Config:
    from mail2sms.cli import load_or_exit

    return load_or_exit(path)


def _state(cfg: Config) -> str:
    return "enabled" if cfg.credit.enabled else "disabled (credit.enabled: false)"


def config_warnings(cfg: Config, path: Path) -> list[str]:
    """``file:line: credit.key: message`` for credit settings that would do nothing."""
    try:
        _, lines = load_yaml_with_lines(path)
    except Exception:  # the config loaded already; a line number is a nicety
        lines = {}
    out = []
    for key, message in cfg.credit.warnings():
        line = lines.get(("credit", key)) or lines.get(("credit",))
        place = f"{path}:{line}" if line else str(path)
        out.append(f"{place}: credit.{key}: {message}")
    return out


@app.command("show")
def show(config: ConfigOpt = Path("config.yaml")) -> None:
    """The balance, and whether sends take from it."""
    cfg = _config(config)
    left = run_once(cfg, credit.balance)
    if left is None:
        typer.echo("balance: none set yet (mail2sms credit add N)")
    else:
        typer.echo(f"balance: {left:,} segment(s)")
    typer.echo(f"credit: {_state(cfg)}")
    if cfg.credit.alert_below is not None:
        to = ", ".join(cfg.credit.alert_to) or "nobody (credit.alert_to is empty)"
        typer.echo(f"alert below: {cfg.credit.alert_below:,} segment(s), to {to}")


def _change(config: Path, segments: int, by: str | None, *, absolute: bool) -> None:
    cfg = _config(config)
    who = by or _os_user()
    change = credit.set_balance if absolute else credit.add
    left = run_once(cfg, lambda s: change(s, segments, by=who))
    typer.echo(f"balance: {left:,} segment(s)")
    if not cfg.credit.enabled:
        typer.echo("note: credit.enabled is false in the config: sends do not take from it",
                   err=True)


@app.command("add")
def add(
    segments: Annotated[int, typer.Argument(help="Segments to add (negative to correct).")],
    config: ConfigOpt = Path("config.yaml"),
    by: ByOpt = None,
) -> None:
    """Top up the balance."""
    if segments == 0:
        typer.echo("add 0 changes nothing: give the number of segments bought", err=True)
        raise typer.Exit(2)
    _change(config, segments, by, absolute=False)


@app.command("set")
def set_(
    segments: Annotated[int, typer.Argument(help="The new balance, in segments.")],
    config: ConfigOpt = Path("config.yaml"),
    by: ByOpt = None,
) -> None:
    """Set the balance (after an audit, a new contract)."""
    if segments < 0:
        typer.echo(f"the balance cannot be negative (got {segments})", err=True)
        raise typer.Exit(2)
    _change(config, segments, by, absolute=True)


def _row(entry: CreditEntry, zone: ZoneInfo) -> list[str]:
    at: datetime = entry.at
    return [at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), f"{entry.change:+,}",
            f"{entry.balance:,}", entry.reason,
            f"#{entry.request_id}" if entry.request_id else "", entry.by or ""]


@app.command("history")
def history(
    config: ConfigOpt = Path("config.yaml"),
    limit: Annotated[int, typer.Option(help="Entries shown, newest first.")] = 50,
) -> None:
    """The ledger: when, change, balance after, reason, request, by."""
    cfg = _config(config)
    entries = run_once(cfg, lambda s: credit.history(s, limit))
    if not entries:
        typer.echo("no credit entries yet")
        return
    zone = ZoneInfo(cfg.compliance.timezone)
    rows = [["when", "change", "balance", "reason", "request", "by"],
            *(_row(e, zone) for e in entries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip())
