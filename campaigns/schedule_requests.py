"""The SendRequests one run of a schedule makes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from autoresponder.render import TemplateProblem, has_fields, render
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
    if not has_fields(row.text):
        return [_request(row, row.text, [number for number, _ in contacts])]
    # The planner fills fields for group members only, so each contact's text is filled
    # here; contacts with the same text share one request (and one report).
    by_text: dict[str, list[str]] = {}
    unfilled: list[str] = []
    for number, fields in contacts:
        try:
            text = render(row.text, _fields(number, fields))
        except TemplateProblem as exc:
            if exc.kind != "missing":
                raise
            # the planner meets the same missing field and records the skip with its reason
            unfilled.append(number)
            continue
        by_text.setdefault(text, []).append(number)
    requests = [_request(row, text, numbers) for text, numbers in by_text.items()]
    if unfilled:
        requests.append(_request(row, row.text, unfilled))
    return requests


def _fields(number: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"phone": number, **fields}
