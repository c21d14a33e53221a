"""Which rule an inbound SMS triggers, and whether it is an opt-out, opt-in or help word.

Keywords are looked up in a dict built once per RuleSet; regex rules are tried in file
order only while they come before the best keyword hit, so 200 rules cost a few
dict lookups plus the regexes placed above the keyword that matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autoresponder.fold import fold
from autoresponder.rules import KeywordList, Rule, RuleSet

_NOT_DIGIT = re.compile(r"\D")
_INDEX_ATTR = "_matcher_index"


@dataclass(frozen=True)
class Match:
    rule: Rule
    groups: dict[str, str] = field(default_factory=dict)  # the regex's named groups


@dataclass
class _Index:
    keywords: dict[str, list[tuple[int, Rule, frozenset[str]]]]
    max_words: int
    regexes: list[tuple[int, Rule, frozenset[str]]]


@dataclass
class _Words:
    words: frozenset[str]
    max_words: int


def _digits(number: str) -> str:
    return _NOT_DIGIT.sub("", number)


def _index(ruleset: RuleSet) -> _Index:
    # Kept in the instance's __dict__ (as functools.cached_property does), so a frozen
    # RuleSet carries its own index and a reloaded file gets a new one.
    cached = ruleset.__dict__.get(_INDEX_ATTR)
    if cached is not None:
        return cached
    keywords: dict[str, list[tuple[int, Rule, frozenset[str]]]] = {}
    regexes: list[tuple[int, Rule, frozenset[str]]] = []
    max_words = 1
    for order, rule in enumerate(ruleset.rules):
        receivers = frozenset(_digits(n) for n in rule.to)
        if rule.regex is not None:
            regexes.append((order, rule, receivers))
        for keyword in rule.keywords:
            folded = fold(keyword)
            keywords.setdefault(folded, []).append((order, rule, receivers))
            max_words = max(max_words, folded.count(" ") + 1)
    index = _Index(keywords, max_words, regexes)
    ruleset.__dict__[_INDEX_ATTR] = index
    return index


def _receives(receivers: frozenset[str], receiver: str) -> bool:
    return not receivers or _digits(receiver) in receivers


def match(ruleset: RuleSet, text: str, receiver: str = "") -> Match | None:
    """The first rule in file order that *text*, sent to *receiver*, triggers."""
    index = _index(ruleset)
    best: tuple[int, Rule] | None = None
    words = fold(text).split(" ", index.max_words)
    for count in range(1, min(index.max_words, len(words)) + 1):
        for order, rule, receivers in index.keywords.get(" ".join(words[:count]), ()):
            if (best is None or order < best[0]) and _receives(receivers, receiver):
                best = (order, rule)
                break  # entries are in file order
    for order, rule, receivers in index.regexes:
        if best is not None and order > best[0]:
            break
        if rule.regex is None or not _receives(receivers, receiver):
            continue
        found = rule.regex.search(text)
        if found is not None:
            groups = {k: v or "" for k, v in found.groupdict().items()}
            return Match(rule, groups)
    return Match(best[1]) if best is not None else None


def _words(words: KeywordList) -> _Words:
    cache = words.__dict__.get(_INDEX_ATTR)
    if cache is None:
        folded = frozenset(fold(w) for w in words.keywords) - {""}
        cache = _Words(folded, max((w.count(" ") + 1 for w in folded), default=1))
        words.__dict__[_INDEX_ATTR] = cache
    return cache


def starts_with(words: KeywordList, text: str) -> bool:
    """True when the folded text is one of *words*, or begins with one as whole words."""
    index = _words(words)
    parts = fold(text).split(" ", index.max_words)
    return any(" ".join(parts[:n]) in index.words
               for n in range(1, min(index.max_words, len(parts)) + 1))


def is_optout(ruleset: RuleSet, text: str) -> bool:
    """"STOP", "stop merci", "Stop.", "STÖP", "STOP SMS": yes; "stopper la pub": no."""
    return starts_with(ruleset.optout, text)


def is_optin(ruleset: RuleSet, text: str) -> bool:
    return starts_with(ruleset.optin, text)


def is_help(ruleset: RuleSet, text: str) -> bool:
    return starts_with(ruleset.help, text)
