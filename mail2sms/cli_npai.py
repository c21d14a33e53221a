"""``mail2sms npai``: numbers the operators report unassigned, to review and clear."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from mail2sms.cli_db import run_once
from mail2sms.config import Config
from sms.phones import normalise
from store import npai
from store.models import NumberHealth

app = typer.Typer(help="Numbers reported unassigned (NPAI): list, clear.",
                  no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]


def _config(path: Path) -> Config:
    from mail2sms.cli import load_or_exit

    return load_or_exit(path)


def _row(health: NumberHealth, zone: ZoneInfo) -> list[str]:
    since = (health.flagged_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
             if health.flagged_at else "not flagged")
    return [health.number, str(health.unassigned_in_row), since, health.last_reason or ""]


@app.command("list")
def list_(
    config: ConfigOpt = Path("config.yaml"),
    show_all: Annotated[bool, typer.Option("--all", help="Also numbers reported unassigned "
                                                         "once so far.")] = False,
) -> None:
    """Flagged numbers: number, reports in a row, flagged since, last reason."""
    cfg = _config(config)
    rows = run_once(cfg, lambda s: npai.listing(s, include_unflagged=show_all))
    if not rows:
        typer.echo("no number is flagged" + ("" if show_all else
                                              " (--all shows those reported once)"))
        return
    zone = ZoneInfo(cfg.compliance.timezone)
    table = [["number", "in a row", "flagged since", "last reason"],
             *(_row(r, zone) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for line in table:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


@app.command("clear")
def clear(
    number: Annotated[str, typer.Argument(help="The number, in any usual notation.")],
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """The number was reassigned or corrected: send to it again."""
    cfg = _config(config)
    phone = normalise(number, cfg.compliance.country, allow_landlines=True)
    if phone.e164 is None:
        typer.echo(f"{number!r}: {phone.reason or 'invalid number'}", err=True)
        raise typer.Exit(2)
    e164 = phone.e164
    cleared = run_once(cfg, lambda s: npai.clear(s, e164))
    if not cleared:
        typer.echo(f"{e164}: was not reported unassigned", err=True)
        raise typer.Exit(1)
    typer.echo(f"{e164}: cleared; it is sent to again")
