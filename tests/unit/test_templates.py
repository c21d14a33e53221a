"""Saved templates: the store on SQLite, and planning a send with ``template`` set."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from campaigns.plan import Lookups, Plan, UserPolicy, plan_send
from campaigns.queue import prepare
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from store import contacts, contacts_bulk, templates
from store.db import make_engine

PARIS = ZoneInfo("Europe/Paris")
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
MOBILE = "+33612345678"
ALICE = UserPolicy(email="alice@example.com")
SAVED = {"rappel": "Rappel : rendez-vous demain à 9h",
         "bonjour": "Bonjour {{ first_name }}, à demain"}


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'mail2sms.db'}")
    with Session(engine) as s:
        yield s
    engine.dispose()


# --- store ---------------------------------------------------------------------------


def test_add_then_get_ignores_case_and_keeps_the_name_as_given(session: Session) -> None:
    templates.add(session, "Rappel", "Rendez-vous demain", description="RDV",
                  created_by="alice@example.com")
    session.commit()
    for name in ("Rappel", "rappel", "RAPPEL", " rappel "):
        row = templates.get(session, name)
        assert row is not None
        assert (row.name, row.text, row.description, row.created_by) == (
            "Rappel", "Rendez-vous demain", "RDV", "alice@example.com")
    assert templates.get(session, "other") is None


def test_a_name_differing_only_by_case_is_refused(session: Session) -> None:
    templates.add(session, "Rappel", "a")
    with pytest.raises(templates.TemplateExists, match="Rappel"):
        templates.add(session, "RAPPEL", "b")


def test_edit_changes_what_is_given_and_the_update_time(session: Session) -> None:
    row = templates.add(session, "rappel", "old", description="keep")
    before = row.updated_at
    edited = templates.edit(session, "RAPPEL", text="new")
    assert edited is not None
    assert (edited.text, edited.description) == ("new", "keep")
    assert edited.updated_at >= before
    assert templates.edit(session, "missing", text="x") is None


def test_remove_and_list_by_name(session: Session) -> None:
    for name in ("zeta", "Alpha", "beta"):
        templates.add(session, name, f"text of {name}")
    assert templates.names(session) == ["Alpha", "beta", "zeta"]
    assert templates.remove(session, "ALPHA") is True
    assert templates.remove(session, "alpha") is False
    assert [t.name for t in templates.list_all(session)] == ["beta", "zeta"]


# --- planning ------------------------------------------------------------------------


def lookups(**extra: object) -> Lookups:
    return Lookups(template_text=lambda name: SAVED.get(name.lower()),
                   template_names=sorted(SAVED), **extra)  # type: ignore[arg-type]


def plan(template: str | None, text: str = "", recipients: list[str] | None = None,
         **extra: object) -> Plan:
    request = SendRequest(user=ALICE.email, text=text, template=template,
                          recipients=[MOBILE] if recipients is None else recipients)
    return plan_send(request, policy=ALICE, compliance=ComplianceConfig(), shortcode="36105",
                     lookups=lookups(**extra), now=TUESDAY)


def test_the_templates_text_is_the_sms_text() -> None:
    result = plan("Rappel")
    assert result.refused is None, result.refused
    assert [(m.to, m.status, m.text) for m in result.messages] == [
        (MOBILE, "queued", SAVED["rappel"])]
    assert result.text == SAVED["rappel"]


def test_an_unknown_template_is_refused_naming_the_known_ones() -> None:
    result = plan("nope")
    assert result.refused == "unknown template 'nope': known templates: bonjour, rappel"
    assert result.messages == []


def test_an_unknown_template_when_none_is_saved() -> None:
    request = SendRequest(user=ALICE.email, text="", template="x", recipients=[MOBILE])
    result = plan_send(request, policy=ALICE, compliance=ComplianceConfig(),
                       shortcode="36105", lookups=Lookups(), now=TUESDAY)
    assert result.refused == "unknown template 'x': known templates: none is saved yet"


def test_a_template_and_a_body_are_refused() -> None:
    result = plan("rappel", text="Bonjour")
    assert result.refused == "[template:rappel] and a body: use one or the other"
    assert result.messages == []


def test_a_blank_body_with_a_template_is_fine() -> None:
    assert plan("rappel", text="  \n").refused is None


def test_fields_are_filled_per_group_member() -> None:
    members = {"Staff": [(MOBILE, {"first_name": "Ann"}), ("+33698765432", {})]}
    request = SendRequest(user=ALICE.email, text="", template="bonjour", groups=["Staff"])
    result = plan_send(request, policy=ALICE, compliance=ComplianceConfig(),
                       shortcode="36105", lookups=lookups(group_members=members.get),
                       now=TUESDAY)
    assert result.refused is None, result.refused
    by_number = {m.to: m for m in result.messages}
    assert by_number[MOBILE].text == "Bonjour Ann, à demain"
    assert by_number["+33698765432"].status == "skipped"
    assert "first_name" in (by_number["+33698765432"].reason or "")


def test_prepare_looks_the_template_up_in_the_database(session: Session) -> None:
    templates.add(session, "Bonjour", SAVED["bonjour"])
    contacts_bulk.upsert_contacts(session, [{"number": MOBILE, "first_name": "Chloé"}],
                             group_ids=contacts.ensure_groups(session, ["Staff"]))
    session.commit()
    request = SendRequest(user=ALICE.email, text="", template="BONJOUR", groups=["staff"])
    result = prepare(session, request, policy=ALICE, compliance=ComplianceConfig(),
                     shortcode="36105", now=TUESDAY)
    assert result.refused is None, result.refused
    assert [m.text for m in result.messages] == ["Bonjour Chloé, à demain"]
    unknown = prepare(session, SendRequest(user=ALICE.email, text="", template="x",
                                           recipients=[MOBILE]),
                      policy=ALICE, compliance=ComplianceConfig(), shortcode="36105",
                      now=TUESDAY)
    assert unknown.refused == "unknown template 'x': known templates: Bonjour"
