"""Contacts as the inbound pipeline sees them: fields for templates, tags, groups."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store.models import Contact, ContactGroup, GroupMember, utcnow

_CONTACT = select(Contact).where(Contact.number == bindparam("number"))

#: Fields every contact has for templates, empty when unknown.
CONTACT_FIELDS = ("first_name", "last_name", "email", "birthday")


def contact_fields(session: Session, number: str) -> dict[str, Any]:
    """What templates see as ``contact``: standard fields ('' when unknown), ``number``,
    ``tags``, ``groups``, ``known`` and the custom fields."""
    contact = session.execute(_CONTACT, {"number": number}).scalars().first()
    if contact is None:
        return fields_of(number, None, [])
    stmt = (
        select(ContactGroup.name)
        .join(GroupMember, col(GroupMember.group_id) == col(ContactGroup.id))
        .where(GroupMember.contact_id == contact.id)
        .order_by(col(ContactGroup.name))
    )
    return fields_of(number, contact, list(session.exec(stmt)))


def fields_of(number: str, contact: Any, groups: list[str]) -> dict[str, Any]:
    """``contact_fields`` from a contact (ORM object or row, None when unknown) and the
    names of its groups."""
    fields: dict[str, Any] = dict.fromkeys(CONTACT_FIELDS, "")
    fields.update(number=number, tags=[], groups=[], known=contact is not None)
    if contact is None:
        return fields
    custom = _json(contact.fields, {})
    if isinstance(custom, dict):
        # custom fields never hide the standard ones
        fields.update({k: v for k, v in custom.items() if k not in fields})
    for name in CONTACT_FIELDS:
        fields[name] = getattr(contact, name) or ""
    fields["tags"] = _json(contact.tags, [])
    fields["groups"] = groups
    return fields


def _json(text: str, default: Any) -> Any:
    try:
        return json.loads(text or "null") or default
    except ValueError:
        return default


def _contact(session: Session, number: str) -> Contact:
    """The contact of ``number``, created (number only) when missing."""
    contact = session.exec(select(Contact).where(Contact.number == number)).first()
    if contact is not None:
        return contact
    try:
        with session.begin_nested():
            contact = Contact(number=number)
            session.add(contact)
            session.flush()
    except IntegrityError:  # created meanwhile by a concurrent SMS from the same number
        contact = session.exec(select(Contact).where(Contact.number == number)).one()
    return contact


def add_tags(session: Session, number: str, tags: Sequence[str]) -> list[str]:
    """Add tags to the number's contact (created when missing); the tags it now has."""
    contact = _contact(session, number)
    current = _json(contact.tags, [])
    current = current if isinstance(current, list) else []
    added = [t for t in tags if t not in current]
    if added:
        contact.tags = json.dumps(current + added, ensure_ascii=False)
        contact.updated_at = utcnow()
        session.add(contact)
        session.flush()
    return current + added


def add_to_groups(session: Session, number: str, groups: Sequence[str]) -> list[str]:
    """Put the number's contact in ``groups`` (both created when missing); the groups
    it was not in before."""
    contact = _contact(session, number)
    joined = []
    for name in groups:
        group = session.exec(select(ContactGroup).where(ContactGroup.name == name)).first()
        if group is None:
            try:
                with session.begin_nested():
                    group = ContactGroup(name=name)
                    session.add(group)
                    session.flush()
            except IntegrityError:
                group = session.exec(select(ContactGroup).where(ContactGroup.name == name)).one()
        assert group.id is not None and contact.id is not None
        if session.get(GroupMember, (group.id, contact.id)) is None:
            session.add(GroupMember(group_id=group.id, contact_id=contact.id))
            session.flush()
            joined.append(name)
    return joined




# --- directory: contacts, groups, bulk import ----------------------------------------
#
# Core statements on the tables: imports and group sends touch 10^5–10^6 rows, where
# ORM objects would cost more than the SQL.

_C = Contact.__table__  # type: ignore[attr-defined]
_G = ContactGroup.__table__  # type: ignore[attr-defined]
_M = GroupMember.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # rows per statement; well under SQLite's bound-parameter limit
_GROUP_NAME = re.compile(r"^[\w-]{1,64}$")


class ContactError(ValueError):
    """A directory change that cannot be made; the message says why."""


def fold_name(name: str) -> str:
    """The form in which group names are compared: no case, no accents."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def custom_fields(contact: Contact) -> dict[str, Any]:
    value = _json(contact.fields, {})
    return value if isinstance(value, dict) else {}


def get_contact(session: Session, number: str) -> Contact | None:
    return session.exec(select(Contact).where(Contact.number == number)).first()


def add_contact(session: Session, number: str, values: dict[str, str | None],
                fields: dict[str, str] | None = None) -> Contact:
    """A new contact; ``values`` holds standard fields (CONTACT_FIELDS)."""
    if get_contact(session, number) is not None:
        raise ContactError(f"{number} is already a contact (use edit)")
    contact = Contact(number=number, fields=_dump(fields or {}),
                      **{k: v or None for k, v in values.items() if k in CONTACT_FIELDS})
    session.add(contact)
    session.flush()
    return contact


def edit_contact(session: Session, number: str, values: dict[str, str | None],
                 fields: dict[str, str | None] | None = None) -> Contact:
    """Change the given standard fields ('' or None clears one) and custom fields
    (None removes one); the others stay."""
    contact = get_contact(session, number)
    if contact is None:
        raise ContactError(f"{number} is not a contact")
    for key, value in values.items():
        if key in CONTACT_FIELDS:
            setattr(contact, key, value or None)
    if fields:
        merged = custom_fields(contact)
        for key, value in fields.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        contact.fields = _dump(merged)
    contact.updated_at = utcnow()
    session.add(contact)
    session.flush()
    return contact


def remove_contact(session: Session, number: str) -> bool:
    """Delete a contact and its group memberships; False when there was none."""
    contact = get_contact(session, number)
    if contact is None:
        return False
    session.execute(delete(_M).where(_M.c.contact_id == contact.id))
    session.delete(contact)
    session.flush()
    return True


def _in_group(stmt: Any, group_ids: Sequence[int]) -> Any:
    members = sa_select(_M.c.contact_id).where(_M.c.group_id.in_(list(group_ids)))
    return stmt.where(col(Contact.id).in_(members))


def list_contacts(session: Session, *, group: str | None = None, offset: int = 0,
                  limit: int | None = 100) -> list[Contact]:
    """Contacts by number, a page at a time; UnknownGroup when ``group`` is not one."""
    stmt = select(Contact).order_by(col(Contact.number)).offset(offset).limit(limit)
    if group is not None:
        stmt = _in_group(stmt, _require_group(session, group))
    return list(session.exec(stmt))


def count_contacts(session: Session, *, group: str | None = None) -> int:
    stmt = select(func.count()).select_from(Contact)
    if group is not None:
        stmt = _in_group(stmt, _require_group(session, group))
    return int(session.exec(stmt).one())


def search_contacts(session: Session, texts: Sequence[str], *, limit: int = 100
                    ) -> list[Contact]:
    """Contacts whose number, names, email or custom fields contain one of ``texts``
    (case-insensitive)."""
    columns = (Contact.number, Contact.first_name, Contact.last_name, Contact.email,
               Contact.fields)
    tests = [func.lower(c).contains(t.lower(), autoescape=True)
             for t in texts if t for c in columns]
    if not tests:
        return []
    stmt = select(Contact).where(or_(*tests)).order_by(col(Contact.number)).limit(limit)
    return list(session.exec(stmt))


def iter_contacts(session: Session, *, group: str | None = None, batch: int = 2000
                  ) -> Iterator[Contact]:
    """Every contact (of a group) by id, fetched a page at a time (bounded memory)."""
    ids = _require_group(session, group) if group is not None else None
    last = 0
    while True:
        stmt = select(Contact).where(col(Contact.id) > last).order_by(col(Contact.id))
        if ids is not None:
            stmt = _in_group(stmt, ids)
        page = list(session.exec(stmt.limit(batch)))
        for contact in page:
            yield contact
            session.expunge(contact)  # the identity map must not keep every contact
        if len(page) < batch:
            return
        last = page[-1].id or 0


def groups_of(session: Session, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """Group names of each contact, by contact id."""
    out: dict[int, list[str]] = {}
    for chunk in _chunks(list(contact_ids)):
        stmt = (sa_select(_M.c.contact_id, _G.c.name).join(_G, _G.c.id == _M.c.group_id)
                .where(_M.c.contact_id.in_(chunk)).order_by(_G.c.name))
        for contact_id, name in session.execute(stmt):
            out.setdefault(contact_id, []).append(name)
    return out


# --- groups ------------------------------------------------------------------------


class UnknownGroup(ContactError):
    pass


def group_ids(session: Session, name: str) -> list[int]:
    """Ids of the groups called ``name``, case and accents ignored (several only when
    a keyword rule created a look-alike)."""
    key = fold_name(name)
    return [gid for gid, gname in session.execute(sa_select(_G.c.id, _G.c.name))
            if fold_name(gname) == key]


def _require_group(session: Session, name: str) -> list[int]:
    ids = group_ids(session, name)
    if not ids:
        raise UnknownGroup(f"no group called {name!r}")
    return ids


def _check_name(session: Session, name: str) -> None:
    if not _GROUP_NAME.match(name):
        raise ContactError(f"group name {name!r}: letters, digits, '_' and '-' only (at most "
                           "64), so that #Name works in an email subject")
    if group_ids(session, name):
        raise ContactError(f"a group called {name!r} already exists (case and accents "
                           "are ignored)")


def create_group(session: Session, name: str) -> int:
    _check_name(session, name)
    return int(session.execute(insert(_G).returning(_G.c.id),
                               {"name": name, "created_at": utcnow()}).scalar_one())


def ensure_groups(session: Session, names: Sequence[str]) -> list[int]:
    """Ids of the named groups, creating those that do not exist."""
    ids: list[int] = []
    for name in names:
        found = group_ids(session, name)
        ids.extend(found[:1] or [create_group(session, name)])
    return ids


def rename_group(session: Session, old: str, new: str) -> None:
    ids = _require_group(session, old)
    if fold_name(old) != fold_name(new):
        _check_name(session, new)
    elif not _GROUP_NAME.match(new):
        raise ContactError(f"group name {new!r}: letters, digits, '_' and '-' only")
    session.execute(update(_G).where(_G.c.id == ids[0]).values(name=new))


def remove_group(session: Session, name: str) -> int:
    """Delete a group; its contacts stay. Returns how many members it had."""
    ids = _require_group(session, name)
    members = session.execute(delete(_M).where(_M.c.group_id.in_(ids))).rowcount
    session.execute(delete(_G).where(_G.c.id.in_(ids)))
    return int(members or 0)


def list_groups(session: Session) -> list[tuple[str, int]]:
    """Every group with its member count, by name."""
    stmt = (sa_select(_G.c.name, func.count(_M.c.contact_id))
            .select_from(_G.outerjoin(_M, _M.c.group_id == _G.c.id))
            .group_by(_G.c.id, _G.c.name).order_by(_G.c.name))
    return [(name, int(count)) for name, count in session.execute(stmt)]


def add_members(session: Session, name: str, numbers: Sequence[str]) -> int:
    """Put contacts (created, number only, when missing) in a group; how many joined."""
    from store.contacts_bulk import upsert_contacts  # it builds on this module

    ids = _require_group(session, name)
    before = count_contacts(session, group=name)
    upsert_contacts(session, [{"number": n} for n in numbers], mode="add",
                    group_ids=ids[:1])
    return count_contacts(session, group=name) - before


def remove_members(session: Session, name: str, numbers: Sequence[str]) -> int:
    ids = _require_group(session, name)
    contacts = sa_select(_C.c.id).where(_C.c.number.in_(list(numbers)))
    stmt = delete(_M).where(_M.c.group_id.in_(ids), _M.c.contact_id.in_(contacts))
    return int(session.execute(stmt).rowcount or 0)


def group_members(session: Session, name: str) -> list[tuple[str, dict[str, Any]]] | None:
    """``(number, fields)`` of every member, for personalised sends; None when there is
    no such group. One query whatever the size. A field the contact lacks is absent,
    not empty, so the text's own rule applies (``default(...)`` or skipped)."""
    ids = group_ids(session, name)
    if not ids:
        return None
    members = sa_select(_M.c.contact_id).where(_M.c.group_id.in_(ids))
    stmt = (sa_select(_C.c.number, _C.c.first_name, _C.c.last_name, _C.c.email,
                      _C.c.birthday, _C.c.fields)
            .where(_C.c.id.in_(members)).order_by(_C.c.id))
    out: list[tuple[str, dict[str, Any]]] = []
    for number, first, last, email, birthday, custom in session.execute(stmt):
        fields: dict[str, Any] = {}
        if custom and custom != "{}":
            loaded = _json(custom, {})
            if isinstance(loaded, dict):
                fields.update(loaded)
        for key, value in (("first_name", first), ("last_name", last), ("email", email),
                           ("birthday", birthday)):
            if value:
                fields[key] = value
        fields["number"] = number
        out.append((number, fields))
    return out


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
