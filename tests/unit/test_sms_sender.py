from __future__ import annotations

import pytest

from sms.sender import can_receive_replies, is_numeric_sender, validate_sender


@pytest.mark.parametrize(
    "sender",
    [
        "ACME",
        "ABC",
        "Mairie Lyon",
        "ACME2026",
        "Pharma 24",
        "A12",
        "36105",
        "3615",
        "123456",
        "+33612345678",
        "33612345678",
        "1234567",
        "+123456789012345",
    ],
)
def test_valid_senders(sender: str) -> None:
    assert validate_sender(sender) is None


@pytest.mark.parametrize(
    ("sender", "fragment"),
    [
        ("", "empty"),
        ("AB", "2 characters; expected 3 to 11"),
        ("ACME SERVICES", "13 characters; expected 3 to 11"),
        ("ACME-SHOP", "'-'"),
        ("Crêperie", "'ê'"),
        ("ACME!", "'!'"),
        ("123 456", "at least one letter"),
        (" ACME", "start or end with a space"),
        ("ACME ", "start or end with a space"),
        ("123", "3 digits"),
        ("+12345", "6 digits"),
        ("1234567890123456", "16 digits"),
    ],
)
def test_invalid_senders_say_why(sender: str, fragment: str) -> None:
    error = validate_sender(sender)
    assert error is not None
    assert fragment in error


def test_numeric_sender_detection() -> None:
    assert is_numeric_sender("36105")
    assert is_numeric_sender("+33612345678")
    assert not is_numeric_sender("ACME")
    assert not is_numeric_sender("123")


def test_replies_only_to_numeric_senders() -> None:
    assert can_receive_replies("36105", "36105")
    assert can_receive_replies(None, "36105")
    assert can_receive_replies("", "36105")
    assert can_receive_replies("+33612345678", "36105")
    assert not can_receive_replies("ACME", "36105")
    assert not can_receive_replies("Mairie", None)
    assert not can_receive_replies(None, None)
