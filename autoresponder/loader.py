"""``rules.yaml`` -> ``RuleSet``, with every problem reported as file:line: where: what.

See ``rules.example.yaml`` for the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from autoresponder.checks import Collector
from autoresponder.fold import fold
from autoresponder.problems import RuleProblem, RulesError
from autoresponder.rules import (
    DEFAULT_HELP,
    DEFAULT_OPTIN,
    DEFAULT_OPTOUT,
    Fallback,
    KeywordList,
    Rule,
    RuleSet,
    Where,
)
from autoresponder.survey_loader import parse_surveys
from autoresponder.yamlfile import Path, read_yaml

__all__ = ["RuleProblem", "RulesError", "load_rules", "parse_rules"]

TOP_KEYS = ("optout", "optin", "help", "keywords", "surveys", "fallback")
LIST_KEYS = ("keywords", "reply")
RULE_KEYS = ("name", "keyword", "aliases", "regex", "case_sensitive", "to", "reply",
             "forward_to", "tag", "add_to_group", "survey")
FALLBACK_KEYS = ("enabled", "reply")
#: What a rule's reply may use; opt-out, opt-in, help and fallback replies get no ``match``.
RULE_ROOTS = ("contact", "sms", "match")
PLAIN_ROOTS = ("contact", "sms")
_LISTS = (("optout", DEFAULT_OPTOUT, "opt-out"), ("optin", DEFAULT_OPTIN, "opt-in"),
          ("help", DEFAULT_HELP, "help"))


@dataclass
class _Seen:
    """Keywords taken so far: folded word -> (rule name, line, receivers)."""

    words: dict[str, list[tuple[str, int | None, frozenset[str]]]] = field(default_factory=dict)
    names: dict[str, int | None] = field(default_factory=dict)


def load_rules(path: str | FilePath) -> RuleSet:
    """Read and check a rules file; raise RulesError with every problem found."""
    path = FilePath(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([RuleProblem(str(path), None, "", f"cannot read: {exc}")]) from exc
    return parse_rules(text, file=str(path))


def parse_rules(text: str, file: str = "<rules>") -> RuleSet:
    data, lines, problems = read_yaml(text, file)
    c = Collector(file, lines)
    c.problems.extend(problems)
    if data is None:
        data = {}
    top = c.mapping(data, (), TOP_KEYS)
    if top is None:
        raise RulesError(c.problems)
    lists = {name: _keyword_list(c, top.get(name), name, default)
             for name, default, _ in _LISTS}
    _check_lists_apart(c, lists)
    surveys = parse_surveys(c, top.get("surveys"))
    rules = _rules(c, top.get("keywords"), lists, surveys)
    fallback = _fallback(c, top.get("fallback"))
    if c.problems:
        c.problems.sort(key=lambda p: (p.line or 0))
        raise RulesError(c.problems)
    return RuleSet(optout=lists["optout"], optin=lists["optin"], help=lists["help"],
                   rules=tuple(rules), surveys=surveys, fallback=fallback, source=file)


def _keyword_list(c: Collector, value: Any, name: str,
                  default: tuple[str, ...]) -> KeywordList:
    if value is None:
        return KeywordList(default, None)
    data = c.mapping(value, (name,), LIST_KEYS)
    if data is None:
        return KeywordList(default, None)
    words: list[str] = []
    for number, word in enumerate(c.texts(data, "keywords", (name,))):
        folded = fold(word)
        if not folded:
            c.add((name, "keywords", number), f"{word!r} has no letter or digit to match")
        elif folded not in words:
            words.append(folded)
    if name == "optout" and "keywords" in data and not words:
        c.add((name, "keywords"), "the opt-out list cannot be empty: people must be able "
              f"to say STOP (default: {', '.join(DEFAULT_OPTOUT)})")
    reply = c.text(data, "reply", (name,))
    c.template(reply, (name, "reply"), PLAIN_ROOTS)
    return KeywordList(tuple(words) if "keywords" in data else default, reply)


def _check_lists_apart(c: Collector, lists: dict[str, KeywordList]) -> None:
    owner: dict[str, str] = {}
    for name, _, label in _LISTS:
        for number, word in enumerate(lists[name].keywords):
            if word in owner:
                c.add((name, "keywords", number),
                      f"{word!r} is already an {owner[word]} word; a word belongs to one list")
            else:
                owner[word] = label


def _rules(c: Collector, value: Any, lists: dict[str, KeywordList],
           surveys: dict[str, Any]) -> list[Rule]:
    if value is None:
        return []
    if not isinstance(value, list):
        c.add(("keywords",), "expected a list of rules ({keyword: ...} or {regex: ...})")
        return []
    reserved = {word: label for name, _, label in _LISTS for word in lists[name].keywords}
    seen = _Seen()
    rules: list[Rule] = []
    for number, item in enumerate(value):
        rule = _rule(c, item, ("keywords", number), reserved, seen, surveys)
        if rule is not None:
            rules.append(rule)
    return rules


def _rule(c: Collector, item: Any, path: Path, reserved: dict[str, str], seen: _Seen,
          surveys: dict[str, Any]) -> Rule | None:
    data = c.mapping(item, path, RULE_KEYS)
    if data is None:
        return None
    keyword = c.text(data, "keyword", path)
    pattern = c.text(data, "regex", path)
    if (keyword is None) == (pattern is None):
        c.add(path, "a rule needs exactly one of 'keyword' or 'regex'"
              if keyword is None else "a rule has 'keyword' or 'regex', not both")
        return None
    to = _receivers(c, data, path)
    given = c.text(data, "name", path)
    name = given or keyword or f"regex {path[-1]}"
    if given is not None:
        if given in seen.names:
            c.add((*path, "name"), f"rule name {given!r} is already used on line "
                  f"{seen.names[given]}")
        seen.names[given] = c.lines.of((*path, "name"))
    keywords = _keywords(c, data, path, name, to, reserved, seen) if keyword is not None else ()
    regex = _regex(c, data, path) if pattern is not None else None
    if keyword is None and "aliases" in data:
        c.add((*path, "aliases"), "aliases apply to keyword rules only")
    reply = c.text(data, "reply", path)
    c.template(reply, (*path, "reply"), RULE_ROOTS, set(regex.groupindex) if regex else set())
    forward_to = c.texts(data, "forward_to", path)
    for number, address in enumerate(forward_to):
        if "@" not in address:
            c.add((*path, "forward_to", number), f"expected an email address, got {address!r}")
    survey = c.text(data, "survey", path)
    if survey is not None and survey not in surveys:
        known = ", ".join(surveys) or "none defined"
        c.add((*path, "survey"), f"unknown survey {survey!r} (surveys: {known})")
    return Rule(
        name=name, where=Where(c.file, c.lines.of(path)), keywords=keywords, regex=regex,
        to=to, reply=reply, forward_to=forward_to, tags=c.texts(data, "tag", path),
        add_to_groups=c.texts(data, "add_to_group", path), survey=survey,
    )


def _receivers(c: Collector, data: dict[str, Any], path: Path) -> tuple[str, ...]:
    out: list[str] = []
    for number, number_text in enumerate(c.texts(data, "to", path)):
        digits = re.sub(r"\D", "", number_text)
        if not digits:
            c.add((*path, "to", number), f"expected a receiving number such as 36105 or "
                  f"+33612345678, got {number_text!r}")
        else:
            out.append(digits)
    return tuple(out)


def _keywords(c: Collector, data: dict[str, Any], path: Path, name: str, to: tuple[str, ...],
              reserved: dict[str, str], seen: _Seen) -> tuple[str, ...]:
    written = [((*path, "keyword"), str(data["keyword"]))]
    aliases = c.texts(data, "aliases", path)
    nested = isinstance(data.get("aliases"), list)
    written += [((*path, "aliases", n) if nested else (*path, "aliases"), a)
                for n, a in enumerate(aliases)]
    receivers = frozenset(to)
    out: list[str] = []
    for where_, word in written:
        folded = fold(word)
        line = c.lines.of(where_)
        if not folded:
            c.add(where_, f"keyword {word!r} has no letter or digit to match")
            continue
        if folded in out:
            c.add(where_, f"{folded!r} is listed twice in this rule")
            continue
        words = folded.split(" ")
        shadow = next((" ".join(words[:n]) for n in range(1, len(words) + 1)
                       if " ".join(words[:n]) in reserved), None)
        if shadow is not None:
            c.add(where_, f"keyword {folded!r} can never match: {shadow!r} is an "
                  f"{reserved[shadow]} word, and those are checked first")
        for other, other_line, other_to in seen.words.get(folded, ()):
            if not receivers or not other_to or receivers & other_to:
                c.add(where_, f"keyword {folded!r} is already used by rule {other!r} on line "
                      f"{other_line} (give the rules different 'to' numbers, or remove one)")
                break
        seen.words.setdefault(folded, []).append((name, line, receivers))
        out.append(folded)
    return tuple(out)


def _regex(c: Collector, data: dict[str, Any], path: Path) -> re.Pattern[str] | None:
    flags = 0 if c.boolean(data, "case_sensitive", path, False) else re.IGNORECASE
    try:
        return re.compile(str(data["regex"]), flags)
    except re.error as exc:
        c.add((*path, "regex"), f"bad regex: {exc} (expected a Python regular expression; "
              "in YAML, write it in single quotes)")
        return None


def _fallback(c: Collector, value: Any) -> Fallback:
    if value is None:
        return Fallback()
    data = c.mapping(value, ("fallback",), FALLBACK_KEYS)
    if data is None:
        return Fallback()
    enabled = c.boolean(data, "enabled", ("fallback",), True)
    reply = c.text(data, "reply", ("fallback",))
    c.template(reply, ("fallback", "reply"), PLAIN_ROOTS)
    if enabled and reply is None:
        c.add(("fallback",), "an enabled fallback needs a 'reply'")
    return Fallback(enabled=enabled, reply=reply)
