"""Delivery reports: Kannel's ``%d`` codes and the generic JSON webhook, mapped to our
statuses, and stored against their message."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session

from gateway.config import UNASSIGNED_ERRORS
from sms.phones import mask
from store.batches import Batcher
from store.db import Database
from store.models import Message, MessageStatus, NumberHealth
from store.reports import DlrUpdate, apply_dlr

log = logging.getLogger("mail2sms.dlr")

_DETAIL_CHARS = 500

# Kannel's delivery-report types (``%d`` in a dlr-url).
KANNEL_DELIVERED = 1
KANNEL_FAILED = 2
KANNEL_BUFFERED = 4
KANNEL_SMSC_SUBMIT = 8
KANNEL_SMSC_REJECT = 16

_PHONE_OFF = "phone off or out of reach"
_REJECTED = "rejected by the operator"
_EXPIRED = "expired: the phone stayed off or out of reach for the whole validity period"
_UNDELIVERABLE = "not delivered by the operator"

_STAT = re.compile(r"\bstat:\s*([A-Za-z_]+)", re.IGNORECASE)
_ERR = re.compile(r"\berr:\s*(\w+)", re.IGNORECASE)


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text[:_DETAIL_CHARS] or None


def _smsc_codes(answer: str | None) -> str:
    """'stat:UNDELIV err:001' from an SMPP receipt, '' when the answer has neither."""
    if not answer:
        return ""
    stat, err = _STAT.search(answer), _ERR.search(answer)
    parts = ([f"stat:{stat.group(1)}"] if stat else []) + ([f"err:{err.group(1)}"] if err else [])
    return " ".join(parts)


def unassigned_text(text: str | None, patterns: Sequence[str]) -> str | None:
    """The report's text (clipped) when it says the number is not assigned, else None."""
    if not text:
        return None
    folded = text.casefold()
    if any(p and p.casefold() in folded for p in patterns):
        return _clip(text)
    return None


def from_kannel(status: int, answer: str | None,
                unassigned_errors: Sequence[str] = UNASSIGNED_ERRORS) -> DlrUpdate:
    """Map Kannel's ``%d`` (and ``%A``, the SMSC's answer) to a status.

    A failure whose answer holds one of ``unassigned_errors`` is marked unassigned (NPAI).
    Raises ValueError for a code Kannel does not send.
    """
    update = _from_kannel(status, answer)
    if update.status == MessageStatus.FAILED:
        update = replace(update, unassigned=unassigned_text(answer, unassigned_errors))
    return update


def _from_kannel(status: int, answer: str | None) -> DlrUpdate:
    codes = _smsc_codes(answer)
    if status == KANNEL_DELIVERED:
        return DlrUpdate(MessageStatus.DELIVERED, str(status), _clip(answer))
    if status == KANNEL_FAILED:
        stat = _STAT.search(answer or "")
        expired = (stat and stat.group(1).upper() == "EXPIRED") or (
            stat is None and "expired" in (answer or "").lower()
        )
        if expired:
            return DlrUpdate(MessageStatus.EXPIRED, str(status), _EXPIRED)
        detail = f"{_UNDELIVERABLE} ({codes})" if codes else _UNDELIVERABLE
        return DlrUpdate(MessageStatus.FAILED, str(status), detail)
    if status == KANNEL_BUFFERED:
        return DlrUpdate(MessageStatus.PENDING, str(status), _PHONE_OFF)
    if status == KANNEL_SMSC_SUBMIT:
        return DlrUpdate(MessageStatus.SUBMITTED, str(status), _clip(answer))
    if status == KANNEL_SMSC_REJECT:
        detail = f"{_REJECTED} ({codes})" if codes else _REJECTED
        return DlrUpdate(MessageStatus.FAILED, str(status), detail)
    raise ValueError(
        f"unknown Kannel delivery report status {status!r}: expected 1 (delivered), "
        "2 (failed), 4 (buffered), 8 (accepted by the SMSC) or 16 (rejected by the SMSC)"
    )


#: Generic webhook words (upper case, "_" for spaces and dashes) -> (status, default detail).
_GENERIC: dict[str, tuple[MessageStatus, str | None]] = {
    **dict.fromkeys(
        ("DELIVERED", "DELIVRD", "DELIVERY_SUCCESS", "SUCCESS"), (MessageStatus.DELIVERED, None)
    ),
    **dict.fromkeys(
        ("FAILED", "FAILURE", "UNDELIV", "UNDELIVERABLE", "UNDELIVERED", "DELETED", "ERROR"),
        (MessageStatus.FAILED, _UNDELIVERABLE),
    ),
    **dict.fromkeys(("REJECTED", "REJECTD", "REFUSED"), (MessageStatus.FAILED, _REJECTED)),
    **dict.fromkeys(("EXPIRED",), (MessageStatus.EXPIRED, _EXPIRED)),
    **dict.fromkeys(("PENDING", "BUFFERED"), (MessageStatus.PENDING, _PHONE_OFF)),
    **dict.fromkeys(
        ("SUBMITTED", "ACCEPTED", "ACCEPTD", "ENROUTE", "EN_ROUTE", "SENT"),
        (MessageStatus.SUBMITTED, None),
    ),
}
_GENERIC_WORDS = "delivered, failed, expired, pending, submitted, rejected, undeliverable"


def generic_ids(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """(our message id, gateway id) from a generic webhook payload; ValueError when
    neither is usable."""
    raw_id = payload.get("id")
    message_id: int | None = None
    if raw_id is not None and raw_id != "":
        if isinstance(raw_id, bool) or not re.fullmatch(r"\d+", str(raw_id).strip()):
            raise ValueError(f"'id' must be our message id (a positive integer), got {raw_id!r}")
        message_id = int(str(raw_id).strip())
    raw_gateway = payload.get("gateway_id")
    gateway_id: str | None = None
    if raw_gateway is not None and raw_gateway != "":
        if not isinstance(raw_gateway, str | int) or isinstance(raw_gateway, bool):
            raise ValueError(f"'gateway_id' must be a string, got {raw_gateway!r}")
        gateway_id = str(raw_gateway).strip() or None
    if message_id is None and gateway_id is None:
        raise ValueError("a delivery report needs 'id' (our message id) or 'gateway_id'")
    return message_id, gateway_id


def from_generic(payload: dict[str, Any],
                 unassigned_errors: Sequence[str] = UNASSIGNED_ERRORS) -> DlrUpdate:
    """Map the generic JSON webhook (``{"id" | "gateway_id", "status", "detail"}``).

    A failure whose ``detail`` holds one of ``unassigned_errors`` is marked unassigned.
    Raises ValueError naming what is missing or not understood.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"a delivery report must be a JSON object, got {type(payload).__name__}")
    generic_ids(payload)
    raw = payload.get("status")
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"'status' must be one of {_GENERIC_WORDS}; got {raw!r}")
    key = re.sub(r"[\s-]+", "_", raw.strip()).upper()
    if key not in _GENERIC:
        raise ValueError(f"unknown 'status' {raw!r}: expected one of {_GENERIC_WORDS}")
    status, default_detail = _GENERIC[key]
    detail = payload.get("detail")
    if detail is not None and not isinstance(detail, str | int | float):
        raise ValueError(f"'detail' must be text, got {type(detail).__name__}")
    update = DlrUpdate(status, raw.strip(),
                       _clip(detail) if detail is not None else default_detail)
    if status == MessageStatus.FAILED and detail is not None:
        update = replace(update, unassigned=unassigned_text(str(detail), unassigned_errors))
    return update


@dataclass(frozen=True)
class Report:
    """One delivery report as a webhook received it, for its message."""

    update: DlrUpdate
    message_id: int | None = None
    gateway_id: str | None = None


def write_report(session: Session, report: Report) -> tuple[Message | None, list[NumberHealth]]:
    """Store the report and move its message on; the message (None when unknown: the
    report is kept all the same) and the numbers it flagged as unassigned."""
    flagged: list[NumberHealth] = []
    message = apply_dlr(session, report.update, message_id=report.message_id,
                        gateway_id=report.gateway_id, on_flagged=flagged.append)
    return message, flagged


async def record_dlr(
    db: Database,
    update: DlrUpdate,
    *,
    message_id: int | None = None,
    gateway_id: str | None = None,
) -> Message | None:
    """Store the report and move its message on, in one transaction of its own."""
    report = Report(update, message_id, gateway_id)
    message, flagged = await db.run(lambda s: write_report(s, report))
    _say_flagged(flagged)
    return message


class DlrRecorder:
    """``record_dlr`` for the webhooks: reports arriving together (a campaign's come by
    the thousand a second) share a transaction; each caller still gets its message
    once it is committed."""

    def __init__(self, db: Database) -> None:
        self._batcher: Batcher[Report, tuple[Message | None, list[NumberHealth]]] = \
            Batcher(db, write_report)

    async def record(self, update: DlrUpdate, *, message_id: int | None = None,
                     gateway_id: str | None = None) -> Message | None:
        message, flagged = await self._batcher(Report(update, message_id, gateway_id))
        _say_flagged(flagged)
        return message


def _say_flagged(flagged: list[NumberHealth]) -> None:
    for health in flagged:
        log.warning("number %s flagged as unassigned (NPAI) after %d reports in a row: %s; "
                    "it is skipped from now on (see mail2sms npai list)",
                    mask(health.number), health.unassigned_in_row, health.last_reason)
