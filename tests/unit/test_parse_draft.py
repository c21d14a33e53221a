"""parse_email: the ``[draft]`` Subject option."""

from __future__ import annotations

import pytest

from mail2sms.parse import parse_email

DOMAINS = ["sms.example.com"]


def make(subject: str, body: str = "Bonjour") -> bytes:
    return (
        "From: Alice Martin <alice@example.org>\nTo: sms@sms.example.com\n"
        f"Subject: {subject}\nMessage-ID: <t1@example.org>\n\n{body}\n"
    ).encode()


@pytest.mark.parametrize("subject", ["0612345678 [draft]", "[DRAFT] 0612345678",
                                     "RE: [ Draft ] 0612345678 [marketing]"])
def test_the_option_makes_a_draft(subject: str) -> None:
    request = parse_email(make(subject), user=None, domains=DOMAINS)
    assert request.draft is True
    assert request.recipients == ["0612345678"]
    assert request.warnings == []


def test_without_the_option_the_send_is_not_a_draft() -> None:
    assert parse_email(make("0612345678"), user=None, domains=DOMAINS).draft is False


def test_a_draft_with_a_value_is_not_the_option_and_the_warning_lists_it() -> None:
    request = parse_email(make("0612345678 [draft:yes]"), user=None, domains=DOMAINS)
    assert request.draft is False
    [warning] = request.warnings
    assert warning.startswith('ignored "[draft:yes]" in the Subject: not an option')
    assert "[draft]" in warning
