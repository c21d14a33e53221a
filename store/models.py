"""Tables. Every timestamp is an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now, the form every timestamp column holds."""
    return datetime.now(UTC)


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting for the dispatcher
    DEFERRED = "deferred"  # waiting for not_before (deferred send, marketing window)
    SKIPPED = "skipped"  # never sent: opted out, invalid number, landline, daily cap
    REFUSED = "refused"  # never sent: more than the per-number daily maximum
    SENDING = "sending"  # claimed by a dispatcher; the gateway call may be in flight
    UNCERTAIN = "uncertain"  # a dispatcher stopped mid-call: not resent, see README
    SUBMITTED = "submitted"  # accepted by the gateway
    PENDING = "pending"  # the operator buffers it (phone off)
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    LATE = "late"  # no delivery report 48 h after submission
    PAUSED = "paused"  # its send was paused before the dispatcher took it
    CANCELLED = "cancelled"  # its send was cancelled before the dispatcher took it


#: Statuses in which a message will not change again except through a late DLR.
FINAL_STATUSES = frozenset(
    {
        MessageStatus.SKIPPED,
        MessageStatus.REFUSED,
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.EXPIRED,
        MessageStatus.CANCELLED,
    }
)


class SendRequestRow(SQLModel, table=True):
    """One accepted (or refused) instruction to send: an email, a CLI call."""

    __tablename__ = "send_requests"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    user: str = Field(index=True)
    source: str = "smtp"  # smtp | imap | cli | api
    email_message_id: str | None = Field(default=None, index=True)
    subject: str = ""
    text: str = ""
    category: str = "alert"  # alert | marketing
    sender: str | None = None
    not_before: datetime | None = None
    test: bool = False
    status: str = "accepted"  # accepted | refused
    reason: str | None = None
    report_sent_at: datetime | None = None
    #: A campaign state set by hand: draft (held until released), paused, cancelled;
    #: None means ready, sending or done, which follow from its messages (store.sends).
    state: str | None = Field(default=None, index=True)


class Message(SQLModel, table=True):
    """One SMS to one recipient."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int | None = Field(default=None, foreign_key="send_requests.id", index=True)
    to: str = Field(index=True)  # E.164, or the text as written when invalid
    sender: str | None = None
    text: str = ""
    encoding: str = "gsm7"
    segments: int = 1
    status: str = Field(default=MessageStatus.QUEUED, index=True)
    reason: str | None = None
    not_before: datetime | None = None
    next_attempt_at: datetime | None = Field(default=None, index=True)
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    gateway_id: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    submitted_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    final_at: datetime | None = None
    #: Its segments were taken from the credit balance (given back once if it fails).
    charged: bool = False


class DeliveryReport(SQLModel, table=True):
    """Every DLR as received, kept for audit even when it changes nothing."""

    __tablename__ = "delivery_reports"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, index=True)
    gateway_id: str | None = None
    code: str = ""
    status: str = ""
    detail: str | None = None
    received_at: datetime = Field(default_factory=utcnow)


class OptOut(SQLModel, table=True):
    """A number that must never receive SMS again until it texts START."""

    __tablename__ = "optouts"

    number: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    source: str = "sms"  # sms | cli | import | api
    by: str | None = None


class OptOutEvent(SQLModel, table=True):
    """History of opt-out changes: when, how and by whom."""

    __tablename__ = "optout_events"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True)
    action: str = "add"  # add | remove
    at: datetime = Field(default_factory=utcnow)
    source: str = "sms"  # sms | cli | import | api
    by: str | None = None
    note: str | None = None  # e.g. how the person's consent to be removed was obtained


class InboundStatus(StrEnum):
    RECEIVED = "received"
    HANDLED = "handled"  # a step decided what to do with it
    DUPLICATE = "duplicate"
    ERROR = "error"


class Inbound(SQLModel, table=True):
    """One SMS received (MO), with what the pipeline decided and why."""

    __tablename__ = "inbound"

    id: int | None = Field(default=None, primary_key=True)
    #: Gateway id when it gives one, else a hash of sender, text and gateway time.
    dedup_key: str = Field(index=True, unique=True)
    gateway_id: str | None = None
    sender: str = Field(index=True)  # E.164 when it parses, else as received
    receiver: str = ""  # our shortcode or long number
    text: str = ""
    gateway_time: str | None = None
    received_at: datetime = Field(default_factory=utcnow, index=True)
    status: str = InboundStatus.RECEIVED
    #: The step that settled it (optout, optin, help, survey, keyword, forward, fallback).
    handled_by: str | None = None
    #: JSON list of {"step", "decision", "reason"}: every step's verdict, in order.
    decisions: str = "[]"
    rule: str | None = None  # keyword rule or survey that answered


class SurveySession(SQLModel, table=True):
    """A number going through a survey; at most one open per number."""

    __tablename__ = "survey_sessions"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True)
    survey: str = Field(index=True)
    step: str | None = None  # the question waiting for an answer
    retries: int = 0
    #: open | done | timeout | stopped (STOP) | abandoned (retries used up) | replaced
    status: str = Field(default="open", index=True)
    started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class SurveyAnswer(SQLModel, table=True):
    __tablename__ = "survey_answers"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="survey_sessions.id", index=True)
    survey: str = Field(index=True)
    step: str
    text: str  # as received
    value: str  # as validated: choice key, integer, yes/no, or the free text
    at: datetime = Field(default_factory=utcnow)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True)  # E.164
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    birthday: str | None = None  # ISO date
    fields: str = "{}"  # JSON object of custom fields
    tags: str = "[]"  # JSON list
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ContactGroup(SQLModel, table=True):
    __tablename__ = "contact_groups"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_members"

    group_id: int = Field(foreign_key="contact_groups.id", primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", primary_key=True, index=True)


class Schedule(SQLModel, table=True):
    """A periodic or event send; the server's scheduler fires it (see campaigns.schedules).

    Times of day and dates are in ``compliance.timezone``; ``next_run_at`` is UTC.
    """

    __tablename__ = "schedules"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    user: str = Field(index=True)  # who sends, as in SendRequest.user
    kind: str = "periodic"  # periodic | event
    text: str = ""
    recipients: str = "[]"  # JSON list of numbers as written
    groups: str = "[]"  # JSON list of group names, without '#'
    category: str | None = None  # alert | marketing; None: the user's default
    sender: str | None = None
    at: str = "09:00"  # HH:MM
    every: str | None = None  # periodic: daily | weekly | monthly
    weekday: str | None = None  # weekly: mon..sun
    day: int | None = None  # monthly: 1..31 (months without that day are skipped)
    repetitions: int | None = None  # periodic: done after this many runs
    until: str | None = None  # ISO date: no run after that day
    field: str | None = None  # event: birthday or a custom field holding a date
    offset_days: int = 0  # event: send N days after (N > 0) or before (N < 0) the date
    group: str | None = None  # event: only the members of this group
    status: str = Field(default="active", index=True)  # active | paused | cancelled | done
    runs: int = 0  # runs made (a run skipped after downtime is not counted)
    last_run_at: datetime | None = None
    next_run_at: datetime | None = Field(default=None, index=True)
    revision: int = 0  # bumped on every change: runs and edits never overwrite each other
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Template(SQLModel, table=True):
    """A saved SMS text with a name, used by ``[template:NAME]`` and ``send --template``.

    The name is stored as given and looked up case-insensitively (``store.templates``).
    """

    __tablename__ = "templates"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    text: str = ""
    description: str | None = None
    created_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CreditAccount(SQLModel, table=True):
    """The credit balance in segments; one row (id 1) once credit is in use."""

    __tablename__ = "credit_account"

    id: int | None = Field(default=None, primary_key=True)
    balance: int = 0
    #: The balance under which the last alert email went out (no alert twice in a row).
    alerted_below: int | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class CreditEntry(SQLModel, table=True):
    """Every change of the credit balance: top-ups, sends, segments given back."""

    __tablename__ = "credit_entries"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    change: int  # segments; negative when taken
    balance: int  # after the change
    reason: str = ""  # topup | set | send | failed | cancelled
    request_id: int | None = Field(default=None, index=True)
    by: str | None = None


class NumberHealth(SQLModel, table=True):
    """Numbers the operators reported unassigned (NPAI: n'habite pas à l'adresse)."""

    __tablename__ = "number_health"

    number: str = Field(primary_key=True)  # E.164
    unassigned_in_row: int = 0  # reset by a delivered report
    flagged_at: datetime | None = Field(default=None, index=True)  # skipped from then on
    last_reason: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
