from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    TextInfo,
    analyse,
    is_gsm7,
    split,
    transliterate,
)

EMOJI = "😀"  # outside the BMP: a UTF-16 surrogate pair


def septets(text: str) -> int:
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- GSM-7 boundaries -------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [
        (0, 1, 160),
        (1, 1, 160),
        (160, 1, 160),
        (161, 2, 153),
        (306, 2, 153),
        (307, 3, 153),
        (459, 3, 153),
        (460, 4, 153),
    ],
)
def test_gsm7_plain_boundaries(length: int, segments: int, per_segment: int) -> None:
    info = analyse("a" * length)
    assert info == TextInfo("gsm7", length, segments, per_segment, length)


def test_extension_characters_count_two() -> None:
    text = "^{}\\[~]|€\f"
    info = analyse(text)
    assert info.encoding == "gsm7"
    assert info.length == 20
    assert info.chars == 10


def test_80_euro_signs_fill_one_sms_and_81_need_two() -> None:
    assert analyse("€" * 80).segments == 1
    info = analyse("€" * 81)
    assert (info.length, info.segments) == (162, 2)


def test_euro_straddling_first_boundary_moves_to_next_part() -> None:
    # 152 letters then "€": its escape would be septet 153 and the char septet 154.
    text = "a" * 152 + "€" + "b" * 10
    parts = split(text)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")
    assert septets(parts[0]) == 152
    assert analyse(text).segments == 2


def test_euro_at_position_153_pushes_into_a_third_part() -> None:
    # 306 septets would fit exactly in 2 parts if the pair could be cut; it cannot.
    text = "a" * 152 + "€" + "b" * 152
    assert septets(text) == 306
    assert analyse(text).segments == 3
    assert [septets(p) for p in split(text)] == [152, 153, 1]


def test_euro_fitting_exactly_at_end_of_part() -> None:
    text = "a" * 151 + "€" + "b" * 153
    assert [septets(p) for p in split(text)] == [153, 153]
    assert analyse(text).segments == 2


def test_gsm_letters_with_accents_stay_gsm7() -> None:
    text = "éèùìòàÉÄÖÑÜäöñüßÇÅåØøÆæ£$¥@¡¿§¤ΔΦΓΛΩΠΨΣΘΞ_"
    assert is_gsm7(text)
    info = analyse(text)
    assert info.encoding == "gsm7"
    assert info.length == len(text)


@pytest.mark.parametrize("char", ["ç", "ê", "’", "«", "\u00a0", "œ", "`", "\t", EMOJI, "À"])
def test_one_foreign_character_forces_ucs2(char: str) -> None:
    info = analyse("Bonjour " + char)
    assert info.encoding == "ucs2"
    assert info.per_segment == 70


# --- UCS-2 boundaries -------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67), (201, 3, 67), (202, 4, 67)],
)
def test_ucs2_boundaries(length: int, segments: int, per_segment: int) -> None:
    text = "ê" * length
    info = analyse(text)
    assert info == TextInfo("ucs2", length, segments, per_segment, length)


def test_euro_counts_one_unit_in_ucs2() -> None:
    assert analyse("ê" + "€" * 69).length == 70
    assert analyse("ê" + "€" * 69).segments == 1


def test_emoji_counts_two_units() -> None:
    info = analyse(EMOJI * 35)
    assert (info.length, info.chars, info.segments) == (70, 35, 1)
    assert analyse(EMOJI * 36).segments == 2


def test_emoji_straddling_67_boundary_is_not_cut() -> None:
    text = "ê" * 66 + EMOJI + "ê" * 66
    assert utf16_units(text) == 134  # would be exactly 2 parts if the pair could be cut
    parts = split(text)
    assert [utf16_units(p) for p in parts] == [66, 67, 1]
    assert parts[1].startswith(EMOJI)
    assert analyse(text).segments == 3


def test_emoji_ending_exactly_at_67() -> None:
    text = "ê" * 65 + EMOJI + "ê" * 67
    assert [utf16_units(p) for p in split(text)] == [67, 67]
    assert analyse(text).segments == 2


def test_empty_text_is_one_segment() -> None:
    assert analyse("") == TextInfo("gsm7", 0, 1, 160, 0)
    assert split("") == [""]


def test_split_single_part_returns_text() -> None:
    assert split("Bonjour") == ["Bonjour"]
    assert split("a" * 161) == ["a" * 153, "a" * 8]


# --- transliteration --------------------------------------------------------


def test_transliterate_french_typography() -> None:
    text = "L’offre «\u00a0spéciale\u00a0» – jusqu’au 14/07… Œuvre, cœur, garçon, fête"
    out = transliterate(text)
    assert out == "L'offre \" spéciale \" - jusqu'au 14/07... OEuvre, coeur, garcon, fete"
    assert is_gsm7(out)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("‘‛“”", "''\"\""),
        ("—", "-"),
        ("\u202f\u2009", "  "),
        ("âêîôûëïüÿ", "aeioueiüy"),
        ("ÀÂÊÈÎÔÛÙ", "AAEEIOUU"),
        ("ç", "c"),
        ("Ç", "Ç"),
        ("€", "€"),
        ("ﬁn", "fin"),
    ],
)
def test_transliterate_mappings(src: str, dst: str) -> None:
    assert transliterate(src) == dst


def test_transliterate_keeps_gsm_letters() -> None:
    kept = "éèùìòàÉÄÖÑÜäöñüßÇÅåØøÆæ"
    assert transliterate(kept) == kept


def test_transliterate_keeps_characters_without_look_alike() -> None:
    assert transliterate("Merci 😀") == "Merci 😀"
    assert transliterate("日本") == "日本"
    assert analyse(transliterate("Merci 😀")).encoding == "ucs2"


def test_transliterate_decomposed_accents() -> None:
    assert transliterate("e\u0301te\u0302") == "éte"


def test_transliterate_cuts_the_cost() -> None:
    text = "Votre rendez-vous est confirmé pour demain à 10h. N’oubliez pas votre carte. " * 2
    assert analyse(text).segments == 3  # one apostrophe makes it UCS-2
    assert analyse(transliterate(text)).segments == 1


# --- properties -------------------------------------------------------------

GSM_CHARS = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
FRENCH_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()-/\n€%"
    "éèêëàâäîïôöùûüçÿœæÉÈÊËÀÂÎÏÔÖÙÛÜÇŸŒÆ’‘“”«»–—…\u00a0\u202f"
)


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_analyse_never_raises_and_split_agrees(text: str) -> None:
    info = analyse(text)
    parts = split(text)
    assert "".join(parts) == text
    assert info.segments == len(parts)
    assert info.segments >= 1


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=GSM_CHARS, max_size=700))
def test_gsm_parts_fit(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    limit = 160 if len(parts) == 1 else 153
    assert all(septets(p) <= limit for p in parts)
    # a part never wastes more than the one septet an escape pair could not use
    assert all(septets(p) >= 152 for p in parts[:-1])


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=71, max_size=400))
def test_ucs2_parts_fit(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    if analyse(text).encoding == "ucs2" and len(parts) > 1:
        assert all(utf16_units(p) <= 67 for p in parts)
        assert all(utf16_units(p) >= 66 for p in parts[:-1])


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=FRENCH_CHARS, max_size=300))
def test_transliterated_french_is_gsm7(text: str) -> None:
    out = transliterate(text)
    assert is_gsm7(out)
    assert transliterate(out) == out


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ê😀a€", min_size=71, max_size=400))
def test_surrogate_pairs_never_cut(text: str) -> None:
    text = "😀" + text  # always UCS-2
    parts = split(text)
    assert "".join(parts) == text
    assert all(utf16_units(p) <= 67 for p in parts)
    assert all(utf16_units(p) >= 66 for p in parts[:-1])
    assert all(p.encode("utf-16-le", errors="strict") for p in parts)
