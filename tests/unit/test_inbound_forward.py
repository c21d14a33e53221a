"""The forward step and the reply email: threaded to the staff writer, copies to
inbound.forward_to, and an answer that comes back to the right number only."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from mail2sms.parse import parse_email
from store.models import Contact
from tests.unit.inbound_helpers import PHONE, Bench, open_bench, steps

ALICE = "alice@example.com"


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield from open_bench(tmp_path, forward_to=("ops@example.com",), domain="sms.example.com")


def read(message: Message) -> EmailMessage:
    """The email as a mail client reads it."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def forward(outcome: object) -> object:
    return next(d for d in outcome.decisions if d.step == "forward")  # type: ignore[attr-defined]


def test_unmatched_reply_is_threaded_to_the_staff_writer(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE, subject="06 12 34 56 78")
    bench.db.run_sync(lambda s: s.add(Contact(number=PHONE, first_name="Jean",
                                              last_name="Dupont")))
    outcome = bench.sms("D'accord pour jeudi, à bientôt 🙂")
    assert steps(outcome)[-2:] == [("forward", "mailed"), ("fallback", "pass")]
    assert forward(outcome).mailed_to == [ALICE, "ops@example.com"]  # type: ignore[attr-defined]
    mail = read(outcome.emails[0])
    assert mail["To"] == ALICE
    assert mail["In-Reply-To"] == "<orig-1@example.com>"
    assert mail["References"] == "<orig-1@example.com>"
    assert mail["Reply-To"] == f"{PHONE}@sms.example.com"
    assert mail["From"].addresses[0].addr_spec == f"{PHONE}@sms.example.com"
    assert mail["From"].addresses[0].display_name == f"{PHONE} (Jean Dupont)"
    assert mail["Subject"] == "Re: 06 12 34 56 78"
    assert mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert "D'accord pour jeudi, à bientôt 🙂" in body
    assert "Jean Dupont" in body and PHONE in body
    assert "Tuesday 24 November 2026 at 11:00 (Europe/Paris)" in body


def test_copy_to_forward_to_is_not_threaded(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE)
    copy = read(bench.sms("Merci").emails[1])
    assert copy["To"] == "ops@example.com"
    assert copy["In-Reply-To"] is None
    assert copy["Subject"] == f"SMS from {PHONE}"
    assert copy["Reply-To"] == f"{PHONE}@sms.example.com"


def test_the_last_writer_wins_and_only_people(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE, message_id="<a@x>")
    bench.staff_sent("bob@example.com", PHONE, message_id="<b@x>")
    bench.staff_sent("bot@example.com", PHONE, message_id="<c@x>", source="api")
    bench.staff_sent(ALICE, "+33699999999", message_id="<d@x>")
    mail = read(bench.sms("Qui est-ce ?").emails[0])
    assert (mail["To"], mail["In-Reply-To"]) == ("bob@example.com", "<b@x>")


def test_subject_naming_others_is_not_reused(bench: Bench) -> None:
    for subject in ("06 12 34 56 78, 07 11 22 33 44", "#Equipe", "06 12 34 56 78 [marketing]"):
        bench.staff_sent(ALICE, PHONE, subject=subject)
        assert read(bench.sms("ok").emails[0])["Subject"] == f"SMS from {PHONE}"
    bench.staff_sent(ALICE, PHONE, subject="RE: Réunion de jeudi")
    mail = read(bench.sms("ok").emails[0])
    assert mail["Subject"] == "Re: Réunion de jeudi"


def test_answering_the_email_sends_the_sms_back_to_that_number_only(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE, subject="Rendez-vous")
    mail = read(bench.sms("Je serai en retard").emails[0])
    answer = EmailMessage()
    answer["From"] = ALICE
    answer["To"] = mail["Reply-To"]
    answer["Subject"] = "Re: " + mail["Subject"]
    answer["In-Reply-To"] = mail["Message-ID"]
    quoted = "\n".join("> " + line for line in mail.get_content().splitlines())
    answer.set_content(f"Pas de souci, à tout à l'heure.\n\nLe mardi, {PHONE} a écrit :\n"
                       f"{quoted}\n")
    request = parse_email(answer.as_bytes(), user=ALICE, domains=["sms.example.com"],
                          rcpt_tos=[str(mail["Reply-To"])])
    assert request.recipients == [PHONE] and request.groups == []
    assert request.text == "Pas de souci, à tout à l'heure."


def test_rule_that_forwards_goes_to_its_mailboxes_and_the_writer(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE)
    outcome = bench.sms("RAPPEL demain svp")
    assert forward(outcome).mailed_to == [  # type: ignore[attr-defined]
        ALICE, "rappel@example.com", "ops@example.com"]
    assert "Rule: RAPPEL" in read(outcome.emails[1]).get_content()


def test_rule_that_does_not_forward_skips_the_writer(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE)
    outcome = bench.sms("HORAIRES")
    assert forward(outcome).mailed_to == ["ops@example.com"]  # type: ignore[attr-defined]


def test_reply_to_sender_off(tmp_path: Path) -> None:
    for b in open_bench(tmp_path, reply_to_sender=False):
        b.staff_sent(ALICE, PHONE)
        outcome = b.sms("Bonjour")
        assert steps(outcome)[-2] == ("forward", "pass")
        assert steps(outcome)[-1] == ("fallback", "reply")


def test_survey_answers_and_stop_are_not_forwarded(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE)
    bench.sms("AVIS")
    assert bench.sms("4").emails == []
    assert bench.sms("STOP").emails == []


def test_control_characters_do_not_reach_the_mail(bench: Bench) -> None:
    bench.staff_sent(ALICE, PHONE)
    outcome = bench.sms("bell\x07 and escape\x1b[31m")
    body = read(outcome.emails[0]).get_content()
    assert "\x07" not in body and "\x1b" not in body
