"""parse_email: Subject options, recipients, addresses, headers and errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from campaigns.request import SendRequest
from mail2sms.parse import MAX_WARNINGS, ParseError, parse_email

DOMAINS = ["sms.example.com"]
PARIS = ZoneInfo("Europe/Paris")


def make(
    subject: str = "0612345678",
    body: str = "Bonjour",
    to: str = "sms@sms.example.com",
    extra: str = "",
) -> bytes:
    return (
        f"From: Alice Martin <Alice.Martin@Example.org>\nTo: {to}\nSubject: {subject}\n"
        f"Message-ID: <m1@example.org>\n{extra}\n{body}\n"
    ).encode()


def parse(subject: str, timezone: str = "Europe/Paris") -> SendRequest:
    return parse_email(make(subject), user=None, domains=DOMAINS, timezone=timezone)


def error(subject: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(subject)
    return info.value


# --- recipients ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("06 12 34 56 78", ["06 12 34 56 78"]),
        ("+33 6 12 34 56 78", ["+33 6 12 34 56 78"]),
        ("0033612345678", ["0033612345678"]),
        ("6.12.34.56.78", ["6.12.34.56.78"]),
        ("+33 (0)6 12 34 56 78", ["+33 (0)6 12 34 56 78"]),
        ("06-12-34-56-78", ["06-12-34-56-78"]),
        ("0612345678", ["0612345678"]),
        ("+33612345678", ["+33612345678"]),
        ("6 12 34 56 78", ["6 12 34 56 78"]),
        ("0033 6 12 34 56 78", ["0033 6 12 34 56 78"]),
        ("+44 7911 123456", ["+44 7911 123456"]),
    ],
)
def test_number_notations(subject: str, expected: list[str]) -> None:
    assert parse(subject).recipients == expected


def test_several_numbers_without_separators_are_split_by_length() -> None:
    request = parse("06 12 34 56 78 07 11 22 33 44, #Staff")
    assert request.recipients == ["06 12 34 56 78", "07 11 22 33 44"]
    assert request.groups == ["Staff"]
    assert request.warnings == []


@pytest.mark.parametrize("separator", [",", ";", " ", " , ", ";;", "\t"])
def test_separators(separator: str) -> None:
    subject = separator.join(["0612345678", "+33 7 11 22 33 44", "#Staff"])
    request = parse(subject)
    assert request.recipients == ["0612345678", "+33 7 11 22 33 44"]
    assert request.groups == ["Staff"]


def test_plus_starts_a_new_number() -> None:
    assert parse("+33 6 12 34 56 78 +33 7 11 22 33 44").recipients == [
        "+33 6 12 34 56 78",
        "+33 7 11 22 33 44",
    ]


def test_groups_allow_accents_digits_underscore_dash() -> None:
    assert parse("#Équipe_B-2 #Élèves6e").groups == ["Équipe_B-2", "Élèves6e"]


def test_identical_texts_are_kept_once_order_preserved() -> None:
    request = parse("0711223344, 0612345678, 0711223344 #A #B #A")
    assert request.recipients == ["0711223344", "0612345678"]
    assert request.groups == ["A", "B"]


def test_other_notations_of_one_number_are_not_merged_here() -> None:
    assert parse("0612345678, 06 12 34 56 78").recipients == ["0612345678", "06 12 34 56 78"]


def test_words_are_warnings_not_errors() -> None:
    request = parse("Hello 0612345678")
    assert request.recipients == ["0612345678"]
    assert request.warnings == ['ignored "Hello" in the Subject: not a number, #Group or [option]']


def test_consecutive_words_give_one_warning() -> None:
    request = parse("Rappel rendez-vous 0612345678 demain")
    assert len(request.warnings) == 2
    assert '"Rappel rendez-vous"' in request.warnings[0]
    assert '"demain"' in request.warnings[1]


def test_short_digit_run_is_a_warning() -> None:
    request = parse("0612345678 12 34")
    assert request.recipients == ["0612345678"]
    assert request.warnings == ['ignored "12 34" in the Subject: not a number, #Group or [option]']


def test_warnings_are_capped() -> None:
    request = parse(" , ".join(f"word{i}" for i in range(100)) + ", 0612345678")
    assert len(request.warnings) == MAX_WARNINGS + 1
    assert "80 more" in request.warnings[-1]


# --- reply prefixes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["RE:", "Re :", "TR:", "Fwd:", "FW:", "AW:", "RE: TR: Fwd:", "re:re:", "RE[2]:"]
)
def test_reply_prefixes_are_stripped(prefix: str) -> None:
    request = parse(f"{prefix} 06 12 34 56 78")
    assert request.recipients == ["06 12 34 56 78"]
    assert request.warnings == []


def test_subject_is_kept_as_received() -> None:
    assert parse("RE: 0612345678 [alert]").subject == "RE: 0612345678 [alert]"


# --- options -------------------------------------------------------------------------


def test_category_options() -> None:
    assert parse("[marketing] 0612345678").category == "marketing"
    assert parse("0612345678 [ALERT]").category == "alert"
    assert parse("0612345678").category is None


def test_options_anywhere_and_case_insensitive() -> None:
    request = parse("06 12 34 56 78 [Marketing] #Staff [From:ACME] [TEST]")
    assert request.category == "marketing"
    assert request.sender == "ACME"
    assert request.test is True
    assert request.recipients == ["06 12 34 56 78"]
    assert request.groups == ["Staff"]


def test_sender_is_stored_as_written() -> None:
    assert parse("[from: Mairie 75 ] 0612345678").sender == "Mairie 75"


def test_empty_sender_is_an_error() -> None:
    exc = error("[from:] 0612345678")
    assert exc.code == 554
    assert "[from:] has no sender ID: expected [from:NAME]" in exc.message


@pytest.mark.parametrize(
    "written",
    ["2026-11-24 09:00", "2026-11-24T09:00", "24/11/2026 09:00", "2026-11-24 9h00"],
)
def test_at_formats(written: str) -> None:
    assert parse(f"[at:{written}] 0612345678").at == datetime(2026, 11, 24, 9, 0, tzinfo=PARIS)


def test_at_is_aware_in_the_given_timezone() -> None:
    at = parse("[at:2026-07-01 09:00] 0612345678", timezone="America/New_York").at
    assert at is not None
    assert at.utcoffset() is not None
    assert at.isoformat() == "2026-07-01T09:00:00-04:00"


def test_at_with_explicit_offset() -> None:
    at = parse("[at:2026-11-24T09:00+00:00] 0612345678").at
    assert at is not None and at.isoformat() == "2026-11-24T09:00:00+00:00"


@pytest.mark.parametrize("written", ["2026-13-01 9h", "demain", "2026-11-24", "31/02/2026 10:00"])
def test_bad_at_is_an_error_naming_the_expected_format(written: str) -> None:
    exc = error(f"[at:{written}] 0612345678")
    assert exc.code == 554
    assert exc.message.startswith(f"[at:{written}] is not a date: expected [at:YYYY-MM-DD HH:MM]")


def test_conflicting_options_are_an_error() -> None:
    assert "contradicts" in error("[marketing][alert] 0612345678").message
    assert "contradicts" in error("[from:A][from:B] 0612345678").message


def test_repeated_identical_option_is_fine() -> None:
    assert parse("[alert] 0612345678 [alert]").category == "alert"


@pytest.mark.parametrize("tag", ["[EXT]", "[External]", "[SPAM]", "[marketing:yes]", "[]"])
def test_unknown_options_are_warnings(tag: str) -> None:
    request = parse(f"{tag} 0612345678")
    assert request.recipients == ["0612345678"]
    assert len(request.warnings) == 1
    assert tag in request.warnings[0]


def test_unknown_timezone_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="unknown timezone"):
        parse("[at:2026-11-24 09:00] 0612345678", timezone="Mars/Olympus")


# --- addresses -----------------------------------------------------------------------


@pytest.mark.parametrize("local", ["+33612345678", "0612345678", "0033612345678", "06.12.34.56.78"])
def test_number_in_to_local_part(local: str) -> None:
    raw = make(subject="", to=f"<{local}@SMS.Example.COM>")
    assert parse_email(raw, user=None, domains=DOMAINS).recipients == [local]


def test_other_local_parts_and_domains_add_nothing() -> None:
    raw = make(subject="#Staff", to="sms@sms.example.com, 0612345678@elsewhere.example")
    request = parse_email(raw, user=None, domains=DOMAINS)
    assert request.recipients == []
    assert request.groups == ["Staff"]


def test_cc_header_counts_without_envelope() -> None:
    raw = make(subject="", extra="Cc: 0711223344@sms.example.com\n")
    assert parse_email(raw, user=None, domains=DOMAINS).recipients == ["0711223344"]


def test_envelope_recipients_replace_headers() -> None:
    raw = make(subject="", to="0612345678@sms.example.com")
    request = parse_email(
        raw, user="bob@example.org", domains=DOMAINS, rcpt_tos=["+33711223344@sms.example.com"]
    )
    assert request.recipients == ["+33711223344"]
    assert request.user == "bob@example.org"


def test_address_numbers_come_before_subject_numbers() -> None:
    raw = make(subject="0711223344", to="0612345678@sms.example.com")
    assert parse_email(raw, user=None, domains=DOMAINS).recipients == [
        "0612345678",
        "0711223344",
    ]


# --- headers and outcome -------------------------------------------------------------


def test_user_defaults_to_lowercased_from() -> None:
    assert parse("0612345678").user == "alice.martin@example.org"


def test_fields_from_headers() -> None:
    request = parse_email(make(), user="alice@example.org", domains=DOMAINS, source="imap")
    assert request.user == "alice@example.org"
    assert request.email_message_id == "<m1@example.org>"
    assert request.source == "imap"
    assert request.text == "Bonjour"


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("=?utf-8?B?I8OJcXVpcGUgMDYxMjM0NTY3OA==?=", "#Équipe 0612345678"),
        ("=?iso-8859-1?Q?#=C9quipe_0612345678?=", "#Équipe 0612345678"),
        ("=?UTF-8?Q?RE=C2=A0:_0612345678?=", "RE\xa0: 0612345678"),
    ],
)
def test_rfc2047_subjects(encoded: str, decoded: str) -> None:
    request = parse(encoded)
    assert request.subject == decoded
    assert request.recipients == ["0612345678"]


def test_raw_utf8_subject() -> None:
    raw = make(subject="#Équipe 0612345678")
    assert parse_email(raw, user=None, domains=DOMAINS).groups == ["Équipe"]


def test_folded_subject() -> None:
    request = parse("06 12 34 56 78,\n 07 11 22 33 44")
    assert request.recipients == ["06 12 34 56 78", "07 11 22 33 44"]


def test_no_recipient() -> None:
    exc = error("Hello")
    assert exc.code == 553
    assert exc.message == (
        "no recipient: put numbers or #Group in the Subject, or the number as the To address"
    )


def test_no_text() -> None:
    with pytest.raises(ParseError) as info:
        parse_email(make(body="-- \nAlice"), user=None, domains=DOMAINS)
    assert info.value.code == 554
    assert info.value.message.startswith("the message has no text")


def test_template_syntax_is_kept_literally() -> None:
    body = "Bonjour {{ first_name }} {{ ''.__class__.__mro__ }} {% if x %}y{% endif %}"
    request = parse_email(make(body=body), user=None, domains=DOMAINS)
    assert request.text == body


def test_parse_error_str_has_code_and_message() -> None:
    exc = ParseError(554, "the message has no text")
    assert str(exc) == "554 the message has no text"
    assert (exc.code, exc.message) == (554, "the message has no text")
