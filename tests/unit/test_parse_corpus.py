"""Every email of tests/corpus/emails gives the request its JSON file describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from campaigns.request import SendRequest
from mail2sms.parse import parse_email

EMAILS = Path(__file__).parents[1] / "corpus" / "emails"
CASES = sorted(EMAILS.glob("*.eml"))


def as_expected(request: SendRequest) -> dict[str, Any]:
    """The request in the corpus JSON shape (see tests/corpus/README.md)."""
    return {
        "user": request.user,
        "recipients": request.recipients,
        "groups": request.groups,
        "text": request.text,
        "category": request.category,
        "sender": request.sender,
        "at": request.at.isoformat() if request.at else None,
        "test": request.test,
        "warnings_count": len(request.warnings),
        "subject": request.subject,
        "email_message_id": request.email_message_id,
    }


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 18
    assert all(path.with_suffix(".json").exists() for path in CASES)


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_corpus_email(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    options: dict[str, Any] = {"user": None, "domains": ["sms.example.com"]}
    options.update(expected.pop("parse", {}))
    request = parse_email(path.read_bytes(), **options)
    actual = as_expected(request)
    assert {key: actual[key] for key in expected} == expected, request.warnings
    if request.at is not None:
        assert request.at.utcoffset() is not None
