"""The HTTP API for users: sends (create, list, show, pause, resume, cancel, release) and
saved templates. Every route needs HTTP Basic with a user of the config; a user sees and
changes only their own sends.

Basic sends the password with every request: keep ``http.listen`` on loopback, or put a
TLS proxy in front.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import Session

from autoresponder.render import TemplateProblem, check, fields_used
from campaigns.request import SendRequest
from mail2sms.auth import Authenticator, AuthOutcome
from mail2sms.cli import plan_rows
from mail2sms.config import Config
from mail2sms.marketing_window import window_for
from mail2sms.service import Service
from store import sends
from store import templates as saved
from store.campaigns import STATUSES, campaign_status, list_campaigns
from store.db import Database
from store.models import SendRequestRow, Template

T = TypeVar("T")
_REALM = {"WWW-Authenticate": 'Basic realm="mail2sms", charset="UTF-8"'}


class SendBody(BaseModel):
    """``POST /api/sends``: the options of ``mail2sms send``."""

    model_config = ConfigDict(extra="forbid")

    to: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    text: str | None = None
    template: str | None = None
    marketing: bool = False
    category: Literal["alert", "marketing"] | None = None
    sender: str | None = None
    at: datetime | None = None  # without an offset: compliance.timezone
    test: bool = False
    draft: bool = False
    dry_run: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> SendBody:
        if not (self.text or "").strip() and not self.template:
            raise ValueError("give 'text' (the SMS) or 'template' (a saved template's name)")
        if self.text and self.template:
            raise ValueError("give 'text' or 'template', not both")
        if self.marketing and self.category == "alert":
            raise ValueError("'marketing': true contradicts 'category': 'alert'")
        return self


class TemplateBody(BaseModel):
    """``PUT /api/templates/{name}``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    description: str | None = None


def _problems(exc: ValidationError) -> str:
    """Every problem as ``field: what is wrong``, one after the other."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


async def _json_body(request: Request, model: type[BaseModel]) -> Any:
    try:
        payload = await request.json()
    except ValueError:
        raise HTTPException(422, "expected a JSON object as the body") from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise HTTPException(422, _problems(exc)) from None


def basic_user(authenticator: Authenticator) -> Callable[[Request], Any]:
    """A dependency: the user of the Basic credentials, else 401 (429 when throttled)."""

    async def current_user(request: Request) -> str:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise HTTPException(401, "HTTP Basic authentication required (a user of the "
                                     "config and its password)", headers=_REALM)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(401, "malformed Basic credentials", headers=_REALM) from None
        login, sep, password = decoded.partition(b":")
        if not sep:
            raise HTTPException(401, "malformed Basic credentials: expected user:password",
                                headers=_REALM)
        peer = request.client.host if request.client else "unknown"
        outcome, user = await authenticator.check(peer, login, password)
        if outcome == AuthOutcome.THROTTLED:
            wait = math.ceil(authenticator.throttled(peer, user)) or 1
            raise HTTPException(429, f"too many failed logins: try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        if outcome != AuthOutcome.OK:
            raise HTTPException(401, "wrong user or password", headers=_REALM)
        return user

    return current_user


def _template_row(row: Template) -> dict[str, Any]:
    def iso(value: datetime) -> str:
        return (value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))).isoformat()

    return {"name": row.name, "text": row.text, "description": row.description,
            "fields": sorted(fields_used(row.text)), "created_by": row.created_by,
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def sends_router(config: Config, db: Database, service: Service, *,
                 authenticator: Authenticator | None = None) -> APIRouter:
    """The ``/api`` routes. Logins are checked like SMTP's (argon2, a cache of good
    logins, failures throttled per client address and per user), by their own counter."""
    authenticator = authenticator or Authenticator(
        config.users, max_failures=config.smtp.auth_max_failures,
        window=config.smtp.auth_window)
    router = APIRouter(prefix="/api")
    # Defaults, not Annotated aliases: a local alias cannot be resolved from the
    # postponed annotations FastAPI reads.
    auth = Depends(basic_user(authenticator))
    window = window_for(config)

    async def run(fn: Callable[[Session], T]) -> T:
        return await db.run(fn)

    def owned(session: Session, request_id: int, user: str) -> None:
        row = session.get(SendRequestRow, request_id)
        if row is None or row.user != user:
            raise HTTPException(404, f"no send #{request_id} of yours")

    @router.post("/sends", status_code=201)
    async def create_send(request: Request, user: str = auth) -> JSONResponse:
        body: SendBody = await _json_body(request, SendBody)
        send = _send_request(body, user, config.compliance.timezone)
        if body.dry_run:
            plan = await service.preview(send)
            request_id, status = None, "dry run"
        else:
            outcome = await service.submit(send, report=False)
            plan, request_id = outcome.plan, outcome.request_id
            found = await run(lambda s: campaign_status(s, request_id or 0))
            status = found.status if found else "refused"
        result = {"id": request_id, "status": "refused" if plan.refused else status,
                  "plan": plan_rows(plan), "segments": plan.segments,
                  "cost": config.credit.cost(plan.segments),
                  "notices": plan.notices, "warnings": send.warnings}
        if plan.refused:
            return JSONResponse({"detail": plan.refused, **result}, status_code=422)
        return JSONResponse(result, status_code=200 if body.dry_run else 201)

    @router.get("/sends")
    async def list_sends(
        user: str = auth,
        status: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise HTTPException(422, f"status: {status!r} is not a status: expected one of "
                                     f"{', '.join(STATUSES)}")
        found = await run(lambda s: list_campaigns(s, status=status, user=user, limit=limit))
        return {"sends": [c.as_dict() for c in found]}

    @router.get("/sends/{request_id}")
    async def show_send(request_id: int, user: str = auth) -> dict[str, Any]:
        def fetch(session: Session) -> dict[str, Any]:
            owned(session, request_id, user)
            found = campaign_status(session, request_id)
            assert found is not None
            return found.as_dict()

        return await run(fetch)

    Action = Callable[[Session, int], sends.Change]
    actions: dict[str, Action] = {
        "pause": lambda s, i: sends.pause(s, i),
        "resume": lambda s, i: sends.resume(s, i, window=window),
        "release": lambda s, i: sends.release(s, i, window=window),
        "cancel": lambda s, i: sends.cancel(s, i, "cancelled over the API"),
    }

    @router.post("/sends/{request_id}/{action}")
    async def change_send(request_id: int, action: str, user: str = auth) -> JSONResponse:
        act = actions.get(action)
        if act is None:
            raise HTTPException(404, f"unknown action {action!r}: expected one of "
                                     f"{', '.join(actions)}")

        def apply(session: Session) -> sends.Change:
            owned(session, request_id, user)
            return act(session, request_id)

        try:
            change = await run(apply)
        except sends.NotAllowed as exc:
            return JSONResponse({"detail": str(exc), "status": exc.status}, status_code=409)
        if action in ("resume", "release"):
            service.wake()
        campaign = change.campaign
        return JSONResponse({"id": request_id, "status": campaign.status,
                             "before": change.before, "changed": change.changed,
                             "taken": campaign.taken, "counts": campaign.counts})

    _template_routes(router, run, auth)
    return router


def _send_request(body: SendBody, user: str, timezone: str) -> SendRequest:
    at = body.at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(timezone))
    targets = [t.strip() for t in body.to]
    category = body.category or ("marketing" if body.marketing else None)
    return SendRequest(
        user=user, text=body.text or "", template=body.template,
        recipients=[t for t in targets if not t.startswith("#")],
        groups=[t[1:] for t in targets if t.startswith("#")],
        category=category, sender=body.sender, at=at, test=body.test, draft=body.draft,
        source="api",
    )


def _template_routes(router: APIRouter, run: Callable[..., Any], auth: Any) -> None:
    def unknown(session: Session, name: str) -> HTTPException:
        known = ", ".join(saved.names(session)) or "none is saved yet"
        return HTTPException(404, f"unknown template {name!r}: known templates: {known}")

    @router.get("/templates")
    async def list_templates(user: str = auth) -> dict[str, Any]:
        return {"templates": await run(lambda s: [_template_row(r) for r in saved.list_all(s)])}

    @router.get("/templates/{name}")
    async def show_template(name: str, user: str = auth) -> dict[str, Any]:
        def fetch(session: Session) -> dict[str, Any]:
            row = saved.get(session, name)
            if row is None:
                raise unknown(session, name)
            return _template_row(row)

        return await run(fetch)

    @router.put("/templates/{name}")
    async def put_template(name: str, request: Request, user: str = auth) -> JSONResponse:
        body: TemplateBody = await _json_body(request, TemplateBody)
        if not name.strip():
            raise HTTPException(422, "the template name is empty")
        if not body.text.strip():
            raise HTTPException(422, "text: empty: a template needs a text")
        try:
            check(body.text)
        except TemplateProblem as exc:
            raise HTTPException(422, f"text: {exc}") from None

        def save(session: Session) -> tuple[dict[str, Any], bool]:
            row = saved.edit(session, name, text=body.text, description=body.description)
            if row is not None:
                return _template_row(row), False
            row = saved.add(session, name, body.text, description=body.description,
                            created_by=user)
            return _template_row(row), True

        try:
            row, created = await run(save)
        except saved.TemplateExists as exc:  # made by someone else at the same moment
            raise HTTPException(409, str(exc)) from None
        return JSONResponse(row, status_code=201 if created else 200)

    @router.delete("/templates/{name}", status_code=204)
    async def delete_template(name: str, user: str = auth) -> Response:
        def remove(session: Session) -> None:
            if not saved.remove(session, name):
                raise unknown(session, name)

        await run(remove)
        return Response(status_code=204)
