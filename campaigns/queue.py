"""Plan a request against the database and, unless it is a dry run, queue its messages."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session

from campaigns.plan import Lookups, Plan, UserPolicy, credit_refusal, numbers_of, plan_send
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from store import contacts, credit, npai, queries, sends, templates
from store.models import MessageStatus

_SENDABLE = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Midnight of ``now``'s day in the given zone, as aware UTC."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(UTC)


def prepare(
    session: Session,
    request: SendRequest,
    *,
    policy: UserPolicy,
    compliance: ComplianceConfig,
    shortcode: str,
    now: datetime | None = None,
    credit_enabled: bool = False,
) -> Plan:
    """Fetch what planning needs and plan; writes nothing.

    With ``credit_enabled`` a send larger than the balance is refused (a dry run shows
    it too); the balance is only taken by ``commit_plan``.
    """
    now = now or datetime.now(UTC)
    numbers = numbers_of(request, policy, compliance)
    # Members are fetched first: their numbers need the same opt-out and daily checks.
    members = {} if request.test else {
        name: contacts.group_members(session, name) for name in request.groups}
    numbers += [number for found in members.values() for number, _ in found or ()]
    since = start_of_day(now, compliance.timezone)
    saved = templates.get(session, request.template) if request.template else None
    lookups = Lookups(
        template_text=lambda _name: saved.text if saved is not None else None,
        template_names=(templates.names(session) if request.template and saved is None
                        else []),
        group_members=members.get,
        opted_out=queries.opted_out(session, numbers),
        sent_today=queries.counts_since(session, numbers, since),
        # only counted when a limit is set: it is the costliest lookup for a busy user
        user_sent_today=(queries.user_count_since(session, policy.email, since)
                         if policy.daily_limit is not None else 0),
        unassigned=npai.flagged_numbers(session),
    )
    if credit_enabled:
        left = credit.balance(session)
        lookups.credit_left = left or 0
        lookups.credit_opened = left is not None
    return plan_send(
        request, policy=policy, compliance=compliance, shortcode=shortcode, lookups=lookups,
        now=now,
    )


def commit_plan(session: Session, plan: Plan, *, credit_enabled: bool = False) -> int:
    """Write the request and one message row per recipient; returns the request id.

    A refused plan is recorded too (status ``refused``), so nothing is ever dropped
    without a trace. With ``credit_enabled`` the send's segments are taken from the
    balance in this transaction, all or nothing: when another send took them first,
    the plan is refused here and recorded so.
    """
    request = plan.request
    entry = None
    if credit_enabled and not plan.refused and plan.segments:
        entry = credit.take(session, plan.segments, by=request.user)
        if entry is None:
            left = credit.balance(session)
            plan.refused = credit_refusal(plan.segments, left or 0, opened=left is not None)
            plan.credit_left = None
        else:
            plan.credit_left = entry.balance
    row = {
        "user": request.user,
        "source": request.source,
        "email_message_id": request.email_message_id,
        "subject": request.subject[:998],
        "text": plan.text or request.text,
        "category": plan.category,
        "sender": plan.sender,
        "not_before": plan.not_before,
        "test": request.test,
        "status": "refused" if plan.refused else "accepted",
        "reason": plan.refused,
    }
    messages = () if plan.refused else (
        {
            "to": m.to,
            "sender": m.sender,
            "text": m.text,
            "encoding": m.encoding,
            "segments": m.segments,
            "status": str(m.status),
            "reason": m.reason,
            "not_before": m.not_before,
            # marked as written rather than by a second UPDATE over a large send
            "charged": entry is not None and m.status in _SENDABLE,
        }
        for m in plan.messages
    )
    request_id = queries.insert_request(session, row, messages)
    if entry is not None:
        entry.request_id = request_id
    if request.draft and not plan.refused:
        sends.hold_draft(session, request_id)
    return request_id


def queue_request(
    session: Session,
    request: SendRequest,
    *,
    policy: UserPolicy,
    compliance: ComplianceConfig,
    shortcode: str,
    now: datetime | None = None,
    credit_enabled: bool = False,
) -> tuple[Plan, int]:
    """Plan and queue in the caller's transaction: the plan and the request id."""
    plan = prepare(
        session, request, policy=policy, compliance=compliance, shortcode=shortcode, now=now,
        credit_enabled=credit_enabled,
    )
    return plan, commit_plan(session, plan, credit_enabled=credit_enabled)
