"""What a user asked to send, whatever it came from (email, CLI, API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Category = Literal["alert", "marketing"]


@dataclass
class SendRequest:
    user: str  # the authenticated sender's email address
    text: str
    recipients: list[str] = field(default_factory=list)  # numbers as written
    groups: list[str] = field(default_factory=list)  # group names, without '#'
    category: Category | None = None  # None: the user's default (alert)
    sender: str | None = None  # sender ID from [from:...]
    at: datetime | None = None  # aware datetime from [at:...]
    test: bool = False
    source: str = "smtp"  # smtp | imap | cli | api
    subject: str = ""
    email_message_id: str | None = None  # for threading replies and reports
    #: Template fields per recipient as written in ``recipients`` (contact records of an
    #: event send); group members bring their own.
    fields: dict[str, dict] = field(default_factory=dict)
    #: Problems found while reading the request that do not stop it (unknown option,
    #: a token that is not a number): reported to the sender.
    warnings: list[str] = field(default_factory=list)
    template: str | None = None  # a saved template's name: its text is the SMS text
    draft: bool = False  # queued but held until released (``mail2sms sends release``)
