"""A pipeline on SQLite in a temporary folder, with a clock the test moves."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from autoresponder.loader import parse_rules
from autoresponder.rules import RuleSet
from inbound.model import Settings, Sms
from inbound.pipeline import Outcome, Pipeline
from store.db import Database
from store.models import Inbound, Message, SendRequestRow

PHONE = "+33612345678"
SHORTCODE = "36105"

RULES = """
optout:
  reply: "Vous ne recevrez plus nos SMS. START pour revenir."
optin:
  reply: "Re-bonjour {{ contact.first_name }} !"
help:
  keywords: [AIDE, HELP]
  reply: "ACME, 01 23 45 67 89."
keywords:
  - keyword: HORAIRES
    aliases: [OUVERTURE]
    reply: "Bonjour {{ contact.first_name }}, ouvert de 9h à 18h."
    tag: [horaires]
    add_to_group: [Curieux]
  - keyword: RAPPEL
    forward_to: [rappel@example.com]
  - name: rdv
    regex: '^RDV\\s+(?P<date>\\d{2}/\\d{2})'
    reply: "RDV le {{ match.date }} noté."
  - keyword: AVIS
    reply: "Merci !"
    survey: satisfaction
  - keyword: LONG
    to: ["+33700000000"]
    reply: "Only on the long number."
surveys:
  satisfaction:
    timeout: 1h
    retries: 1
    intro: "Deux questions."
    end: "Merci, note {{ answers.note }} !"
    abandoned: "Tant pis."
    questions:
      - id: note
        text: "Notez de 1 à 5"
        type: integer
        min: 1
        max: 5
        retry: "Un chiffre de 1 à 5."
        next: {"1": pourquoi, "*": recommande}
      - id: pourquoi
        text: "Pourquoi ?"
        type: text
      - id: recommande
        text: "Nous recommanderiez-vous ?"
        type: yes_no
fallback:
  enabled: true
  reply: "Ce numéro ne lit pas les réponses."
"""


def rules(text: str = RULES) -> RuleSet:
    return parse_rules(text, "rules.yaml")


class Bench:
    """A pipeline with its database; ``sms()`` runs one SMS through it synchronously."""

    def __init__(self, tmp: Path, ruleset: RuleSet | None = None, *, url: str | None = None,
                 **settings: Any) -> None:
        self.db = Database(url or f"sqlite:///{tmp / 'inbound.db'}")
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        self.ruleset = ruleset if ruleset is not None else rules()
        self.settings = Settings(**settings)
        self.pipeline = Pipeline(self.db, lambda: self.ruleset, self.settings,
                                 clock=lambda: self.now)
        self._keys = itertools.count(1)

    def sms(self, text: str, sender: str = PHONE, *, receiver: str = SHORTCODE,
            key: str | None = None, dry_run: bool = False) -> Outcome:
        sms = self.make(text, sender, receiver=receiver, key=key)
        return self.db.run_sync(
            lambda s: self.pipeline.run_in(s, sms, self.ruleset, self.now, dry_run))

    def make(self, text: str, sender: str = PHONE, *, receiver: str = SHORTCODE,
             key: str | None = None) -> Sms:
        return Sms(sender=sender, receiver=receiver, text=text,
                   dedup_key=key or f"k{next(self._keys)}", received_at=self.now)

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def query(self, fn: Any) -> Any:
        with Session(self.db.engine, expire_on_commit=False) as session:
            return fn(session)

    def messages(self) -> list[Message]:
        return self.query(lambda s: list(s.exec(select(Message).order_by(col(Message.id)))))

    def inbound(self) -> list[Inbound]:
        return self.query(lambda s: list(s.exec(select(Inbound).order_by(col(Inbound.id)))))

    def staff_sent(self, user: str, number: str, *, subject: str = "06 12 34 56 78",
                   message_id: str | None = "<orig-1@example.com>",
                   source: str = "smtp") -> None:
        """What an email from ``user`` to ``number`` leaves in the store."""
        def add(session: Session) -> None:
            request = SendRequestRow(user=user, source=source, subject=subject,
                                     email_message_id=message_id, text="Bonjour")
            session.add(request)
            session.flush()
            session.add(Message(request_id=request.id, to=number, text="Bonjour",
                                status="delivered"))
        self.db.run_sync(add)

    def close(self) -> None:
        self.db.close()


def open_bench(tmp_path: Path, ruleset: RuleSet | None = None,
               **settings: Any) -> Iterator[Bench]:
    """For a test module's ``bench`` fixture: ``yield from open_bench(tmp_path)``."""
    b = Bench(tmp_path, ruleset, **settings)
    try:
        yield b
    finally:
        b.close()


def steps(outcome: Outcome) -> list[tuple[str, str]]:
    return [(d.step, d.decision) for d in outcome.decisions]


def replies(outcome: Outcome) -> list[str]:
    return [r.text for r in outcome.replies]
