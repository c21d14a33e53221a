"""``mail2sms sends``: list and show sends with their status; pause, resume, cancel a
send under way; release a draft."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from sqlmodel import Session

from mail2sms.cli_db import run_once
from mail2sms.config import Config
from mail2sms.marketing_window import window_for
from store import sends
from store.campaigns import STATUSES, Campaign, campaign_status, list_campaigns

app = typer.Typer(help="Sends (one email, one `mail2sms send`, one API call): list, show, "
                       "pause, resume, cancel, release a draft.", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_COUNTS = ("queued", "sent", "delivered", "failed", "skipped")


def _config(path: Path) -> Config:
    from mail2sms.cli import load_or_exit

    return load_or_exit(path)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _counts_line(campaign: Campaign) -> str:
    counts = campaign.counts
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "no message"


def _change(config: Path, request_id: int, act: Callable[[Session, Config], sends.Change],
            done: str) -> sends.Change:
    cfg = _config(config)
    try:
        change = run_once(cfg, lambda s: act(s, cfg))
    except sends.UnknownSend as exc:
        raise _fail(str(exc)) from exc
    except sends.NotAllowed as exc:
        raise _fail(f"refused: {exc}") from exc
    campaign = change.campaign
    typer.echo(f"send #{request_id}: {change.changed} message(s) {done}; status "
               f"{campaign.status} ({_counts_line(campaign)})")
    return change


@app.command("pause")
def pause(request_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Hold the messages not sent yet (those already handed to the gateway go on)."""
    _change(config, request_id, lambda s, _: sends.pause(s, request_id), "paused")


@app.command("resume")
def resume(request_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Let a paused send's messages go again; each is sent once."""
    _change(config, request_id,
            lambda s, cfg: sends.resume(s, request_id, window=window_for(cfg)), "resumed")


@app.command("release")
def release(request_id: int, config: ConfigOpt = Path("config.yaml")) -> None:
    """Send a draft (``send --draft``, ``[draft]``): its messages are queued now, or at
    their time when it is still to come."""
    _change(config, request_id,
            lambda s, cfg: sends.release(s, request_id, window=window_for(cfg)), "released")


@app.command("cancel")
def cancel(
    request_id: int,
    config: ConfigOpt = Path("config.yaml"),
    by: Annotated[str | None, typer.Option("--by", help="Who cancels (kept as the reason).")]
    = None,
) -> None:
    """Cancel every message not sent yet (waiting, deferred, paused or held as a draft)."""
    reason = f"cancelled by {by}" if by else "cancelled"
    change = _change(config, request_id, lambda s, _: sends.cancel(s, request_id, reason),
                     "cancelled")
    typer.echo(f"{change.campaign.taken} message(s) had already gone to the gateway")


def _since(value: str | None, timezone: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--since {value!r} is not a date: expected YYYY-MM-DD or "
                    "'YYYY-MM-DD HH:MM'", 2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(timezone))


def _local(value: datetime | None, timezone: str) -> str:
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return f"{aware.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


@app.command("list")
def list_(
    config: ConfigOpt = Path("config.yaml"),
    status: Annotated[str | None, typer.Option(
        help=f"Only sends with this status: {', '.join(STATUSES)}.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's sends.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only sends made from then on: YYYY-MM-DD [HH:MM], config timezone.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Sends, newest first: id, created, user, category, status, counts, segments."""
    if status is not None and status not in STATUSES:
        raise _fail(f"--status {status!r}: expected one of {', '.join(STATUSES)}", 2)
    cfg = _config(config)
    tz = cfg.compliance.timezone
    after = _since(since, tz)
    found = run_once(cfg, lambda s: list_campaigns(s, status=status, user=user, since=after,
                                               limit=limit))
    if as_json:
        print(json.dumps([c.as_dict() for c in found], ensure_ascii=False, indent=2))
        return
    print("\t".join(("id", "created", "user", "category", "status", *_COUNTS, "segments",
                     "not_before")))
    for c in found:
        counts = c.counts
        print("\t".join((str(c.id), _local(c.created_at, tz), c.user, c.category, c.status,
                         *(str(counts[name]) for name in _COUNTS), str(c.segments),
                         _local(c.not_before, tz))))


@app.command("show")
def show(request_id: int, config: ConfigOpt = Path("config.yaml"),
         as_json: JsonOpt = False) -> None:
    """One send: who, when, status, counts per message status, segments, text."""
    cfg = _config(config)
    found = run_once(cfg, lambda s: campaign_status(s, request_id))
    if found is None:
        raise _fail(f"no send request {request_id}")
    if as_json:
        print(json.dumps(found.as_dict(), ensure_ascii=False, indent=2))
        return
    tz = cfg.compliance.timezone
    print(f"send #{found.id}: {found.status}")
    print(f"created: {_local(found.created_at, tz)} by {found.user} ({found.source})")
    print(f"category: {found.category}" + (f", sender {found.sender}" if found.sender else "")
          + (", test" if found.test else ""))
    if found.not_before:
        print(f"not before: {_local(found.not_before, tz)} ({tz})")
    if found.reason:
        print(f"reason: {found.reason}")
    print(f"messages: {_counts_line(found)}; {found.segments} segment(s)")
    if found.by_status:
        print("by status: " + ", ".join(f"{n} {s}" for s, n in sorted(found.by_status.items())))
    if found.status == "draft":
        print(f"a draft: send it with `mail2sms sends release {found.id}`")
    print("text:")
    print(found.text)
