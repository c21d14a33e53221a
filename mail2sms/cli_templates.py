"""``mail2sms templates``: saved SMS texts with a name, used by ``[template:NAME]`` in an
email Subject and by ``mail2sms send --template NAME``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import Session

from autoresponder.render import TemplateProblem, check, fields_used
from mail2sms.config import Config
from store import templates as store
from store.db import Database
from store.models import Template

templates_app = typer.Typer(
    help="Saved SMS texts with a name: add, edit, remove, list, show.", no_args_is_help=True)

T = TypeVar("T")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]
DescriptionOpt = Annotated[str | None, typer.Option("--description",
                                                    help="What the template is for.")]


def _config(path: Path) -> Config:
    from mail2sms.cli import load_or_exit

    return load_or_exit(path)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _run(config: Path, fn: Callable[[Session], T]) -> T:
    db = Database(_config(config).database.url)
    try:
        return db.run_sync(fn)
    finally:
        db.close()


def _checked(text: str) -> str:
    """The text, or exit with the reason when it is empty or not a valid template."""
    if not text.strip():
        raise _fail("--text is empty: a template needs a text")
    try:
        check(text)
    except TemplateProblem as exc:
        raise _fail(f"refused: {exc}") from exc
    return text


def _iso(value: datetime) -> str:
    """ISO 8601 with offset: SQLite hands timestamps back without their zone (UTC)."""
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()


def _row(row: Template) -> dict[str, Any]:
    return {
        "name": row.name, "text": row.text, "description": row.description,
        "fields": sorted(fields_used(row.text)), "created_by": row.created_by,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }


@templates_app.command("add")
def add(
    name: str,
    text: Annotated[str, typer.Option("--text", help="The SMS text; {{ first_name }} and "
                                                     "other fields are filled per contact.")],
    description: DescriptionOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Who made it.")] = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Save a text under a name (names are unique, case ignored)."""
    if not name.strip():
        raise _fail("the name is empty")
    _checked(text)
    try:
        saved = _run(config, lambda s: store.add(s, name, text, description=description,
                                                 created_by=by).name)
    except store.TemplateExists as exc:
        raise _fail(f"refused: {exc}: use 'templates edit'", 1) from exc
    typer.echo(f"{saved}: added")


@templates_app.command("edit")
def edit(
    name: str,
    text: Annotated[str | None, typer.Option("--text", help="The new text.")] = None,
    description: DescriptionOpt = None,
    config: ConfigOpt = Path("config.yaml"),
) -> None:
    """Change a template's text or description."""
    if text is None and description is None:
        raise _fail("nothing to change: give --text and/or --description")
    if text is not None:
        _checked(text)
    row = _run(config, lambda s: _named(store.edit(s, name, text=text,
                                                   description=description)))
    if row is None:
        raise _unknown(config, name)
    typer.echo(f"{row}: changed")


def _named(row: Template | None) -> str | None:
    return row.name if row is not None else None


def _unknown(config: Path, name: str) -> typer.Exit:
    known = ", ".join(_run(config, store.names)) or "none is saved yet"
    return _fail(f"unknown template {name!r}: known templates: {known}", 1)


@templates_app.command("remove")
def remove(name: str, config: ConfigOpt = Path("config.yaml")) -> None:
    """Delete a template (sends already queued keep their text)."""
    if not _run(config, lambda s: store.remove(s, name)):
        raise _unknown(config, name)
    typer.echo(f"{name}: removed")


@templates_app.command("list")
def list_(
    config: ConfigOpt = Path("config.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Every template, by name: name and description (or the start of the text)."""
    rows = _run(config, lambda s: [_row(r) for r in store.list_all(s)])
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        about = row["description"] or row["text"].replace("\n", " ")[:60]
        print(f"{row['name']}\t{about}")


@templates_app.command("show")
def show(name: str, config: ConfigOpt = Path("config.yaml")) -> None:
    """A template's name, description, fields and full text."""
    row = _run(config, lambda s: _row(found) if (found := store.get(s, name)) else None)
    if row is None:
        raise _unknown(config, name)
    print(f"name: {row['name']}")
    if row["description"]:
        print(f"description: {row['description']}")
    if row["fields"]:
        print(f"fields: {', '.join(row['fields'])}")
    print(f"created: {row['created_at']}" + (f" by {row['created_by']}"
                                             if row["created_by"] else ""))
    print(f"updated: {row['updated_at']}")
    print("text:")
    print(row["text"])
