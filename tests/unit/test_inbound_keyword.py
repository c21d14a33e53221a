"""The keyword step: first rule in file order; reply, tags, groups, forward, survey."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from store import contacts
from store.models import Contact, ContactGroup, GroupMember
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, replies, steps


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path)


@pytest.mark.parametrize("text", ["HORAIRES", "horaires svp", "Ouverture ?", "hôraires"])
def test_keyword_and_aliases_any_case_and_accents(bench: Bench, text: str) -> None:
    outcome = bench.sms(text)
    assert ("keyword", "keyword") in steps(outcome)
    assert outcome.rule == "HORAIRES"
    assert replies(outcome) == ["Bonjour , ouvert de 9h à 18h."]


def test_reply_uses_the_contact(bench: Bench) -> None:
    bench.db.run_sync(lambda s: s.add(Contact(number=PHONE, first_name="Léa")))
    assert replies(bench.sms("HORAIRES")) == ["Bonjour Léa, ouvert de 9h à 18h."]


def test_tags_and_groups_create_what_is_missing(bench: Bench) -> None:
    bench.sms("HORAIRES")
    bench.sms("HORAIRES")  # twice: no duplicate tag or membership
    contact = bench.query(lambda s: s.exec(select(Contact)).one())
    assert contact.number == PHONE and contact.tags == '["horaires"]'
    group = bench.query(lambda s: s.exec(select(ContactGroup)).one())
    assert group.name == "Curieux"
    assert len(bench.query(lambda s: list(s.exec(select(GroupMember))))) == 1
    fields = bench.query(lambda s: contacts.contact_fields(s, PHONE))
    assert fields["tags"] == ["horaires"] and fields["groups"] == ["Curieux"]


def test_regex_rule_with_named_groups(bench: Bench) -> None:
    outcome = bench.sms("RDV 12/03 le matin")
    assert outcome.rule == "rdv"
    assert replies(outcome) == ["RDV le 12/03 noté."]


def test_rule_for_another_receiving_number_does_not_match(bench: Bench) -> None:
    assert ("keyword", "pass") in steps(bench.sms("LONG"))
    outcome = bench.sms("LONG", receiver="+33700000000")
    assert replies(outcome) == ["Only on the long number."]
    assert bench.messages()[-1].sender == "+33700000000"  # the reply comes from there


def test_matched_sms_goes_on_to_forward_but_not_to_fallback(bench: Bench) -> None:
    outcome = bench.sms("HORAIRES")
    assert steps(outcome)[-3:] == [("keyword", "keyword"), ("forward", "pass"),
                                   ("fallback", "pass")]


def test_template_in_the_sms_is_data(bench: Bench) -> None:
    from tests.unit.inbound_helpers import rules

    ruleset = rules('keywords:\n  - keyword: ECHO\n    reply: "Reçu : {{ sms.text }}"\n')
    bench.ruleset = ruleset
    outcome = bench.sms("ECHO {{ ''.__class__.__mro__ }} {% for x in range(9) %}x{% endfor %}")
    assert replies(outcome) == [
        "Reçu : ECHO {{ ''.__class__.__mro__ }} {% for x in range(9) %}x{% endfor %}"]


def test_reply_template_failing_is_reported_not_raised(bench: Bench) -> None:
    from tests.unit.inbound_helpers import rules

    bench.ruleset = rules('keywords:\n  - keyword: X\n    reply: "{{ contact.first_name.nope }}"\n')
    outcome = bench.sms("X")
    keyword = next(d for d in outcome.decisions if d.step == "keyword")
    assert "reply not sent" in keyword.reason and not replies(outcome)
