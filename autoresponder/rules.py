"""The rules file as typed objects: what the inbound pipeline and ``rules try`` read.

``autoresponder.loader`` builds a ``RuleSet`` from ``rules.yaml`` (with file:line for
every problem); ``autoresponder.matcher`` finds the rule for an SMS; the survey logic is
in ``autoresponder.survey``. Nothing here touches the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

#: DESIGN.md's opt-out words; the rules file may add more.
DEFAULT_OPTOUT = ("STOP", "ARRET", "STOP SMS", "DESABO", "UNSUBSCRIBE")
DEFAULT_OPTIN = ("START",)
DEFAULT_HELP = ("AIDE", "HELP")


@dataclass(frozen=True)
class Where:
    """Where something was defined, for error messages and ``rules try``."""

    file: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class KeywordList:
    """Opt-out, opt-in or help words with the reply they get."""

    keywords: tuple[str, ...]  # folded: upper case, no accents, single spaces
    reply: str | None  # Jinja2 template; None: no SMS back


@dataclass(frozen=True)
class Rule:
    """A keyword (first word of the SMS, or aliases) or a regex, and what to do."""

    name: str
    where: Where
    keywords: tuple[str, ...] = ()  # folded keyword and aliases
    regex: re.Pattern[str] | None = None  # searched in the whole (unfolded) text
    to: tuple[str, ...] = ()  # receiving numbers (shortcode, long number); empty: any
    reply: str | None = None  # Jinja2 template over contact, sms, match
    forward_to: tuple[str, ...] = ()  # mailboxes that get the SMS by email
    tags: tuple[str, ...] = ()  # tags added to the sender's contact
    add_to_groups: tuple[str, ...] = ()  # groups the sender's contact joins
    survey: str | None = None  # survey started for the sender


@dataclass(frozen=True)
class Question:
    """One step of a survey."""

    id: str
    text: str  # Jinja2 template sent as the SMS
    kind: str  # "choice" | "integer" | "text" | "yes_no"
    #: Choice key (what is stored) -> label, in file order; the key, the label or the
    #: 1-based position is a valid answer.
    choices: dict[str, str] = field(default_factory=dict)
    minimum: int | None = None  # for integer
    maximum: int | None = None
    retry: str | None = None  # sent when the answer is not valid
    #: Next question by answer value; None in the map ends the survey. The loader puts
    #: a "*" branch into ``next`` ("*" in the map is honoured too).
    branches: dict[str, str | None] = field(default_factory=dict)
    #: Next question for any other answer (the following one in the file unless the
    #: file says otherwise); None: the survey ends.
    next: str | None = None
    where: Where = Where("", None)


@dataclass(frozen=True)
class Survey:
    name: str
    questions: dict[str, Question]  # in file order; the first is asked first
    first: str
    timeout: timedelta = timedelta(hours=24)  # an open session closes after this silence
    max_retries: int = 2  # invalid answers to one question before the survey ends
    intro: str | None = None  # sent before the first question
    end: str | None = None  # sent when the survey is done
    abandoned: str | None = None  # sent when the retries are used up
    where: Where = Where("", None)


@dataclass(frozen=True)
class Fallback:
    enabled: bool = False
    reply: str | None = None


@dataclass(frozen=True)
class RuleSet:
    optout: KeywordList = KeywordList(DEFAULT_OPTOUT, None)
    optin: KeywordList = KeywordList(DEFAULT_OPTIN, None)
    help: KeywordList = KeywordList(DEFAULT_HELP, None)
    rules: tuple[Rule, ...] = ()
    surveys: dict[str, Survey] = field(default_factory=dict)
    fallback: Fallback = Fallback()
    source: str = ""  # the file it came from
