"""Real client replies (talon's fixtures) in the shared corpus give the documented texts.

The corpus lives outside the repository: `$MAIL2SMS_SHARED_CORPUS`, else
`<repo>/../shared/corpus`. Its README says what each file must give.
"""

from __future__ import annotations

import email.policy
import os
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from mail2sms.body import extract_text
from mail2sms.parse import parse_email

REPO = Path(__file__).parents[2]
SHARED = Path(os.environ.get("MAIL2SMS_SHARED_CORPUS") or REPO.parent / "shared" / "corpus")
TALON = SHARED / "talon"

pytestmark = pytest.mark.skipif(
    not TALON.is_dir(),
    reason=f"shared corpus not found at {TALON} (set MAIL2SMS_SHARED_CORPUS to its directory)",
)


def files(folder: str, pattern: str) -> list[Path]:
    return sorted((TALON / folder).glob(pattern)) if TALON.is_dir() else []


def folded(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", files("standard_replies", "*.eml"), ids=lambda p: p.stem)
def test_standard_reply_gives_hello(path: Path) -> None:
    msg = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())
    assert extract_text(msg) == "Hello"


@pytest.mark.parametrize("path", files("standard_replies", "*.eml"), ids=lambda p: p.stem)
def test_standard_reply_through_parse_email(path: Path) -> None:
    # Their Subject is "Re: Test": give it a recipient so the whole intake runs.
    lines = path.read_bytes().split(b"\n")
    raw = b"\n".join(
        b"Subject: 0612345678" if line.startswith(b"Subject:") else line for line in lines
    )
    request = parse_email(raw, user="staff@example.org", domains=["example.com"])
    assert request.recipients == ["0612345678"]
    assert request.text == "Hello"


@pytest.mark.parametrize("path", files("html_replies", "*.html"), ids=lambda p: p.stem)
def test_html_reply_gives_the_reply(path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "0612345678"
    msg.set_content(path.read_text(encoding="utf-8"), subtype="html")
    assert folded(extract_text(msg)) == "Hi. I am fine. Thanks, Alex"


def test_corpus_has_the_documented_files() -> None:
    assert len(files("standard_replies", "*.eml")) >= 12
    assert len(files("html_replies", "*.html")) >= 9
