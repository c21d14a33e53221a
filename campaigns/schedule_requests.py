"""The SendRequests one run of a schedule makes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from campaigns.request import SendRequest
from store import schedules
from store.models import Schedule


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _request(row: Schedule, text: str, recipients: list[str],
             groups: list[str] | None = None) -> SendRequest:
    return SendRequest(
        user=row.user, text=text, recipients=recipients, groups=groups or [],
        category=row.category,  # type: ignore[arg-type]
        sender=row.sender, source="schedule", subject=f"schedule #{row.id} {row.name}",
    )


def event_day(run_day: date, offset_days: int) -> date:
    """The date a contact's field must fall on for a run on ``run_day``: a send 2 days
    before a birthday (offset -2) runs on the 10th for the birthdays of the 12th."""
    return run_day - timedelta(days=offset_days)


def requests_for(session: Session, row: Schedule, run_day: date) -> list[SendRequest]:
    """Periodic: one request to the stored numbers and groups. Event: the contacts whose
    date field falls on the run's day, each text filled with the contact's fields."""
    if row.kind == "periodic":
        return [_request(row, row.text, _json_list(row.recipients), _json_list(row.groups))]
    assert row.field is not None
    contacts = schedules.contacts_on(session, row.field, event_day(run_day, row.offset_days),
                                     row.group)
    if not contacts:
        return []
    request = _request(row, row.text, [number for number, _ in contacts])
    # one request for the run: the planner fills each contact's fields (and skips, with
    # the reason, a contact missing one the text needs)
    request.fields = {number: _fields(number, fields) for number, fields in contacts}
    return [request]


def _fields(number: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"phone": number, **fields}
