"""Turn a SendRequest into one planned message per recipient, applying the trade rules.

Planning is pure: everything it needs from the database comes in a ``Lookups`` object,
so ``mail2sms send --dry-run`` and the real send share every decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from autoresponder.render import TemplateProblem, check, has_fields, render
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from sms.encoding import analyse, transliterate
from sms.phones import Phone, normalise
from sms.sender import validate_sender
from sms.stop import needs_stop_mention, with_stop_mention
from sms.window import next_allowed
from store.models import MessageStatus

_E164 = re.compile(r"\+[1-9]\d{7,14}")

NPAI_REASON = "number unassigned (NPAI): reported twice in a row, see mail2sms npai list"

#: A deferred time this far in the past is taken as "now" rather than refused.
_PAST_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class UserPolicy:
    """What the sender may do, from the ``users`` config entry."""

    email: str
    sender: str | None = None
    test_number: str | None = None
    daily_limit: int | None = None
    category: str = "alert"


@dataclass
class Lookups:
    """Database facts planning depends on, fetched by the caller."""

    opted_out: set[str] = field(default_factory=set)
    sent_today: dict[str, int] = field(default_factory=dict)  # per E.164 number
    user_sent_today: int = 0
    group_members: Callable[[str], list[tuple[str, dict]] | None] = lambda _name: None
    #: A saved template's text by name (case ignored), None when unknown.
    template_text: Callable[[str], str | None] = lambda _name: None
    template_names: list[str] = field(default_factory=list)  # for the unknown-name reason
    #: Numbers flagged as unassigned (NPAI): skipped.
    unassigned: set[str] = field(default_factory=set)
    #: Segments of credit left; None when credit is not in use.
    credit_left: int | None = None
    #: False when credit is on but no balance was ever set (the refusal says how to).
    credit_opened: bool = True


@dataclass(slots=True)
class PlannedMessage:
    raw: str  # the recipient as written
    to: str  # E.164, or the text as written when invalid
    status: str
    reason: str | None
    text: str
    encoding: str
    segments: int
    sender: str
    not_before: datetime | None = None  # aware UTC


@dataclass
class Plan:
    request: SendRequest
    category: str
    sender: str
    messages: list[PlannedMessage] = field(default_factory=list)
    refused: str | None = None  # the whole request is refused, with this reason
    text: str = ""  # the text planned: the request's, or its template's
    notices: list[str] = field(default_factory=list)  # told to the sender
    not_before: datetime | None = None  # aware UTC, when deferred
    #: Credit left once this send has taken its segments; None when credit is not in use.
    credit_left: int | None = None

    def count(self, status: str) -> int:
        return sum(1 for m in self.messages if m.status == status)

    @property
    def segments(self) -> int:
        sendable = (MessageStatus.QUEUED, MessageStatus.DEFERRED)
        return sum(m.segments for m in self.messages if m.status in sendable)


@dataclass(slots=True)
class _Recipient:
    raw: str
    phone: Phone
    fields: dict


def numbers_of(request: SendRequest, policy: UserPolicy, compliance: ComplianceConfig) -> list[str]:
    """The E.164 numbers planning will need facts about (opt-outs, daily counts)."""
    raws = [policy.test_number] if request.test and policy.test_number else request.recipients
    out = []
    for raw in raws:
        phone = normalise(raw, compliance.country, allow_landlines=compliance.allow_landlines)
        if phone.e164:
            out.append(phone.e164)
    return out


def _recipients(
    request: SendRequest, policy: UserPolicy, compliance: ComplianceConfig, lookups: Lookups,
    plan: Plan,
) -> list[_Recipient]:
    if request.test:
        if not policy.test_number:
            plan.refused = "[test] needs a test number: none is set for you in the config"
            return []
        phone = normalise(policy.test_number, compliance.country, allow_landlines=False)
        plan.notices.append("test send: only to your own test number")
        return [_Recipient(policy.test_number, phone, {})]
    found: list[_Recipient] = []
    for raw in request.recipients:
        phone = normalise(raw, compliance.country, allow_landlines=compliance.allow_landlines)
        found.append(_Recipient(raw, phone, request.fields.get(raw, {})))
    for group in request.groups:
        members = lookups.group_members(group)
        if members is None:
            plan.notices.append(f"unknown group #{group}: nobody was added from it")
            continue
        for raw, fields in members:
            # Directory numbers were normalised and checked when stored: parsing them
            # again would be most of the time a 100,000-member send takes to plan.
            phone = (Phone(raw, raw, "mobile", None) if _E164.fullmatch(raw) else
                     normalise(raw, compliance.country,
                               allow_landlines=compliance.allow_landlines))
            found.append(_Recipient(raw, phone, fields))
    seen: set[str] = set()
    unique: list[_Recipient] = []
    merged = 0
    for rec in found:
        key = rec.phone.e164 or f"raw:{rec.raw}"
        if key in seen:
            merged += 1
            continue
        seen.add(key)
        unique.append(rec)
    if merged:
        plan.notices.append(f"{merged} duplicate number(s) merged")
    return unique


def _timing(
    request: SendRequest, category: str, compliance: ComplianceConfig, now: datetime, plan: Plan
) -> datetime | None:
    """When the messages may go: None for now, else an aware UTC datetime."""
    when: datetime | None = None
    if request.at is not None:
        at = request.at if request.at.tzinfo else request.at.replace(
            tzinfo=ZoneInfo(compliance.timezone))
        if at < now - _PAST_TOLERANCE:
            plan.notices.append(f"[at:{_local(at, compliance)}] is in the past: sent now")
        elif at > now:
            when = at.astimezone(UTC)
    if category == "marketing":
        start = when or now
        allowed = next_allowed(start, compliance.marketing_window,
                               timezone=compliance.timezone, country=compliance.country)
        if allowed > start:
            when = allowed.astimezone(UTC)
            plan.notices.append(
                "marketing SMS may only go out "
                f"{compliance.marketing_window.start:%H:%M}–{compliance.marketing_window.end:%H:%M}"
                f" on {', '.join(compliance.marketing_window.days)}, not on public holidays: "
                f"deferred to {_local(allowed, compliance)}"
            )
    return when


def _local(when: datetime, compliance: ComplianceConfig) -> str:
    return when.astimezone(ZoneInfo(compliance.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _final_text(text: str, category: str, sender: str, shortcode: str,
                compliance: ComplianceConfig) -> str:
    if compliance.transliterate:
        text = transliterate(text)
    # The STOP mention is required for marketing from a customised sender; it is part
    # of the text, so it is counted in the segments.
    if (category == "marketing" and sender != shortcode
            and needs_stop_mention(text, compliance.stop_mention)):
        text = with_stop_mention(text, compliance.stop_mention)
    return text


def _source_text(request: SendRequest, lookups: Lookups, plan: Plan) -> str:
    """The request's text, or its template's; sets ``plan.refused`` when neither works."""
    if request.template is None:
        return request.text
    name = request.template
    if request.text.strip():
        plan.refused = f"[template:{name}] and a body: use one or the other"
        return ""
    found = lookups.template_text(name)
    if found is None:
        known = ", ".join(lookups.template_names) or "none is saved yet"
        plan.refused = f"unknown template {name!r}: known templates: {known}"
        return ""
    return found


def plan_send(
    request: SendRequest,
    *,
    policy: UserPolicy,
    compliance: ComplianceConfig,
    shortcode: str,
    lookups: Lookups,
    now: datetime | None = None,
) -> Plan:
    """Decide, per recipient, what will happen to this request. Pure."""
    now = now or datetime.now(UTC)
    category = request.category or policy.category or "alert"
    sender = request.sender or policy.sender or shortcode
    plan = Plan(request=request, category=category, sender=sender)
    plan.notices.extend(request.warnings)

    problem = validate_sender(sender)
    if problem:
        plan.refused = f"sender {sender!r} is not valid: {problem}"
        return plan
    text = _source_text(request, lookups, plan)
    if plan.refused:
        return plan
    plan.text = text
    if not text.strip():
        plan.refused = "the message has no text"
        return plan
    try:
        check(text)
    except TemplateProblem as exc:
        plan.refused = str(exc)
        return plan

    recipients = _recipients(request, policy, compliance, lookups, plan)
    if plan.refused:
        return plan
    if not recipients:
        plan.refused = ("no recipient: put numbers or #Group in the Subject, "
                        "or the number as the To address")
        return plan

    not_before = _timing(request, category, compliance, now, plan)
    plan.not_before = not_before
    base_text = _final_text(text, category, sender, shortcode, compliance)
    personalised = has_fields(base_text)
    sent_today = dict(lookups.sent_today)
    user_total = lookups.user_sent_today
    cap = compliance.max_per_number_per_day

    for rec in recipients:
        phone = rec.phone
        to = phone.e164 or rec.raw
        text = base_text
        status = MessageStatus.DEFERRED if not_before else MessageStatus.QUEUED
        reason: str | None = None
        if personalised:
            try:
                text = render(base_text, {"phone": to, **rec.fields})
            except TemplateProblem as exc:
                if exc.kind != "missing":
                    plan.refused = str(exc)
                    plan.messages.clear()
                    return plan
                status, reason = MessageStatus.SKIPPED, str(exc)
        info = analyse(text)
        if status not in (MessageStatus.SKIPPED,):
            if phone.e164 is None:
                status, reason = MessageStatus.SKIPPED, phone.reason or "invalid number"
            elif phone.reason:
                status, reason = MessageStatus.SKIPPED, phone.reason
            elif phone.e164 in lookups.opted_out:
                status, reason = MessageStatus.SKIPPED, "opted out"
            elif phone.e164 in lookups.unassigned:
                status, reason = MessageStatus.SKIPPED, NPAI_REASON
            elif info.segments > compliance.max_segments:
                status, reason = MessageStatus.SKIPPED, (
                    f"text too long: {info.segments} SMS parts, at most "
                    f"{compliance.max_segments} (compliance.max_segments)")
            elif sent_today.get(phone.e164, 0) >= cap:
                status, reason = MessageStatus.REFUSED, (
                    f"more than {cap} SMS today to this number (spam rule)")
            elif policy.daily_limit is not None and user_total >= policy.daily_limit:
                status, reason = MessageStatus.SKIPPED, (
                    f"daily cap: {policy.daily_limit} SMS a day for {policy.email}")
        if status in (MessageStatus.QUEUED, MessageStatus.DEFERRED):
            sent_today[phone.e164 or to] = sent_today.get(phone.e164 or to, 0) + 1
            user_total += 1
        plan.messages.append(PlannedMessage(
            raw=rec.raw, to=to, status=status, reason=reason, text=text,
            encoding=info.encoding, segments=info.segments, sender=sender,
            not_before=not_before if status == MessageStatus.DEFERRED else None,
        ))
    if not personalised and plan.messages and all(
        m.reason and m.reason.startswith("text too long") for m in plan.messages
    ):
        plan.refused = plan.messages[0].reason
    if lookups.credit_left is not None and not plan.refused:
        _apply_credit(plan, lookups.credit_left, opened=lookups.credit_opened)
    return plan


def credit_refusal(needed: int, left: int, *, opened: bool = True) -> str:
    """Why a send larger than the credit is refused, with the numbers."""
    reason = (f"not enough credit: this send needs {needed:,} segment{'s' * (needed != 1)} "
              f"and {left:,} {'are' if left != 1 else 'is'} left")
    if not opened:
        reason += " (no credit was ever added: an admin runs `mail2sms credit add N`)"
    return reason


def _apply_credit(plan: Plan, left: int, *, opened: bool) -> None:
    """Refuse the whole send when it needs more than is left: never a partial send."""
    needed = plan.segments
    if needed > left:
        plan.refused = credit_refusal(needed, left, opened=opened)
    else:
        plan.credit_left = left - needed
