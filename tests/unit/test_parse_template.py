"""parse_email: the ``[template:NAME]`` Subject option and the empty body it allows."""

from __future__ import annotations

import pytest

from mail2sms.parse import ParseError, parse_email

DOMAINS = ["sms.example.com"]


def make(subject: str, body: str = "") -> bytes:
    return (
        "From: Alice Martin <alice@example.org>\nTo: sms@sms.example.com\n"
        f"Subject: {subject}\nMessage-ID: <t1@example.org>\n\n{body}\n"
    ).encode()


@pytest.mark.parametrize("option", ["[template:rappel]", "[TEMPLATE:rappel]",
                                    "[Template : rappel ]"])
def test_the_option_sets_the_template_whatever_the_case_of_its_name(option: str) -> None:
    request = parse_email(make(f"0612345678 {option}"), user=None, domains=DOMAINS)
    assert request.template == "rappel"
    assert request.recipients == ["0612345678"]
    assert request.warnings == []


def test_the_template_name_keeps_its_case_and_spaces_inside() -> None:
    request = parse_email(make("[template:Rappel RDV] 0612345678"), user=None, domains=DOMAINS)
    assert request.template == "Rappel RDV"


def test_an_empty_body_is_accepted_with_a_template() -> None:
    request = parse_email(make("0612345678 [template:rappel]"), user=None, domains=DOMAINS)
    assert request.text == ""


def test_a_body_is_still_read_with_a_template() -> None:
    """Planning refuses template plus body; parse only reports what the email says."""
    request = parse_email(make("0612345678 [template:rappel]", "Bonjour"), user=None,
                          domains=DOMAINS)
    assert (request.template, request.text) == ("rappel", "Bonjour")


def test_an_empty_body_without_a_template_is_still_refused() -> None:
    with pytest.raises(ParseError) as info:
        parse_email(make("0612345678"), user=None, domains=DOMAINS)
    assert info.value.code == 554
    assert "no text" in info.value.message


def test_a_template_option_without_a_name_is_refused() -> None:
    with pytest.raises(ParseError) as info:
        parse_email(make("0612345678 [template:]"), user=None, domains=DOMAINS)
    assert info.value.code == 554
    assert "[template:NAME]" in info.value.message


def test_two_different_templates_contradict() -> None:
    with pytest.raises(ParseError) as info:
        parse_email(make("0612345678 [template:a] [template:b]"), user=None, domains=DOMAINS)
    assert "contradicts" in info.value.message


def test_template_without_a_value_is_an_unknown_option_warning() -> None:
    request = parse_email(make("0612345678 [template]", "Bonjour"), user=None,
                          domains=DOMAINS)
    assert request.template is None
    assert any("[template]" in w and "[template:NAME]" in w for w in request.warnings)


def test_a_template_still_needs_a_recipient() -> None:
    with pytest.raises(ParseError) as info:
        parse_email(make("[template:rappel]"), user=None, domains=DOMAINS)
    assert info.value.code == 553
