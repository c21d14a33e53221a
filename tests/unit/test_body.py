"""extract_text: part choice, decoding, HTML to text, quotes, signatures, whitespace."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from mail2sms.body import BodyError, decode_bytes, extract_text, html_to_text, unflow
from mail2sms.quotes import normalise_whitespace, strip_quotes

CORPUS = Path(__file__).parents[1] / "corpus" / "emails"


def read(raw: bytes) -> EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(raw)  # type: ignore[return-value]


def html_message(html: str) -> EmailMessage:
    msg = EmailMessage()
    msg.set_content(html, subtype="html")
    return msg


def html_text(html: str) -> str:
    return extract_text(html_message(html))


# --- part choice -----------------------------------------------------------------------


def test_plain_is_preferred_over_html() -> None:
    msg = EmailMessage()
    msg.set_content("From the plain part")
    msg.add_alternative("<p>From the HTML part</p>", subtype="html")
    assert extract_text(msg) == "From the plain part"


def test_html_when_no_plain_part() -> None:
    assert html_text("<p>Only <b>HTML</b></p>") == "Only HTML"


def test_blank_plain_part_falls_back_to_html() -> None:
    msg = EmailMessage()
    msg.set_content("\n \n")
    msg.add_alternative("<div>Real text</div>", subtype="html")
    assert extract_text(msg) == "Real text"


def test_attachments_are_ignored() -> None:
    msg = EmailMessage()
    msg.set_content("Body text")
    msg.add_attachment("not the body", filename="notes.txt")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    assert extract_text(msg) == "Body text"


def test_text_attachment_alone_is_no_text() -> None:
    msg = EmailMessage()
    msg.add_attachment("only a file", filename="notes.txt")
    assert extract_text(msg) == ""


def test_forwarded_message_is_not_the_text() -> None:
    inner = EmailMessage()
    inner.set_content("inner text")
    msg = EmailMessage()
    msg.set_content("outer text")
    msg.add_attachment(inner)
    assert extract_text(msg) == "outer text"


def test_multipart_related_html() -> None:
    msg = EmailMessage()
    msg.set_content("<p>Logo below</p><img src='cid:logo'>", subtype="html")
    msg.add_related(b"\x89PNG", maintype="image", subtype="png", cid="<logo>")
    assert extract_text(msg) == "Logo below"


# --- decoding --------------------------------------------------------------------------


def raw_text(body: bytes, charset: str, cte: str = "8bit") -> bytes:
    return (
        f"Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n"
        f"Content-Transfer-Encoding: {cte}\n\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        ("Réunion à 18h – salle €".encode(), "utf-8"),
        ("Réunion à 18h".encode("latin-1"), "iso-8859-1"),
        ("L’été à 5 €".encode("cp1252"), "windows-1252"),
        ("L’été à 5 €".encode("cp1252"), "iso-8859-1"),  # mislabelled, as Outlook does
        ("Réunion à 18h".encode("cp1252"), "utf-8"),  # wrong label
        ("Réunion à 18h".encode(), "x-unknown-charset"),  # unknown label
        ("Réunion à 18h".encode(), "us-ascii"),
    ],
)
def test_charsets(body: bytes, charset: str) -> None:
    expected = body.decode("utf-8") if charset in ("x-unknown-charset", "us-ascii") else None
    text = extract_text(read(raw_text(body, charset)))
    assert text == (expected or _best(body))


def _best(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252")


def test_quoted_printable_and_base64() -> None:
    qp = raw_text(b"Caf=C3=A9 =C3=A0 10h, soft=\n break", "utf-8", "quoted-printable")
    assert extract_text(read(qp)) == "Café à 10h, soft break"
    b64 = raw_text(b"Q2Fmw6kgw6AgMTBo\n", "utf-8", "base64")
    assert extract_text(read(b64)) == "Café à 10h"


def test_invalid_base64_is_a_body_error() -> None:
    with pytest.raises(BodyError, match="not valid base64"):
        extract_text(read(raw_text(b"***not base64***\n", "utf-8", "base64")))


def test_decode_bytes_never_fails() -> None:
    assert decode_bytes(b"\x81\x8d\xff", "utf-8") == "\ufffd\ufffdÿ"
    assert decode_bytes(b"caf\xe9", None) == "café"
    assert decode_bytes(b"caf\xc3\xa9", "bogus") == "café"


def test_single_part_message_without_mime_headers() -> None:
    assert extract_text(read(b"Subject: x\n\nPlain old text\n")) == "Plain old text"


def test_control_characters_removed() -> None:
    assert extract_text(read(b"Subject: x\n\nA\x00B\x1b[31mC\n")) == "A B [31mC"


def test_format_flowed() -> None:
    raw = (
        b"Subject: x\nContent-Type: text/plain; charset=utf-8; format=flowed\n\n"
        b"Line one is \nflowed.\n> quoted \nNot quoted\n"
    )
    assert extract_text(read(raw)) == "Line one is flowed.\nNot quoted"


def test_unflow_delsp() -> None:
    assert unflow("Hel \nlo", delsp=True) == "Hello"
    assert unflow(" >stuffed") == ">stuffed"


# --- HTML ------------------------------------------------------------------------------


def test_line_breaks_from_br_p_div() -> None:
    html = "<div>One</div><div>Two<br>Three</div><p>Four</p><p>Five</p><div><br></div>Six"
    assert html_text(html) == "One\nTwo\nThree\n\nFour\n\nFive\n\nSix"


def test_html_whitespace_is_folded() -> None:
    assert html_text("<p>  Many \n\n  spaces\tand&nbsp;&nbsp;nbsp </p>") == ("Many spaces and nbsp")


def test_entities_and_inline_tags() -> None:
    assert html_text("<p>R&eacute;union &agrave; <b>18h</b> &amp; <a href='x'>lien</a></p>") == (
        "Réunion à 18h & lien"
    )


def test_outlook_word_html() -> None:
    html = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
    <style><!-- p.MsoNormal {margin:0cm;} --></style>
    <!--[if gte mso 9]><xml><o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]-->
    </head><body lang=FR><div class=WordSection1>
    <p class=MsoNormal>Bonjour,<o:p></o:p></p>
    <p class=MsoNormal><o:p>&nbsp;</o:p></p>
    <p class=MsoNormal>Ligne 1<o:p></o:p></p>
    <p class=MsoNormal>Ligne 2<o:p></o:p></p>
    </div></body></html>"""
    assert html_text(html) == "Bonjour,\n\nLigne 1\nLigne 2"


def test_style_script_and_comments_are_not_text() -> None:
    html = "<style>p {color: red}</style><script>alert(1)</script><!-- hidden -->Visible"
    assert html_text(html) == "Visible"


def test_blockquote_removed() -> None:
    assert html_text("<div>Reply</div><blockquote><div>Original</div></blockquote>") == "Reply"


def test_blockquote_attribution_removed() -> None:
    html = (
        "<div>Reply</div><div><br><blockquote type='cite'><div>Le 23 nov. 2026 à 18:40, "
        "Marie &lt;m@example.org&gt; a écrit :</div><div>Original</div></blockquote></div>"
    )
    assert html_text(html) == "Reply"


def test_gmail_quote_removed() -> None:
    html = (
        '<div dir="ltr">Reply</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "On Mon, Nov 23, 2026 at 6:02 PM Jo wrote:<br></div><blockquote class=gmail_quote>"
        "Original</blockquote></div>"
    )
    assert html_text(html) == "Reply"


@pytest.mark.parametrize(
    "separator",
    [
        '<div id="appendonsend"></div><hr>',
        '<div id="divRplyFwdMsg">',
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>",
        '<hr id="stopSpelling">',
    ],
)
def test_outlook_separators_cut_the_rest(separator: str) -> None:
    html = f"<div>Reply</div>{separator}<b>From:</b> Bob<br>Hello</div><div>Original</div>"
    assert html_text(html) == "Reply"


def test_signature_containers_removed() -> None:
    html = (
        "<div>Reply</div><div class='gmail_signature'>Alice | Mairie</div>"
        "<div id='Signature'>Alice Martin</div><pre class='moz-signature'>-- Alice</pre>"
    )
    assert html_text(html) == "Reply"


def test_markers_in_input_are_not_trusted() -> None:
    assert html_to_text("A\x00B\x01C\x02D") == "ABCD"


def test_deep_html_does_not_crash() -> None:
    html = "<div>" * 3000 + "deep" + "</div>" * 3000
    assert html_text(html) == "deep"


def test_outlook_corpus_html_part_gives_the_same_text_as_its_plain_part() -> None:
    msg = read((CORPUS / "outlook_desktop_fr_reply.eml").read_bytes())
    html = next(part for part in msg.walk() if part.get_content_type() == "text/html")
    assert extract_text(html) == extract_text(msg)


# --- quotes and signatures -------------------------------------------------------------


@pytest.mark.parametrize(
    "quote",
    [
        "On Mon, Nov 23, 2026 at 6:02 PM Jo Lee <jo@example.org> wrote:\n\n> Original",
        "Le 24/11/2026 à 09:00, Alice Martin a écrit :\n> Original",
        "Le lun. 23 nov. 2026 à 18:02, Paul Girard <paul@example.org> a\nécrit :\n\n> Original",
        "On Mon, Nov 23, 2026 at 6:02 PM Jo Lee <jo@example.org>\nwrote:\n> Original",
        "> Original\n> more",
        "-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: x\n\nOriginal",
        "-------- Message d'origine --------\nDe : Bob\nDate : lundi\nÀ : Alice\nOriginal",
        "-------- Message transféré --------\nSujet : x\nOriginal",
        "---------- Forwarded message ---------\nFrom: Bob\nOriginal",
        "De : Bob <b@example.org>\nEnvoyé : lundi 23 novembre 2026 17:52\nÀ : Alice\n"
        "Objet : Réunion\n\nOriginal",
        "From: Bob <b@example.org>\nSent: Monday, November 23, 2026 5:52 PM\nTo: Alice\n"
        "Subject: Meeting\n\nOriginal",
        "*From:* Bob <b@example.org>\n*Sent:* Monday\n*To:* Alice\n*Subject:* x\n\nOriginal",
        "________________________________\nDe : Bob\nEnvoyé : lundi\nÀ : Alice\nOriginal",
        "Begin forwarded message:\n\nFrom: Bob\nOriginal",
        '26.06.2014, 14:41, "Alexander L" <abc@example.com>:\n> Original',
        "On Mon, Nov 23, 2026 at 6:02 PM Jo Lee <jo@example.org> wrote:\n\nUnmarked original",
    ],
)
def test_quotes_are_removed(quote: str) -> None:
    assert strip_quotes(f"Reply text\n\n{quote}") == "Reply text"


def test_bottom_posting_keeps_the_reply() -> None:
    text = "On 04/02/2012 06:26 PM, Megan wrote:\n> Hi\nHello\n-- \nBob"
    assert strip_quotes(text) == "Hello"


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Envoyé de mon iPhone",
        "Sent from my Android",
        "Envoyé depuis mon smartphone Samsung Galaxy",
        "Sent from Outlook for iOS",
        "Obtenir Outlook pour Android",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Sent from Mail for Windows",
        "Envoyé à partir de Courrier pour Windows",
        "Sent from Yahoo Mail on Android",
        "Envoyé de mon iPad",
        "Von meinem iPhone gesendet",
    ],
)
def test_mobile_footers_are_removed(footer: str) -> None:
    assert strip_quotes(f"Reply text\n\n{footer}\n\nOn Mon, Bob wrote:\n> x") == "Reply text"


@pytest.mark.parametrize("delimiter", ["-- ", "--"])
def test_signature_delimiter(delimiter: str) -> None:
    assert strip_quotes(f"Reply text\n{delimiter}\nAlice\n01 23 45 67 89") == "Reply text"


def test_closing_with_contact_details_is_a_signature() -> None:
    text = "RDV confirmé.\n\nCordialement,\n\nAlice Martin\nMairie\nTél. : 04 72 00 00 00"
    assert strip_quotes(text) == "RDV confirmé."


def test_closing_without_contact_details_stays() -> None:
    assert strip_quotes("RDV confirmé.\n\nCordialement,\nAlice") == (
        "RDV confirmé.\n\nCordialement,\nAlice"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Sent from the town hall: the road is closed.",
        "Rendez-vous le 12/03 à 10:00.\nApportez : un stylo",
        "From: the mayor. Date: tomorrow.",
        "Envoyé de la part du maire.",
        "Le 24/11 à 9h, venez nombreux.",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert strip_quotes(text) == text


def test_normalise_whitespace() -> None:
    text = "  a \t  b  \r\n\r\n\r\n\n c\u200b\xa0d  \n\n"
    assert normalise_whitespace(text) == "a b\n\nc d"
