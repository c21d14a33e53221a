"""Contacts as the inbound pipeline sees them: fields for templates, tags, groups."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam
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
    stmt = (
        select(ContactGroup.name)
        .join(GroupMember, col(GroupMember.group_id) == col(ContactGroup.id))
        .where(GroupMember.contact_id == contact.id)
        .order_by(col(ContactGroup.name))
    )
    fields["groups"] = list(session.exec(stmt))
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


