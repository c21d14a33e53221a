"""The HTTP API: health, and the gateway webhooks (token required on every one)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import select
from starlette.types import ASGIApp

from autoresponder.rules import RuleSet
from gateway.dlr import DlrRecorder, from_generic, generic_ids
from inbound import mo
from inbound.model import utc_clock
from inbound.pipeline import Outcome, Pipeline
from mail2sms.api_sends import sends_router
from mail2sms.config import Config
from mail2sms.kannel_hooks import DLR_PATH, MO_PATH, KannelHooks, dlr_handler, mo_handler
from mail2sms.service import Service
from sms.phones import mask
from store.db import Database

log = logging.getLogger("mail2sms.api")


def create_app(config: Config, db: Database, *, pipeline: Pipeline | None = None,
               service: Service | None = None) -> ASGIApp:
    """``pipeline`` handles received SMS; without one, only the default opt-out, opt-in
    and help words are acted on and nothing is mailed. ``service`` takes the sends of
    ``/api/sends`` (one without a mailer when not given)."""
    app = FastAPI(title="mail2sms", docs_url=None, redoc_url=None, openapi_url=None)
    if pipeline is None:
        from mail2sms.serve import inbound_settings

        default = RuleSet()
        pipeline = Pipeline(db, lambda: default, inbound_settings(config))
    inbound = pipeline
    app.include_router(sends_router(config, db, service or Service(config, db)))
    country = config.compliance.country
    reports = DlrRecorder(db)  # delivery reports arriving together share a transaction
    expected = config.http.webhook_token.encode()

    # async: a plain function would be run in a worker thread for every request
    async def require_token(
        request: Request, token: Annotated[str | None, Query()] = None
    ) -> None:
        given = token
        auth = request.headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise HTTPException(status_code=401, detail="missing or wrong webhook token")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        try:
            await db.run(lambda s: s.exec(select(1)).one())
        except Exception as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return {"status": "ok"}

    @app.post("/webhooks/dlr", dependencies=[Depends(require_token)])
    async def generic_dlr(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON body"}, status_code=400)
        items = payload if isinstance(payload, list) else [payload]
        # Every item is checked before any is recorded: a gateway that gets a 400 sends
        # the whole batch again, and half of it must not be stored twice.
        checked = []
        for item in items:
            if not isinstance(item, dict):
                return JSONResponse({"error": "expected a JSON object"}, status_code=400)
            try:
                checked.append((from_generic(item, config.gateway.unassigned_errors),
                                *generic_ids(item)))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        results = []
        for update, message_id, gateway_id in checked:
            message = await reports.record(update, message_id=message_id,
                                           gateway_id=gateway_id)
            results.append({"id": message.id if message else None,
                            "status": message.status if message else "unknown"})
        return JSONResponse({"results": results})

    async def take(received: mo.Received) -> Outcome:
        sms = received.sms
        for note in received.notes:
            log.info("MO from %s: %s", mask(sms.sender), note)
        outcome = await inbound.handle(sms)
        if log.isEnabledFor(logging.INFO):  # masking is not free at 1,000 SMS a second
            log.info("MO #%s from %s to %s: %s", outcome.inbound_id, mask(sms.sender),
                     sms.receiver, outcome.handled_by or
                     (outcome.decisions[-1].decision if outcome.decisions else "nothing"))
        return outcome

    @app.post("/webhooks/mo", dependencies=[Depends(require_token)])
    async def generic_mo(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON body"}, status_code=400)
        items = payload if isinstance(payload, list) else [payload]
        now = utc_clock()
        # Every item is checked before any is taken (a 400 makes the gateway resend all).
        checked = []
        for index, item in enumerate(items):
            try:
                checked.append(mo.from_json(item, country=country, now=now))
            except mo.BadMo as exc:
                log.warning("generic MO refused: item %d: %s", index, exc)
                return JSONResponse({"error": f"item {index}: {exc}"}, status_code=400)
        results = []
        for received in checked:
            try:
                outcome = await take(received)
            except Exception:
                log.exception("MO from %s not stored", mask(received.sms.sender))
                return JSONResponse({"error": "database unavailable", "results": results},
                                    status_code=503)
            status = ("duplicate" if outcome.duplicate else
                      "error" if any(d.step == "pipeline" for d in outcome.decisions)
                      else "handled")
            results.append({"id": outcome.inbound_id, "status": status,
                            "handled_by": outcome.handled_by,
                            "replies": len(outcome.replies)})
        return JSONResponse({"results": results})

    # Kannel's get-url and dlr-url, once per SMS: served ahead of the framework
    return KannelHooks(app, token=config.http.webhook_token, handlers={
        MO_PATH: mo_handler(take, country=country),
        DLR_PATH: dlr_handler(reports, unassigned_errors=config.gateway.unassigned_errors),
    })
