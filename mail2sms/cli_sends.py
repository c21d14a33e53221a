"""``mail2sms sends``: pause, resume or cancel a send under way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from store import sends
from store.db import Database
from store.queries import status_counts

app = typer.Typer(help="A send under way (one email, one `mail2sms send`): pause, resume, "
                       "cancel.", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]


def _apply(config: Path, request_id: int, change: Callable[[Session], int], done: str) -> None:
    from mail2sms.cli import load_or_exit

    cfg = load_or_exit(config)
    db = Database(cfg.database.url)
    try:
        def run(session: Session) -> tuple[int, dict[str, int]] | None:
            if not sends.exists(session, request_id):
                return None
            changed = change(session)
            return changed, status_counts(session, request_id)

        result = db.run_sync(run)
    finally:
        db.close()
    if result is None:
        typer.echo(f"no send request {request_id}", err=True)
        raise typer.Exit(1)
    changed, counts = result
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    typer.echo(f"send #{request_id}: {changed} message(s) {done}; now {summary}")


@app.command("pause")
def pause(request_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Hold the messages not sent yet (those already handed to the gateway go on)."""
    _apply(config, request_id, lambda s: sends.pause(s, request_id), "paused")


@app.command("resume")
def resume(request_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Let the held messages go again; each is sent once."""
    _apply(config, request_id, lambda s: sends.resume(s, request_id), "resumed")


@app.command("cancel")
def cancel(
    request_id: int,
    config: ConfigOpt = Path("config.yaml"),
    by: Annotated[str | None, typer.Option("--by", help="Who cancels (kept as the reason).")]
    = None,
) -> None:
    """Cancel every message not sent yet (waiting, deferred or paused)."""
    reason = f"cancelled by {by}" if by else "cancelled"
    _apply(config, request_id, lambda s: sends.cancel(s, request_id, reason), "cancelled")
