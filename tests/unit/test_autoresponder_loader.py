from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from autoresponder.loader import RuleProblem, RulesError, load_rules, parse_rules
from autoresponder.rules import DEFAULT_HELP, DEFAULT_OPTIN, DEFAULT_OPTOUT

EXAMPLE = Path(__file__).resolve().parents[2] / "rules.example.yaml"


def problems(text: str) -> list[RuleProblem]:
    with pytest.raises(RulesError) as caught:
        parse_rules(textwrap.dedent(text), file="rules.yaml")
    return caught.value.problems


def only(text: str) -> RuleProblem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_example_file_loads_without_problem() -> None:
    rules = load_rules(EXAMPLE)
    assert [r.name for r in rules.rules] == ["HORAIRES", "BON PLAN", "rdv", "AVIS", "CRENEAU"]
    horaires = rules.rules[0]
    assert horaires.keywords == ("HORAIRES", "HORAIRE", "OUVERTURE")
    assert horaires.to == ("36105",)
    assert horaires.forward_to == ("accueil@example.com",)
    assert horaires.tags == ("horaires",) and horaires.add_to_groups == ("Curieux",)
    assert horaires.where.line == 45 and horaires.where.file == str(EXAMPLE)
    assert rules.optout.keywords == ("STOP", "ARRET", "STOP SMS", "DESABO", "UNSUBSCRIBE")
    assert rules.help.keywords == ("AIDE", "HELP", "INFO")
    assert rules.fallback.enabled and rules.fallback.reply
    survey = rules.surveys["satisfaction"]
    assert survey.timeout == timedelta(hours=24) and survey.max_retries == 2
    assert list(survey.questions) == ["note", "pourquoi", "recommande"]
    assert survey.first == "note"
    note = survey.questions["note"]
    assert (note.kind, note.minimum, note.maximum) == ("integer", 1, 5)
    assert note.branches == {"1": "pourquoi", "2": "pourquoi"} and note.next == "recommande"
    assert rules.surveys["creneau"].questions["moment"].choices == {"A": "Matin",
                                                                     "B": "Après-midi"}


def test_empty_file_gives_defaults() -> None:
    rules = parse_rules("")
    assert rules.optout.keywords == DEFAULT_OPTOUT and rules.optout.reply is None
    assert rules.optin.keywords == DEFAULT_OPTIN and rules.optin.reply is None
    assert rules.help.keywords == DEFAULT_HELP and rules.help.reply is None
    assert rules.rules == () and rules.surveys == {} and not rules.fallback.enabled


def test_problem_prints_as_file_line_where_message() -> None:
    problem = RuleProblem("rules.yaml", 4, "keywords.0.regex", "bad regex")
    assert str(problem) == "rules.yaml:4: keywords.0.regex: bad regex"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "absent.yaml")


def test_yaml_syntax_error_has_its_line() -> None:
    problem = only("""\
        keywords:
          - keyword: A
            reply: [unclosed
          - keyword: B
        """)
    assert problem.line == 4 and "YAML syntax" in problem.message


def test_unknown_keys_list_the_known_ones() -> None:
    found = problems("""\
        colour: red
        keywords:
          - keyword: A
            replies: "x"
        """)
    assert [(p.line, p.where) for p in found] == [(1, "colour"), (4, "keywords.0.replies")]
    assert "known keys: optout, optin, help, keywords, surveys, fallback" in found[0].message
    assert "'replies'" in found[1].message and "reply" in found[1].message


def test_key_given_twice() -> None:
    problem = only("""\
        keywords:
          - keyword: A
            reply: one
            reply: two
        """)
    assert problem.line == 4 and "first on line 3" in problem.message


def test_duplicate_keyword_names_both_lines() -> None:
    problem = only("""\
        keywords:
          - keyword: Horaires
            reply: a
          - keyword: INFOS
            aliases: [horaires]
        """)
    assert problem.line == 5
    assert "'HORAIRES'" in problem.message and "on line 2" in problem.message


def test_duplicate_keyword_with_accents_and_case() -> None:
    problem = only("""\
        keywords:
          - keyword: été
          - keyword: ETE
        """)
    assert problem.line == 3 and "on line 2" in problem.message


def test_same_keyword_on_different_receivers_is_allowed() -> None:
    rules = parse_rules(textwrap.dedent("""\
        keywords:
          - {keyword: PROMO, to: ["36105"], reply: a}
          - {keyword: PROMO, to: ["+33 6 00 00 00 01"], reply: b}
        """))
    assert rules.rules[1].to == ("33600000001",)
    problem = only("""\
        keywords:
          - {keyword: PROMO, to: ["36105"], reply: a}
          - {keyword: PROMO, reply: b}
        """)
    assert problem.line == 3


@pytest.mark.parametrize(
    ("keyword", "kind"),
    [("STOP", "opt-out"), ("arrêt", "opt-out"), ("STOP PUB", "opt-out"), ("START", "opt-in"),
     ("aide", "help")],
)
def test_keyword_shadowing_a_reserved_word(keyword: str, kind: str) -> None:
    problem = only(f"""\
        keywords:
          - keyword: OK
          - keyword: "{keyword}"
        """)
    assert problem.line == 3 and f"{kind} word" in problem.message


def test_shadowing_uses_the_files_own_lists() -> None:
    rules = parse_rules("optout: {keywords: [STOP]}\nkeywords: [{keyword: ARRET, reply: x}]\n")
    assert rules.rules[0].keywords == ("ARRET",)
    problem = only("help: {keywords: [INFO]}\nkeywords: [{keyword: info}]\n")
    assert problem.line == 2 and "help word" in problem.message


def test_word_in_two_lists() -> None:
    problem = only("optout: {keywords: [STOP]}\nhelp: {keywords: [HELP, stop]}\n")
    assert problem.line == 2 and "opt-out" in problem.message


def test_unknown_survey() -> None:
    problem = only("""\
        keywords:
          - keyword: AVIS
            survey: satisfation
        surveys:
          satisfaction:
            questions: [{id: a, text: "?"}]
        """)
    assert problem.line == 3
    assert "'satisfation'" in problem.message and "satisfaction" in problem.message


def test_bad_regex_gives_res_message() -> None:
    problem = only("""\
        keywords:
          - name: rdv
            regex: '^RDV (?P<date'
        """)
    assert problem.line == 3 and "bad regex" in problem.message
    assert "missing >" in problem.message


def test_regex_is_case_insensitive_unless_told() -> None:
    rules = parse_rules("keywords:\n  - {regex: 'abc'}\n  - {regex: 'x', case_sensitive: true}\n")
    assert rules.rules[0].regex is not None and rules.rules[0].regex.search("ABC")
    assert rules.rules[1].regex is not None and not rules.rules[1].regex.search("X")


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ("optout:\n  reply: 'ok {{ contact.first_name'\n", 2, "optout.reply"),
        ("keywords:\n  - keyword: A\n    reply: '{% if %}'\n", 3, "keywords.0.reply"),
        ("fallback:\n  enabled: true\n  reply: '{{ }}'\n", 3, "fallback.reply"),
        ("surveys:\n  s:\n    intro: '{{ a'\n    questions: [{id: q, text: x}]\n", 3,
         "surveys.s.intro"),
        ("surveys:\n  s:\n    questions:\n      - id: q\n        text: '{{ a'\n", 5,
         "surveys.s.questions.0.text"),
        # in a literal block, the line inside the text is added
        ("keywords:\n  - keyword: A\n    reply: |\n      Bonjour\n      {{ x\n", 5,
         "keywords.0.reply"),
    ],
)
def test_template_syntax_error(text: str, line: int, where: str) -> None:
    problem = only(text)
    assert (problem.line, problem.where) == (line, where)
    assert "template" in problem.message and "expected" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "name"),
    [
        ("keywords:\n  - keyword: A\n    reply: 'Bonjour {{ first_name }}'\n", 3, "first_name"),
        ("help:\n  reply: '{{ match.x }}'\n", 2, "match"),
        ("keywords:\n  - keyword: A\n    reply: '{{ answers.q }}'\n", 3, "answers"),
        ("surveys:\n  s:\n    end: '{{ match.x }}'\n    questions: [{id: q, text: x}]\n", 3,
         "match"),
    ],
)
def test_undefined_template_variable(text: str, line: int, name: str) -> None:
    problem = only(text)
    assert problem.line == line
    assert f"undefined template variable {name!r}" in problem.message
    assert "may use: contact" in problem.message


def test_allowed_template_variables() -> None:
    parse_rules(textwrap.dedent("""\
        keywords:
          - regex: '^RDV (?P<date>\\S+)'
            reply: "{{ contact.first_name | default('') }} {{ sms.text }} {{ match.date }}"
        surveys:
          s:
            end: "{{ answers.q }} {{ contact.email }} {{ sms.sender }}"
            questions: [{id: q, text: "{{ contact.last_name }}"}]
        """))


def test_match_attribute_must_be_a_named_group() -> None:
    problem = only("""\
        keywords:
          - regex: '^RDV (?P<date>\\S+)'
            reply: "{{ match.heure }}"
        """)
    assert problem.line == 3 and "match.heure" in problem.message and "date" in problem.message


SURVEY = """\
surveys:
  s:
    questions:
      - id: note
        text: "Note ?"
        type: integer
        min: 1
        max: 5
        next: {{"1": pourquoi, "*": {target}}}
      - id: pourquoi
        text: "Pourquoi ?"
      - id: fin
        text: "{{{{ answers.note }}}}"
        type: {kind}
"""


def test_survey_next_to_unknown_question() -> None:
    problem = only(SURVEY.format(target="recommande", kind="text"))
    assert problem.line == 9 and problem.where == "surveys.s.questions.0.next.*"
    assert "'recommande'" in problem.message and "note, pourquoi, fin" in problem.message


def test_survey_plain_next_to_unknown_question() -> None:
    problem = only("surveys:\n  s:\n    questions:\n      - {id: a, text: x}\n"
                   "      - id: b\n        text: y\n        next: c\n")
    assert problem.line == 7 and "'c'" in problem.message


def test_unknown_question_type() -> None:
    problem = only(SURVEY.format(target="fin", kind="number"))
    assert problem.line == 14 and "choice, integer, text, yes_no" in problem.message


def test_choice_question_without_choices() -> None:
    problem = only(SURVEY.format(target="fin", kind="choice"))
    assert problem.line == 12 and "needs 'choices'" in problem.message


def test_integer_min_greater_than_max() -> None:
    problem = only(SURVEY.format(target="fin", kind="text").replace("min: 1", "min: 9"))
    assert problem.line == 7 and "min (9) is greater than max (5)" in problem.message


@pytest.mark.parametrize(("value", "expected"), [
    ("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)), ("2d", timedelta(days=2)),
    ("90", timedelta(seconds=90)), ("45s", timedelta(seconds=45)),
])
def test_timeouts(value: str, expected: timedelta) -> None:
    text = f"surveys:\n  s:\n    timeout: {value}\n    questions: [{{id: q, text: x}}]\n"
    rules = parse_rules(text)
    assert rules.surveys["s"].timeout == expected


@pytest.mark.parametrize("value", ["3 weeks", "1.5h", "0", "-1h", "h", "true"])
def test_bad_timeout(value: str) -> None:
    problem = only(f"surveys:\n  s:\n    timeout: {value}\n    questions: [{{id: q, text: x}}]\n")
    assert problem.line == 3 and "30m, 24h, 2d" in problem.message


def test_branch_keys_are_checked_and_normalised() -> None:
    rules = parse_rules(textwrap.dedent("""\
        surveys:
          s:
            questions:
              - id: q
                text: x
                type: yes_no
                next: {oui: a, NO: null}
              - id: c
                text: y
                type: choice
                choices: {A: Matin, B: Après-midi}
                next: {après-midi: a}
              - {id: a, text: z}
        """))
    questions = rules.surveys["s"].questions
    assert questions["q"].branches == {"yes": "a", "no": None} and questions["q"].next == "c"
    assert questions["c"].branches == {"B": "a"}
    problem = only("surveys:\n  s:\n    questions:\n      - id: q\n        text: x\n"
                   "        type: yes_no\n        next: {peut-etre: q}\n")
    assert problem.line == 7 and "yes, no" in problem.message


def test_yes_and_no_stay_words() -> None:
    rules = parse_rules("help: {keywords: [YES, NO, ON]}\nkeywords: [{keyword: '0612345670'}]\n")
    assert rules.help.keywords == ("YES", "NO", "ON")
    assert rules.rules[0].keywords == ("0612345670",)


def test_rule_needs_keyword_or_regex() -> None:
    found = problems("keywords:\n  - reply: x\n  - {keyword: A, regex: b}\n")
    assert [p.line for p in found] == [2, 3]
    assert "exactly one of 'keyword' or 'regex'" in found[0].message


def test_several_problems_reported_together_in_line_order() -> None:
    found = problems("""\
        optin: {keywords: [START], reply: "{{ oops"}
        keywords:
          - keyword: A
            survey: none
          - keyword: a
          - regex: '('
            colour: red
        surveys:
          s:
            timeout: soon
            questions:
              - {id: q, text: x, type: integer, min: 3, max: 1, next: zz}
        fallback: {enabled: true}
        """)
    assert [p.line for p in found] == [1, 4, 5, 6, 7, 10, 12, 12, 13]
    text = str(RulesError(found))
    assert text.splitlines()[0].startswith("rules.yaml:1: optin.reply: ")


def test_empty_optout_list_is_refused() -> None:
    problem = only("optout:\n  keywords: []\n")
    assert problem.line == 2 and "cannot be empty" in problem.message
    assert parse_rules("help: {keywords: []}\n").help.keywords == ()


def test_nested_aliases_stay_cheap() -> None:
    lines = ["a0: &a0 [x, x]"]
    lines += [f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}]" for n in range(1, 40)]
    found = problems("\n".join(lines) + "\n")
    assert len(found) == 40 and all("unknown key" in p.message for p in found)


def test_file_that_is_not_a_mapping() -> None:
    problem = only("- keyword: A\n")
    assert problem.line == 1 and "expected a mapping" in problem.message


@given(st.text(max_size=200))
@settings(max_examples=200)
def test_any_text_gives_rules_or_problems(text: str) -> None:
    try:
        parse_rules(text)
    except RulesError as exc:
        assert exc.problems


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["keywords", "keyword", "regex", "surveys", "questions", "next", "id",
                         "text", "type", "choices", "optout", "reply", "fallback", "s", "to"]),
        inner, max_size=4),
    max_leaves=15,
))
@settings(max_examples=300)
def test_any_structure_gives_rules_or_problems(data: object) -> None:
    try:
        parse_rules(yaml.safe_dump(data, allow_unicode=True))
    except RulesError as exc:
        assert exc.problems


def test_unprintable_character() -> None:
    problem = only("keywords:\n  - keyword: A\x08\n")
    assert problem.line == 2 and "0x8" in problem.message
