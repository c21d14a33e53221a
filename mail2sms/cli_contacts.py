"""``mail2sms contacts`` and ``mail2sms groups``: the directory personalised sends use."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from sqlmodel import Session

from campaigns.contacts_import import (
    ImportOptions,
    ImportProblem,
    ImportProgress,
    import_contacts,
    parse_birthday,
    parse_overrides,
)
from mail2sms.config import Config
from sms.phones import normalise
from store import contacts
from store.db import Database
from store.models import Contact

T = TypeVar("T")

contacts_app = typer.Typer(help="The contact directory: add, edit, remove, list, search, "
                                "export, import.", no_args_is_help=True)
groups_app = typer.Typer(help="Groups of contacts (#Name in a subject or --to).",
                         no_args_is_help=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file.",
                                         envvar="MAIL2SMS_CONFIG")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON list.")]
GroupsOpt = Annotated[list[str] | None, typer.Option("--group", help="Group (repeatable); "
                                                     "created when missing.")]
FieldOpt = Annotated[list[str] | None, typer.Option("--field", help="Custom field k=v "
                                                    "(repeatable; k= removes it on edit).")]
FirstOpt = Annotated[str | None, typer.Option("--first-name")]
LastOpt = Annotated[str | None, typer.Option("--last-name")]
EmailOpt = Annotated[str | None, typer.Option("--email")]
BirthdayOpt = Annotated[str | None, typer.Option("--birthday", help="YYYY-MM-DD or DD/MM/YYYY.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _run(config: Path, fn: Callable[[Session], T]) -> tuple[Config, T]:
    """Load the config and run ``fn`` in one transaction; directory errors exit 1."""
    from mail2sms.cli import load_or_exit

    cfg = load_or_exit(config)
    db = Database(cfg.database.url)
    try:
        return cfg, db.run_sync(fn)
    except contacts.ContactError as exc:
        raise _fail(str(exc), 1) from exc
    finally:
        db.close()


def _number(raw: str, country: str) -> str:
    phone = normalise(raw, country)
    if phone.e164 is None or phone.reason:
        raise _fail(f"{raw!r}: {phone.reason or 'invalid number'}")
    return phone.e164


def _country(config: Path) -> str:
    from mail2sms.cli import load_or_exit

    return load_or_exit(config).compliance.country


def _values(first: str | None, last: str | None, email: str | None, birthday: str | None
            ) -> dict[str, str | None]:
    values = {"first_name": first, "last_name": last, "email": email, "birthday": birthday}
    if birthday:
        values["birthday"] = parse_birthday(birthday)
        if values["birthday"] is None:
            raise _fail(f"--birthday {birthday!r} is not a date: expected YYYY-MM-DD")
    return {k: v for k, v in values.items() if v is not None}


def _fields(items: list[str] | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--field {item!r}: expected NAME=VALUE")
        out[key.strip()] = value if value else None
    return out


def _row(contact: Contact, groups: list[str]) -> dict[str, Any]:
    return {"number": contact.number, "first_name": contact.first_name,
            "last_name": contact.last_name, "email": contact.email,
            "birthday": contact.birthday, "fields": contacts.custom_fields(contact),
            "groups": groups}


def _pages(session: Session, group: str | None, size: int = 2000
           ) -> Iterator[list[dict[str, Any]]]:
    page: list[Contact] = []
    for contact in contacts.iter_contacts(session, group=group, batch=size):
        page.append(contact)
        if len(page) >= size:
            yield _rows(session, page)
            page = []
    if page:
        yield _rows(session, page)


def _rows(session: Session, page: list[Contact]) -> list[dict[str, Any]]:
    groups = contacts.groups_of(session, [c.id for c in page if c.id is not None])
    return [_row(c, groups.get(c.id or 0, [])) for c in page]


def _print(pages: Iterator[list[dict[str, Any]]], as_json: bool) -> None:
    """Rows as a JSON list (streamed) or one line each."""
    count = 0
    for page in pages:
        for row in page:
            if as_json:
                sys.stdout.write(("[\n  " if not count else ",\n  ")
                                 + json.dumps(row, ensure_ascii=False))
            else:
                name = " ".join(filter(None, (row["first_name"], row["last_name"])))
                extra = json.dumps(row["fields"], ensure_ascii=False) if row["fields"] else ""
                print("  ".join((row["number"], name or "-", row["email"] or "-",
                                 row["birthday"] or "-", ",".join(row["groups"]) or "-",
                                 extra)).rstrip())
            count += 1
    if as_json:
        sys.stdout.write("\n]\n" if count else "[]\n")


@contacts_app.command("add")
def add(number: str, config: ConfigOpt = Path("config.yaml"), first_name: FirstOpt = None,
        last_name: LastOpt = None, email: EmailOpt = None, birthday: BirthdayOpt = None,
        field: FieldOpt = None, group: GroupsOpt = None) -> None:
    """Add a contact (its number must not be one yet)."""
    e164 = _number(number, _country(config))
    values, fields = _values(first_name, last_name, email, birthday), _fields(field)

    def work(s: Session) -> None:
        contacts.add_contact(s, e164, values, {k: v for k, v in fields.items() if v})
        _join(s, e164, group or [])

    _run(config, work)
    typer.echo(f"{e164}: added")


def _join(session: Session, number: str, groups: list[str]) -> None:
    for name in groups:
        contacts.ensure_groups(session, [name])
        contacts.add_members(session, name, [number])


@contacts_app.command("edit")
def edit(number: str, config: ConfigOpt = Path("config.yaml"), first_name: FirstOpt = None,
         last_name: LastOpt = None, email: EmailOpt = None, birthday: BirthdayOpt = None,
         field: FieldOpt = None, group: GroupsOpt = None) -> None:
    """Change the given fields ('' clears one); --group adds the contact to groups."""
    e164 = _number(number, _country(config))
    values = _values(first_name, last_name, email, birthday or None)
    if birthday == "":
        values["birthday"] = None

    def work(s: Session) -> None:
        contacts.edit_contact(s, e164, values, _fields(field))
        _join(s, e164, group or [])

    _run(config, work)
    typer.echo(f"{e164}: updated")


@contacts_app.command("remove")
def remove(number: str, config: ConfigOpt = Path("config.yaml")) -> None:
    """Delete a contact (and its group memberships)."""
    e164 = _number(number, _country(config))
    _, removed = _run(config, lambda s: contacts.remove_contact(s, e164))
    if not removed:
        raise _fail(f"{e164}: not a contact", 1)
    typer.echo(f"{e164}: removed")


@contacts_app.command("list")
def list_(config: ConfigOpt = Path("config.yaml"),
          group: Annotated[str | None, typer.Option("--group", help="Only this group.")] = None,
          as_json: JsonOpt = False) -> None:
    """Every contact (of a group), by number: number, name, email, birthday, groups,
    custom fields."""
    _run(config, lambda s: _print(_pages(s, group), as_json))


@contacts_app.command("search")
def search(text: str, config: ConfigOpt = Path("config.yaml"), as_json: JsonOpt = False,
           limit: Annotated[int, typer.Option(help="At most this many.")] = 100) -> None:
    """Contacts whose number, name, email or custom fields contain TEXT."""
    texts = [text]
    phone = normalise(text, _country(config))
    if phone.e164:
        texts.append(phone.e164)

    def work(s: Session) -> None:
        _print(iter([_rows(s, contacts.search_contacts(s, texts, limit=limit))]), as_json)

    _run(config, work)


@contacts_app.command("export")
def export(
    file: Annotated[Path | None, typer.Argument(help="CSV file; standard output when absent.")]
    = None,
    config: ConfigOpt = Path("config.yaml"),
    group: Annotated[str | None, typer.Option("--group", help="Only this group.")] = None,
) -> None:
    """CSV: number, first_name, last_name, email, birthday, then one column per custom
    field (import reads it back as it is)."""

    def work(s: Session) -> None:
        keys: dict[str, None] = {}
        for contact in contacts.iter_contacts(s, group=group):
            keys.update(dict.fromkeys(contacts.custom_fields(contact)))
        out = file.open("w", newline="", encoding="utf-8") if file else sys.stdout
        try:
            writer = csv.writer(out)
            keys = dict.fromkeys(sorted(keys))
            writer.writerow(["number", *contacts.CONTACT_FIELDS, *keys])
            for contact in contacts.iter_contacts(s, group=group):
                custom = contacts.custom_fields(contact)
                writer.writerow([contact.number,
                                 *(getattr(contact, k) or "" for k in contacts.CONTACT_FIELDS),
                                 *(custom.get(k, "") for k in keys)])
        finally:
            if file:
                out.close()

    _run(config, work)


@contacts_app.command("import")
def import_(
    file: Path,
    config: ConfigOpt = Path("config.yaml"),
    group: Annotated[list[str] | None, typer.Option("--group", help="Put every imported "
                                                    "contact in this group (repeatable).")]
    = None,
    mode: Annotated[str, typer.Option(help="add: existing contacts stay as they are; update: "
                                           "the file's non-empty values replace theirs.")]
    = "add",
    column: Annotated[list[str] | None, typer.Option("--column", help="FIELD=COLUMN (header "
                      "name or 1-based number), e.g. phone=Portable; repeatable.")] = None,
    rejects: Annotated[Path | None, typer.Option(help="Where rejected rows are written "
                                                      "(default FILE.rejects.csv).")] = None,
) -> None:
    """Import a CSV or XLSX file in one transaction: interrupted, it leaves nothing."""
    from mail2sms.cli import load_or_exit

    cfg = load_or_exit(config)
    db = Database(cfg.database.url)
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=True,
                      disable=not err.is_terminal) as progress:
            task = progress.add_task("importing", total=None)

            def show(p: ImportProgress) -> None:
                progress.update(task, completed=p.position, total=p.total,
                                description=f"importing: {p.rows:,} rows")

            options = ImportOptions(mode=mode, groups=group or [], country=cfg.compliance.country,
                                    columns=parse_overrides(column or []), rejects=rejects,
                                    progress=show)
            result = import_contacts(db.engine, file, options)
    except ImportProblem as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        raise _fail("interrupted: nothing was imported", 130) from None
    finally:
        db.close()
    mapping = ", ".join(f"{k}={v!r}" for k, v in result.columns.items())
    typer.echo(f"columns: {mapping}" + (f"; custom fields: {', '.join(result.custom)}"
                                         if result.custom else ""))
    typer.echo(f"{result.rows} rows: {result.added} added, {result.updated} updated, "
               f"{result.unchanged} {'already there' if mode == 'add' else 'unchanged'}, "
               f"{result.rejected} rejected, {result.duplicates} duplicate(s) merged, "
               f"{result.warnings} warning(s) in {result.seconds:.1f} s")
    if result.rejects_path:
        typer.echo(f"rejected rows and warnings: {result.rejects_path}")


# --- groups ------------------------------------------------------------------------


@groups_app.command("list")
def groups_list(config: ConfigOpt = Path("config.yaml"), as_json: JsonOpt = False) -> None:
    """Every group and its number of members."""
    _, groups = _run(config, contacts.list_groups)
    if as_json:
        print(json.dumps([{"name": n, "members": c} for n, c in groups], ensure_ascii=False))
        return
    for name, count in groups:
        print(f"{name}\t{count}")


@groups_app.command("create")
def groups_create(name: str, config: ConfigOpt = Path("config.yaml")) -> None:
    _run(config, lambda s: contacts.create_group(s, name))
    typer.echo(f"{name}: created")


@groups_app.command("rename")
def groups_rename(old: str, new: str, config: ConfigOpt = Path("config.yaml")) -> None:
    _run(config, lambda s: contacts.rename_group(s, old, new))
    typer.echo(f"{old}: renamed {new}")


@groups_app.command("remove")
def groups_remove(name: str, config: ConfigOpt = Path("config.yaml")) -> None:
    """Delete a group; its contacts stay in the directory."""
    _, members = _run(config, lambda s: contacts.remove_group(s, name))
    typer.echo(f"{name}: removed ({members} member(s) kept as contacts)")


@groups_app.command("add")
def groups_add(name: str, numbers: list[str], config: ConfigOpt = Path("config.yaml")) -> None:
    """Put numbers in a group; a number that is not a contact yet becomes one."""
    country = _country(config)
    e164 = list(dict.fromkeys(_number(n, country) for n in numbers))
    _, joined = _run(config, lambda s: contacts.add_members(s, name, e164))
    typer.echo(f"{name}: {joined} added, {len(e164) - joined} already in it")


@groups_app.command("drop")
def groups_drop(name: str, numbers: list[str], config: ConfigOpt = Path("config.yaml")) -> None:
    """Take numbers out of a group (they stay contacts)."""
    country = _country(config)
    e164 = [_number(n, country) for n in numbers]
    _, dropped = _run(config, lambda s: contacts.remove_members(s, name, e164))
    typer.echo(f"{name}: {dropped} removed")


@groups_app.command("members")
def groups_members(name: str, config: ConfigOpt = Path("config.yaml"),
                   as_json: JsonOpt = False) -> None:
    """The group's contacts, as ``contacts list --group NAME`` shows them."""
    _run(config, lambda s: _print(_pages(s, name), as_json))
