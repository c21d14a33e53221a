"""Contacts in bulk, for imports: chunked core statements, add or update."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from store.contacts import CONTACT_FIELDS, _dump, _json
from store.models import Contact, GroupMember, utcnow

_C = Contact.__table__  # type: ignore[attr-defined]
_M = GroupMember.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # rows per statement; well under SQLite's bound-parameter limit


@dataclass
class UpsertCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0  # already there: skipped (mode add) or the same values (update)

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def upsert_contacts(session: Session, rows: Sequence[dict[str, Any]], *, mode: str = "add",
                    group_ids: Sequence[int] = ()) -> UpsertCounts:
    """Insert contacts in bulk; existing numbers are left alone (``add``) or get the
    non-empty values given, custom fields merged (``update``). Every row's contact
    joins ``group_ids``. A row is ``{"number", CONTACT_FIELDS..., "fields": dict}``;
    numbers are E.164 and unique in ``rows``."""
    if mode not in ("add", "update"):
        raise ValueError(f"mode {mode!r}: expected 'add' or 'update'")
    connection = session.connection()
    counts = UpsertCounts()
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        counts += _upsert_chunk(connection, chunk, mode, group_ids)
    return counts


def _upsert_chunk(connection: Any, chunk: Sequence[dict[str, Any]], mode: str,
                  group_ids: Sequence[int]) -> UpsertCounts:
    now = utcnow()
    counts = UpsertCounts()
    wanted = list(dict.fromkeys(r["number"] for r in chunk))
    existing = {row.number: row for row in connection.execute(
        sa_select(_C.c.id, _C.c.number, *(_C.c[k] for k in CONTACT_FIELDS), _C.c.fields)
        .where(_C.c.number.in_(wanted)))}
    ids = [row.id for row in existing.values()]
    new, changes = [], []
    for row in chunk:
        old = existing.get(row["number"])
        if old is None:
            new.append({"number": row["number"], "fields": _dump(row.get("fields") or {}),
                        "tags": "[]", "created_at": now, "updated_at": now,
                        **{k: row.get(k) or None for k in CONTACT_FIELDS}})
            continue
        change = _merge(old, row) if mode == "update" else None
        if change is None:
            counts.unchanged += 1
        else:
            changes.append(change)
    if new:
        result = connection.execute(insert(_C).returning(_C.c.id), new)
        ids.extend(result.scalars().all())
        counts.added = len(new)
    if changes:
        values = {k: bindparam(f"v_{k}") for k in (*CONTACT_FIELDS, "fields")}
        connection.execute(update(_C).where(_C.c.id == bindparam("v_id"))
                           .values(updated_at=now, **values), changes)
        counts.updated = len(changes)
    if group_ids and ids:
        _insert_ignore(connection, _M, [{"group_id": g, "contact_id": c}
                                        for g in group_ids for c in ids])
    return counts


def _merge(old: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    """The update parameters for an existing contact, None when nothing changes."""
    merged = {k: row.get(k) or getattr(old, k) for k in CONTACT_FIELDS}
    custom = _json(old.fields, {})
    custom = dict(custom) if isinstance(custom, dict) else {}
    custom.update(row.get("fields") or {})
    fields = _dump(custom)
    if fields == (old.fields or "{}") and all(merged[k] == getattr(old, k)
                                              for k in CONTACT_FIELDS):
        return None
    return {"v_id": old.id, "v_fields": fields, **{f"v_{k}": v for k, v in merged.items()}}


def _insert_ignore(connection: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose key already exists (both backends)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    connection.execute(dialect_insert(table).on_conflict_do_nothing(), rows)
