from __future__ import annotations

import pytest

from sms.phones import LANDLINE, Phone, dedupe, mask, normalise

FR_MOBILE = "+33612345678"


@pytest.mark.parametrize(
    "raw",
    [
        "06 12 34 56 78",
        "0612345678",
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033612345678",
        "0033 6 12 34 56 78",
        "6.12.34.56.78",
        "612345678",
        "+33 (0)6 12 34 56 78",
        "+33(0)612345678",
        "06-12-34-56-78",
        "06.12.34.56.78",
        "(+33)612345678",
        "(+33) 6 12 34 56 78",
        "tel:+33612345678",
        "TEL: 06 12 34 56 78",
        " 06\u00a012\u00a034\u00a056\u00a078 ",
        "06\u202f12\u202f34\u202f56\u202f78",
        "\u200b+33\u200b612345678\ufeff",
    ],
)
def test_french_mobile_notations(raw: str) -> None:
    phone = normalise(raw)
    assert phone == Phone(raw, FR_MOBILE, "mobile", None)
    assert phone.sendable


def test_07_mobile_without_leading_zero() -> None:
    assert normalise("7 56 12 34 56").e164 == "+33756123456"
    assert normalise("07 56 12 34 56").kind == "mobile"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+44 7911 123456", "+447911123456"),
        ("+32 470 12 34 56", "+32470123456"),
        ("0032 470 12 34 56", "+32470123456"),
        ("+41 79 123 45 67", "+41791234567"),
        ("+49 1512 3456789", "+4915123456789"),
        ("+262 692 12 34 56", "+262692123456"),
    ],
)
def test_international_mobiles(raw: str, e164: str) -> None:
    phone = normalise(raw)
    assert (phone.e164, phone.kind, phone.reason) == (e164, "mobile", None)


def test_region_changes_national_reading() -> None:
    assert normalise("0470 12 34 56", "BE").e164 == "+32470123456"
    assert normalise("07911 123456", "GB").e164 == "+447911123456"
    assert normalise("0470 12 34 56", "be").e164 == "+32470123456"


def test_french_overseas_mobiles_typed_nationally() -> None:
    assert normalise("0690 12 34 56").e164 == "+590690123456"  # Guadeloupe
    assert normalise("0696 12 34 56").e164 == "+596696123456"  # Martinique
    assert normalise("0692 12 34 56").e164 == "+262692123456"  # La Réunion
    assert normalise("0694 12 34 56").e164 == "+594694123456"  # Guyane


def test_north_american_numbers_are_sendable() -> None:
    phone = normalise("+1 650 253 0000")
    assert phone.kind == "mobile_or_landline"
    assert phone.sendable


def test_landline_refused_unless_allowed() -> None:
    phone = normalise("01 42 68 53 00")
    assert (phone.e164, phone.kind, phone.reason) == ("+33142685300", "landline", LANDLINE)
    assert phone.reason == "landline (cannot receive SMS)"
    assert not phone.sendable
    assert normalise("01 42 68 53 00", allow_landlines=True).sendable


def test_voip_and_special_numbers() -> None:
    voip = normalise("09 50 12 34 56")
    assert (voip.kind, voip.sendable) == ("voip", False)
    assert normalise("09 50 12 34 56", allow_landlines=True).sendable
    for raw in ("0800 123 456", "0892 12 34 56"):
        special = normalise(raw)
        assert special.kind == "special"
        assert not special.sendable
        assert not normalise(raw, allow_landlines=True).sendable


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "+",
        "0612",
        "112",
        "06 12 34 56 78 9",
        "+33 6 12 34 56 789",
        "071 23 45 67 8",
        "#Clients",
        "06 12 34 56 78 ext 12",
        "0612345678@example.com",
    ],
)
def test_invalid_numbers(raw: str) -> None:
    phone = normalise(raw)
    assert phone == Phone(raw, None, "invalid", "invalid number")
    assert not phone.sendable


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+33612345678", "+336******78"),
        ("+447911123456", "+447*******56"),
        ("+12125550123", "+12*******23"),
        ("0612345678", "********78"),
        ("36105", "***05"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask(number) == masked


def test_mask_never_shows_full_number() -> None:
    for number in ("+33612345678", "+3361", "+1234", "0612345678"):
        digits = "".join(c for c in number if c.isdigit())
        shown = "".join(c for c in mask(number) if c.isdigit())
        assert len(shown) <= len(digits) // 2


def test_dedupe_keeps_first_occurrence_by_e164() -> None:
    phones = [
        normalise("06 12 34 56 78"),
        normalise("+33 6 12 34 56 78"),
        normalise("+44 7911 123456"),
        normalise("0033612345678"),
        normalise("abc"),
        normalise("abc"),
        normalise("xyz"),
    ]
    out = dedupe(phones)
    assert [p.raw for p in out] == ["06 12 34 56 78", "+44 7911 123456", "abc", "xyz"]
