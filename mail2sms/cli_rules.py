"""``mail2sms rules try``: what the inbound pipeline would do with an SMS, step by step."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Keyword rules: try an SMS against them.", no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]


@app.command("try")
def try_(
    text: Annotated[str, typer.Argument(help="The SMS text, as the phone would send it.")],
    sender: Annotated[str, typer.Option("--from", help="The sending phone number.")],
    receiver: Annotated[str | None, typer.Option("--to", help="The number it was sent to "
                                                              "(the shortcode by default).")]
    = None,
    config: ConfigOpt = Path("config.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the steps as a JSON list.")]
    = False,
) -> None:
    """Run the pipeline in dry-run mode against the rules file and the database as they
    are now (opt-outs, open surveys, contacts): nothing is written, nothing is sent."""
    from autoresponder.loader import RulesError
    from inbound.mo import trial
    from inbound.pipeline import run_pipeline
    from mail2sms.cli import load_or_exit
    from mail2sms.serve import inbound_settings
    from store.db import Database

    cfg = load_or_exit(config)
    from inbound.rulebook import Rulebook

    rulebook = Rulebook(cfg.rules_file)
    try:
        ruleset = rulebook.load()
    except RulesError as exc:
        for problem in exc.problems:
            typer.echo(f"error {problem}", err=True)
        raise typer.Exit(2) from exc
    sms = trial(text, sender, receiver or cfg.gateway.shortcode,
                country=cfg.compliance.country, now=datetime.now(UTC))
    db = Database(cfg.database.url)
    try:
        outcome = asyncio.run(run_pipeline(db, ruleset, inbound_settings(cfg), sms,
                                           dry_run=True))
    finally:
        db.close()
    if as_json:
        print(json.dumps(outcome.as_json(), ensure_ascii=False, indent=2))
    else:
        print(outcome.describe())
