"""Saved SMS texts with a name (the ``templates`` table).

Names keep the case they were given; every lookup ignores case, and two names that
differ only by case cannot both exist.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from store.models import Template, utcnow


class TemplateExists(ValueError):
    """A template with that name (whatever its case) is already saved."""


def get(session: Session, name: str) -> Template | None:
    """The template called ``name``, case ignored."""
    stmt = select(Template).where(func.lower(col(Template.name)) == name.strip().lower())
    return session.exec(stmt).first()


def add(session: Session, name: str, text: str, *, description: str | None = None,
        created_by: str | None = None) -> Template:
    name = name.strip()
    existing = get(session, name)
    if existing is not None:
        raise TemplateExists(f"a template called {existing.name!r} already exists")
    row = Template(name=name, text=text, description=description, created_by=created_by)
    session.add(row)
    session.flush()
    return row


def edit(session: Session, name: str, *, text: str | None = None,
         description: str | None = None) -> Template | None:
    """Change what is given; None when there is no such template."""
    row = get(session, name)
    if row is None:
        return None
    if text is not None:
        row.text = text
    if description is not None:
        row.description = description
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def remove(session: Session, name: str) -> bool:
    row = get(session, name)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_all(session: Session) -> list[Template]:
    """Every template, by name (case ignored)."""
    stmt = select(Template).order_by(func.lower(col(Template.name)))
    return list(session.exec(stmt).all())


def names(session: Session) -> list[str]:
    return [row.name for row in list_all(session)]
