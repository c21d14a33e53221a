"""Settings for the SMS gateway client and the outgoing mail relay."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: What operators and SMSCs say for a number nobody has: not "absent subscriber", which
#: is a phone switched off or out of reach.
UNASSIGNED_ERRORS = ("unknown subscriber", "unassigned", "invalid destination", "0x0000000b",
                     "err:001")


class HttpProviderConfig(BaseModel):
    """A generic HTTP SMS provider: how to call it and how to read its answer."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "POST"] = "POST"
    body: Literal["json", "form", "query"] = "json"
    #: Request fields; each value is a template over: to, to_national, sender, text,
    #: message_id, coding (0 gsm7, 2 ucs2), dlr_url, username, password.
    fields: dict[str, str] = Field(
        default_factory=lambda: {"to": "{{ to }}", "from": "{{ sender }}", "text": "{{ text }}"}
    )
    headers: dict[str, str] = Field(default_factory=dict)
    #: Where the provider's message id is: ``json:path.to.id`` or ``regex:pattern`` (group 1).
    id_from: str = "json:id"
    ok_status: list[int] = Field(default_factory=lambda: [200, 201, 202])


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["console", "kannel", "http"] = "console"
    url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    username: str | None = "kannel"
    password: str | None = None
    shortcode: str = "36105"
    rate_per_second: float = 50.0
    outbox_file: str = "sent.jsonl"
    timeout: float = 10.0  # seconds per gateway call
    concurrency: int = 20  # gateway calls in flight at once
    max_attempts: int = 8  # transient failures retried with backoff up to this many tries
    #: Where the gateway posts delivery reports; derived from ``http`` when empty.
    dlr_url: str | None = None
    #: Delivery report texts (case-insensitive substrings) that mean "this number is not
    #: assigned to anyone"; two such reports in a row flag the number (NPAI).
    unassigned_errors: list[str] = Field(default_factory=lambda: list(UNASSIGNED_ERRORS))
    http: HttpProviderConfig = Field(default_factory=HttpProviderConfig)


class MailOutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    relay: str = "127.0.0.1:25"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    from_: str = Field("sms@sms.example.com", alias="from")
    timeout: float = 15.0
