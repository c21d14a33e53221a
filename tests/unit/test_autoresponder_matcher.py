from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoresponder.loader import load_rules, parse_rules
from autoresponder.matcher import is_help, is_optin, is_optout, match
from autoresponder.rules import RuleSet

EXAMPLE = Path(__file__).resolve().parents[2] / "rules.example.yaml"

RULES = parse_rules(textwrap.dedent("""\
    keywords:
      - keyword: HORAIRES
        aliases: [HORAIRE, Ouverture]
        reply: horaires
      - keyword: Été
        reply: ete
      - name: rdv
        regex: '^RDV\\s+(?P<date>\\d{2}/\\d{2})(?:\\s+(?P<heure>\\d+h))?'
      - keyword: "BON PLAN"
      - keyword: BON
      - name: exact
        regex: 'Code-XY'
        case_sensitive: true
      - keyword: PROMO
        to: ["36105"]
        reply: shortcode
      - keyword: PROMO
        to: ["+33 6 12 34 56 78"]
        reply: long number
      - name: anywhere
        regex: 'merci'
      - keyword: MERCI
    """))


def name_of(text: str, receiver: str = "36105") -> str | None:
    found = match(RULES, text, receiver)
    return found.rule.name if found else None


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("HORAIRES", "HORAIRES"),
        ("horaires ?", "HORAIRES"),
        ("  Horaires, svp", "HORAIRES"),
        ("horaire", "HORAIRES"),
        ("OUVERTURE demain ?", "HORAIRES"),
        ("ete", "Été"),
        ("ÉTÉ 2026", "Été"),
        ("été!", "Été"),
    ],
)
def test_keywords_aliases_accents_case(text: str, name: str) -> None:
    assert name_of(text) == name


@pytest.mark.parametrize("text", ["quels horaires ?", "horairesX", "horai", "", "   ", "😀"])
def test_keyword_is_the_first_whole_word_only(text: str) -> None:
    assert name_of(text) is None


def test_multi_word_keyword_before_its_first_word() -> None:
    assert name_of("bon plan svp") == "BON PLAN"
    assert name_of("Bon-plan") == "BON PLAN"
    assert name_of("bon appétit") == "BON"
    assert name_of("bon") == "BON"


def test_regex_groups() -> None:
    found = match(RULES, "rdv 12/03 14h", "")
    assert found is not None and found.rule.name == "rdv"
    assert found.groups == {"date": "12/03", "heure": "14h"}
    found = match(RULES, "RDV 12/03", "")
    assert found is not None and found.groups == {"date": "12/03", "heure": ""}
    assert name_of("rdv demain") is None


def test_regex_case_sensitivity() -> None:
    assert name_of("mon Code-XY") == "exact"
    assert name_of("mon code-xy") is None
    assert name_of("MERCI beaucoup") == "anywhere"  # the regex comes first in the file


def test_regex_searches_the_raw_text_anywhere() -> None:
    assert name_of("un grand Merci !") == "anywhere"


@pytest.mark.parametrize(
    ("receiver", "reply"),
    [("36105", "shortcode"), ("+33612345678", "long number"), ("33612345678", "long number"),
     ("0033612345678", None), ("38100", None), ("", None)],
)
def test_to_restriction(receiver: str, reply: str | None) -> None:
    found = match(RULES, "promo", receiver)
    assert (found.rule.reply if found else None) == reply


def test_first_rule_in_file_order_wins() -> None:
    rules = parse_rules(textwrap.dedent("""\
        keywords:
          - {regex: '\\d{5}', name: code}
          - {keyword: INFOS, name: infos}
          - {regex: 'infos', name: late}
        """))
    assert match(rules, "infos 75001", "").rule.name == "code"  # type: ignore[union-attr]
    assert match(rules, "infos", "").rule.name == "infos"  # type: ignore[union-attr]
    assert match(rules, "des infos", "").rule.name == "late"  # type: ignore[union-attr]


def test_regex_with_receiver_restriction() -> None:
    rules = parse_rules("keywords:\n  - {regex: 'x', to: ['36105']}\n")
    assert match(rules, "x", "36105") is not None
    assert match(rules, "x", "36106") is None


EXAMPLE_RULES = load_rules(EXAMPLE)


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "Stop.", "STÖP", "stop merci", "STOP SMS", "stop sms", "  arrêt ",
     "Arret!", "desabo", "Unsubscribe please", "STOP, merci", "stop-stop", "STOP 36105"],
)
def test_optout_variants(text: str) -> None:
    assert is_optout(EXAMPLE_RULES, text)
    assert is_optout(RuleSet(), text)


@pytest.mark.parametrize(
    "text",
    ["stopper la pub", "STOPPED", "merci stop", "non", "", "arrete", "top", "s top", "😀"],
)
def test_not_optout(text: str) -> None:
    assert not is_optout(EXAMPLE_RULES, text)


def test_optin_and_help() -> None:
    assert is_optin(EXAMPLE_RULES, "Start") and is_optin(RuleSet(), "start !")
    assert not is_optin(EXAMPLE_RULES, "started")
    assert is_help(EXAMPLE_RULES, "aide ?") and is_help(EXAMPLE_RULES, "Info")
    assert not is_help(RuleSet(), "info")  # the default help words are AIDE and HELP
    assert not is_help(EXAMPLE_RULES, "STOP")


def test_example_file_matches() -> None:
    assert match(EXAMPLE_RULES, "Horaires ?", "36105").rule.name == "HORAIRES"  # type: ignore[union-attr]
    assert match(EXAMPLE_RULES, "Horaires ?", "38000") is None
    assert match(EXAMPLE_RULES, "avis", "").rule.survey == "satisfaction"  # type: ignore[union-attr]


def _many_rules(count: int) -> RuleSet:
    lines = ["keywords:"]
    for n in range(count):
        if n % 10 == 9:
            lines.append(f"  - {{name: r{n}, regex: '^CODE{n}\\s+(?P<x>\\d+)'}}")
        else:
            lines.append(f"  - {{keyword: MOT{n}, aliases: [ALIAS{n}], reply: 'r{n}'}}")
    return parse_rules("\n".join(lines) + "\n")


def test_200_rules_are_fast() -> None:
    rules = _many_rules(200)
    texts = ["mot150 svp", "alias3", "code199 42", "rien du tout", "Mot0", "stop"] * 500
    assert match(rules, "mot150 svp", "").rule.name == "MOT150"  # type: ignore[union-attr]
    assert match(rules, "code199 42", "").groups == {"x": "42"}  # type: ignore[union-attr]
    start = time.perf_counter()
    for text in texts:
        match(rules, text, "36105")
    per_match = (time.perf_counter() - start) / len(texts)
    assert per_match < 50e-6, f"{per_match * 1e6:.1f} µs per match"


@given(st.text(), st.text())
def test_match_never_raises(text: str, receiver: str) -> None:
    match(RULES, text, receiver)
    is_optout(RULES, text)
    is_optin(RULES, text)
    is_help(RULES, text)
