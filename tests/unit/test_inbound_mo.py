"""Reading an MO as gateways send it: Kannel's bytes in any coding, generic JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote_from_bytes, urlencode

import pytest

from inbound import mo

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def kannel(text: bytes, **extra: str) -> mo.Received:
    query = urlencode({"from": "+33612345678", "to": "36105", "ts": "2026-11-24 10:00:00",
                       "id": "81e1", **extra}) + "&text=" + quote_from_bytes(text)
    return mo.from_kannel(mo.raw_params(query.encode()), country="FR", now=NOW)


@pytest.mark.parametrize("text", ["Réunion à 9h", "emoji 🎉 ok", "€ ^ {}", "日本語"])
def test_utf8_as_kannel_passes_it(text: str) -> None:
    received = kannel(text.encode(), charset="UTF-8", coding="-1")
    assert received.sms.text == text and received.notes == []


@pytest.mark.parametrize("extra", [{"coding": "2", "charset": "UTF-16BE"}, {"coding": "2"},
                                   {"charset": "UCS-2"}, {}])
def test_ucs2_bytes_are_decoded(extra: dict[str, str]) -> None:
    text = "Réunion 🎉 ça"
    assert kannel(text.encode("utf-16-be"), **extra).sms.text == text


def test_kannel_space_as_plus_inside_ucs2() -> None:
    # Kannel url-encodes the 0x20 byte of a UCS-2 space as "+"
    query = (b"from=%2B33612345678&to=36105&coding=2"
             b"&text=%00R%00%E9%00u%00n%00i%00o%00n%00+%D8%3C%DF%89")
    assert mo.from_kannel(mo.raw_params(query), country="FR", now=NOW).sms.text == "Réunion 🎉"


def test_latin1_and_unknown_charsets() -> None:
    assert kannel("café".encode("latin-1"), charset="ISO-8859-1").sms.text == "café"
    received = kannel("café".encode("cp1252"))
    assert received.sms.text == "café" and "Windows-1252" in received.notes[0]
    assert kannel(b"hello", charset="x-klingon").sms.text == "hello"


def test_control_characters_and_length() -> None:
    received = kannel(b"a\x00b\x07c\r\nd\x1b")
    assert received.sms.text == "abc\nd" and "3 control character(s) removed" in received.notes
    long = kannel(b"x" * (mo.MAX_TEXT + 5))
    assert len(long.sms.text) == mo.MAX_TEXT and "cut" in long.notes[-1]
    assert len(kannel(("é" * 2000).encode()).sms.text) == 2000


def test_binary_sms_is_not_taken_for_text() -> None:
    received = kannel(bytes(range(0x80, 0x90)), coding="1")
    assert "binary" in received.notes[0]


def test_sender_normalised_and_keys() -> None:
    received = kannel(b"hi")
    assert received.sms.sender == "+33612345678" and received.sms.receiver == "36105"
    assert received.sms.dedup_key == "id:81e1"
    national = mo.from_kannel(mo.raw_params(b"from=0612345678&text=hi"), country="FR", now=NOW)
    assert national.sms.sender == "+33612345678"
    assert national.sms.dedup_key.startswith("sha256:")
    operator = mo.from_kannel(mo.raw_params(b"from=ORANGE&text=hi"), country="FR", now=NOW)
    assert operator.sms.sender == "ORANGE"
    with pytest.raises(mo.BadMo, match="from"):
        mo.from_kannel(mo.raw_params(b"text=hi"), country="FR", now=NOW)


def test_hash_key_uses_sender_receiver_text_and_time() -> None:
    key = mo.dedup_key
    base = key(None, "+336", "36105", "OUI", "2026-11-24 10:00", NOW)
    assert base == key(None, "+336", "36105", "OUI", "2026-11-24 10:00", NOW)
    assert base != key(None, "+336", "36105", "OUI", "2026-11-24 10:01", NOW)
    assert base != key(None, "+336", "36105", "NON", "2026-11-24 10:00", NOW)
    assert base != key(None, "+337", "36105", "OUI", "2026-11-24 10:00", NOW)
    assert key("gw-1", "+336", "", "x", None, NOW) == "id:gw-1"


def test_json_items() -> None:
    item = {"from": "+33612345678", "to": "36105", "text": "Salut 👋", "id": 42}
    received = mo.from_json(item, country="FR", now=NOW)
    assert received.sms.text == "Salut 👋" and received.sms.dedup_key == "id:42"
    assert mo.from_json({"from": "0612345678", "text": ""}, country="FR", now=NOW).sms.text == ""
    for bad, why in [([], "object"), ({"text": "x"}, "from"), ({"from": "+336"}, "text"),
                     ({"from": "+336", "text": ["x"]}, "string")]:
        with pytest.raises(mo.BadMo, match=why):
            mo.from_json(bad, country="FR", now=NOW)


def test_guessing_without_a_charset() -> None:
    for text in ("Réunion 🎉", "hi", "🎉🎉", "Ça va ?"):
        assert kannel(text.encode("utf-16-be")).sms.text == text
    assert kannel(b"ECHO a\x00b\x1bc").sms.text == "ECHO abc"  # UTF-8 with junk stays UTF-8
    assert kannel("日本語".encode()).sms.text == "日本語"


def test_trial_sms_for_rules_try() -> None:
    a = mo.trial("STOP\x07", "06 12 34 56 78", "36105", now=NOW)
    b = mo.trial("STOP", "06 12 34 56 78", now=NOW)
    assert (a.sender, a.text, a.receiver) == ("+33612345678", "STOP", "36105")
    assert a.dedup_key != b.dedup_key
