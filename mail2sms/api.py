"""The HTTP API: health, and the gateway webhooks (token required on every one)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import select

from gateway.dlr import from_generic, from_kannel, generic_ids, record_dlr
from mail2sms.config import Config
from store.db import Database

log = logging.getLogger("mail2sms.api")


def create_app(config: Config, db: Database) -> FastAPI:
    app = FastAPI(title="mail2sms", docs_url=None, redoc_url=None, openapi_url=None)
    expected = config.http.webhook_token.encode()

    def require_token(request: Request, token: Annotated[str | None, Query()] = None) -> None:
        given = token
        auth = request.headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise HTTPException(status_code=401, detail="missing or wrong webhook token")

    async def params(request: Request) -> dict[str, str]:
        values = dict(request.query_params)
        if request.method == "POST":
            ctype = request.headers.get("content-type", "")
            if "application/x-www-form-urlencoded" in ctype:  # no python-multipart needed
                values.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        return values

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        try:
            await db.run(lambda s: s.exec(select(1)).one())
        except Exception as exc:
            return JSONResponse({"status": "error", "database": str(exc)}, status_code=503)
        return {"status": "ok"}

    @app.api_route("/webhooks/kannel/dlr", methods=["GET", "POST"],
                   dependencies=[Depends(require_token)])
    async def kannel_dlr(request: Request) -> PlainTextResponse:
        values = await params(request)
        try:
            message_id = int(values.get("id", ""))
            code = int(values.get("status", ""))
        except ValueError:
            return PlainTextResponse("expected id=<message id>&status=<Kannel %d>", 400)
        try:
            update = from_kannel(code, values.get("answer") or values.get("reply"))
        except ValueError as exc:  # a code Kannel does not send
            return PlainTextResponse(str(exc), 400)
        message = await record_dlr(db, update, message_id=message_id)
        if message is None:
            log.warning("DLR for unknown message id %s (status %s)", message_id, code)
            return PlainTextResponse("unknown message id (report kept)", 202)
        return PlainTextResponse("OK")

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
                checked.append((from_generic(item), *generic_ids(item)))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        results = []
        for update, message_id, gateway_id in checked:
            message = await record_dlr(db, update, message_id=message_id, gateway_id=gateway_id)
            results.append({"id": message.id if message else None,
                            "status": message.status if message else "unknown"})
        return JSONResponse({"results": results})

    return app
