"""Remove quoted replies, signatures and mobile footers from the text of an email.

Works on plain text lines. The HTML side (`mail2sms.body`) turns quotes it can see in the
markup into the same line conventions first: a `>` line for a `<blockquote>`, and `CUT`
where everything below is the quoted original.
"""

from __future__ import annotations

import re

#: Placed by the HTML converter where the quoted original starts; everything after it goes.
CUT = "\x00"

_SEPARATOR = re.compile(
    r"^-{2,}\s*(original message|message d'origine|message transf[ée]r[ée]|"
    r"forwarded message|mensaje original|urspr[üu]ngliche nachricht|messaggio originale|"
    r"исходное сообщение|пересылаемое сообщение)\s*-{2,}$"
    r"|^(begin forwarded message|d[ée]but du message r[ée]exp[ée]di[ée])\s*:$",
    re.IGNORECASE,
)

_FOOTERS = [
    r"sent from my\b.*",
    r"sent from (outlook|yahoo|mail for windows|aol|gmail|proton ?mail|samsung|blackberry"
    r"|mymail|mail\.ru|spark|airmail|windows mail)\b.*",
    r"sent (with|via|using) (sparrow|blackberry|spark|airmail|proton ?mail|mailbird|bluemail"
    r"|aquamail|edison|newton|outlook)\b.*",
    r"envoy[ée] (de|depuis|à partir de|a partir de|avec|via) (mon|ma|l'application|outlook"
    r"|yahoo|courrier|gmail|aol|orange|free|sfr|bouygues|samsung|proton)\b.*",
    r"(get|obtenir|t[ée]l[ée]charge[zr]?|download) outlook (for|pour) (ios|android)\b.*",
    r"von meinem .{0,40}gesendet\.?",
    r"enviado desde mi .{0,40}",
    r"inviato da(l)? .{0,40}(iphone|ipad|android|smartphone|mobile).*",
]
_FOOTER = re.compile(r"^(" + "|".join(_FOOTERS) + r")$", re.IGNORECASE)
_FOOTER_MAX_LEN = 100

_SIGNATURE_DELIMITER = re.compile(r"^--\s*$")

# Outlook-style header blocks of a quoted original, per language; the key is what the
# field means, so a block needs a "from" and at least one other field.
_HEADER_FIELDS = {
    "from": r"from|de|von|от|da|van",
    "date": r"sent|date|envoy[ée]|gesendet|datum|отправлено|дата|inviato|enviado",
    "to": r"to|à|an|кому|para|aan",
    "cc": r"cc",
    "subject": r"subject|objet|betreff|тема|oggetto|asunto|onderwerp",
}
_HEADER_LINE = re.compile(
    r"^\s*\*?(?:"
    + "|".join(f"(?P<{key}>{names})" for key, names in _HEADER_FIELDS.items())
    + r")\s*\*?\s*:",
    re.IGNORECASE,
)
_HEADER_LOOKAHEAD = 8

_STRONG_ATTRIBUTION = re.compile(
    r"(wrote|a [ée]crit|написал[аи]?|schrieb|escribi[óo]|ha scritto|schreef|skrev|kirjoitti"
    r"|escreveu|napisał[a]?)\s*:\s*$",
    re.IGNORECASE,
)
# Web mails (mail.ru, Yandex) write only "<date>, <name> <address>:" above a quote.
_WEAK_ATTRIBUTION = re.compile(r"(@|\d{1,2}[:./]\d{2}).*:\s*$")
_ATTRIBUTION_MAX_LEN = 300
_ATTRIBUTION_START = re.compile(
    r"^(on|le|am|el|il|op|em|w dniu|\d|mon|tue|wed|thu|fri|sat|sun|lun|mar|mer|jeu|ven|sam"
    r"|dim)\b",
    re.IGNORECASE,
)

_CLOSING = re.compile(
    r"^(bien |très |tres )?cordialement|^bien [àa] vous|^(sinc[èe]res |meilleures )?salutations"
    r"|^(best|kind|warm|warmest)? ?regards|^sincerely|^mit freundlichen gr[üu](ß|ss)en",
    re.IGNORECASE,
)
_CONTACT = re.compile(
    r"^(t[ée]l[ée]phone|t[ée]l|tel|phone|mobile?|portable|port\.|fax|ligne directe|standard|gsm)"
    r"\b.*\d"
    r"|[\w.+-]+@[\w-]+\.[\w.-]+",
    re.IGNORECASE,
)
_SIGNATURE_MAX_LINES = 8
_CLOSING_MAX_LEN = 40

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\xad"))
_WIDE_SPACES = re.compile(r"[\xa0\u2000-\u200a\u202f\u205f\u3000\t\f\v]")
_SPACE_RUNS = re.compile(r" {2,}")
_DIVIDER = re.compile(r"^[_\-=*~]{3,}$")


def strip_quotes(text: str) -> str:
    """The author's own words: no quoted original, signature or footer; tidy whitespace."""
    lines = normalise_whitespace(text).split("\n")
    lines = _remove_quotes(lines)
    lines = _remove_contact_signature(lines)
    return normalise_whitespace("\n".join(lines))


def normalise_whitespace(text: str) -> str:
    """Single spaces, trimmed lines, at most one blank line in a row, no outer blanks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = _SPACE_RUNS.sub(" ", _WIDE_SPACES.sub(" ", text))
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip(" ")
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def _remove_quotes(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if CUT in line:
            out.append(line.split(CUT, 1)[0])
            break
        if _ends_own_text(lines, i):
            break
        if line.lstrip().startswith(">"):
            i += 1
            continue
        span, strong = _attribution_span(lines, i)
        if span:
            after = _next_non_blank(lines, i + span)
            if after is None or lines[after].lstrip().startswith(">"):
                i += span  # the quote below is marked: drop only the attribution
                continue
            if strong:
                break  # an unmarked original follows the attribution
        out.append(line)
        i += 1
    return _drop_trailing_dividers(out)


def _ends_own_text(lines: list[str], i: int) -> bool:
    """True when line `i` starts what the author did not write: signature, original…"""
    stripped = lines[i].strip()
    return bool(
        _SIGNATURE_DELIMITER.match(lines[i])
        or _SEPARATOR.match(stripped)
        or (len(stripped) <= _FOOTER_MAX_LEN and _FOOTER.match(stripped))
        or _starts_header_block(lines, i)
    )


def _header_field(line: str) -> str | None:
    match = _HEADER_LINE.match(line)
    if match is None:
        return None
    return next(key for key, value in match.groupdict().items() if value is not None)


def _starts_header_block(lines: list[str], i: int) -> bool:
    """`From: … Sent: … To: … Subject:` (any order, several languages) starting at `i`."""
    if _header_field(lines[i]) is None:
        return False
    fields = set()
    for line in lines[i : i + _HEADER_LOOKAHEAD]:
        field = _header_field(line)
        if field is not None:
            fields.add(field)
    return "from" in fields and len(fields) >= 2 and bool(fields & {"date", "to", "subject"})


def _is_attribution(text: str) -> tuple[bool, bool]:
    """(is an attribution line, is unmistakably one such as "On … wrote:")."""
    text = text.strip()
    if not text or len(text) > _ATTRIBUTION_MAX_LEN or text.startswith(">"):
        return False, False
    if _STRONG_ATTRIBUTION.search(text):
        return True, True
    return bool(_WEAK_ATTRIBUTION.search(text)), False


def _attribution_span(lines: list[str], i: int) -> tuple[int, bool]:
    """How many lines (0, 1 or 2: clients wrap long ones) form an attribution at `i`."""
    found, strong = _is_attribution(lines[i])
    if found:
        return 1, strong
    if i + 1 >= len(lines) or not lines[i].strip() or not lines[i + 1].strip():
        return 0, False
    following = lines[i + 1].strip()
    if following.startswith(">") or (
        _is_attribution(following)[0] and _ATTRIBUTION_START.match(following)
    ):
        return 0, False  # line `i` is the author's, the attribution is the next line
    found, strong = _is_attribution(lines[i] + " " + lines[i + 1])
    # A joined pair must still look like one: a date or an address in it.
    if found and re.search(r"\d|@", lines[i] + lines[i + 1]):
        return 2, strong
    return 0, False


def _next_non_blank(lines: list[str], start: int) -> int | None:
    for j in range(start, len(lines)):
        if lines[j].strip():
            return j
    return None


def _drop_trailing_dividers(lines: list[str]) -> list[str]:
    # Outlook puts a line of underscores above the quoted header block.
    while lines and (not lines[-1].strip() or _DIVIDER.match(lines[-1].strip())):
        lines.pop()
    return lines


def _remove_contact_signature(lines: list[str]) -> list[str]:
    """Drop a closing ("Cordialement,") followed by a short block with contact details.

    Without contact details ("Thanks,\\nAlex") the closing is part of the message and stays.
    """
    for i in range(len(lines) - 1, 0, -1):
        closing = lines[i].strip()
        if len(closing) > _CLOSING_MAX_LEN or not _CLOSING.match(closing):
            continue
        tail = [line for line in lines[i + 1 :] if line.strip()]
        if 0 < len(tail) <= _SIGNATURE_MAX_LINES and any(_CONTACT.search(t) for t in tail):
            if any(line.strip() for line in lines[:i]):
                return lines[:i]
        break
    return lines
