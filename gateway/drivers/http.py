"""A generic HTTP SMS provider, described entirely by ``gateway.http`` in the config."""

from __future__ import annotations

import json
import logging
import re
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from gateway.config import GatewayConfig
from gateway.drivers.base import OutgoingSms, PermanentError, TransientError
from store.models import utcnow

log = logging.getLogger(__name__)

#: Statuses that mean "not now" rather than "no".
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_REASON_CHARS = 200
_REASON_KEYS = ("error_description", "message", "error", "reason", "detail", "description")


class RetryLaterError(TransientError):
    """A transient failure that may say when to try again (``Retry-After``)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def dlr_url_for(template: str | None, message_id: int) -> str:
    """The delivery-report URL for one message: ``{id}`` in the template becomes its id."""
    if not template:
        return ""
    return template.replace("{id}", str(message_id))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def extract_id(id_from: str, response_text: str) -> str | None:
    """Read the provider's message id with ``json:a.b.0.c`` or ``regex:pattern``."""
    kind, _, spec = id_from.partition(":")
    if kind == "regex":
        match = re.search(spec, response_text)
        if match is None:
            return None
        value: Any = match.group(1) if match.groups() else match.group(0)
        return str(value) if value else None
    if kind != "json":
        raise ValueError(f"id_from must start with 'json:' or 'regex:', got {id_from!r}")
    try:
        value = json.loads(response_text)
    except ValueError:
        return None
    for part in spec.split(".") if spec else []:
        if isinstance(value, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            if not -len(value) <= index < len(value):
                return None
            value = value[index]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    return str(value)


class HttpDriver:
    """Submits each SMS as one HTTP request shaped by ``cfg.http``."""

    name = "http"

    def __init__(self, cfg: GatewayConfig, *, dlr_url_template: str | None) -> None:
        self.cfg = cfg
        self.http = cfg.http
        self.dlr_url_template = dlr_url_template
        env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        self._url = self._compile(env, "url", cfg.url)
        self._fields = {
            k: self._compile(env, f"http.fields.{k}", v) for k, v in self.http.fields.items()
        }
        self._headers = {
            k: self._compile(env, f"http.headers.{k}", v) for k, v in self.http.headers.items()
        }
        if not self.http.id_from.startswith(("json:", "regex:")):
            raise ValueError(
                f"gateway.http.id_from must start with 'json:' or 'regex:', "
                f"got {self.http.id_from!r}"
            )
        # Render once with sample values so a typo in a variable name fails at startup.
        self._render(OutgoingSms(id=1, to="+33612345678", sender="TEST", text="t", encoding="gsm7"))
        self._secrets = self._secret_forms(cfg.password)
        self._client = httpx.AsyncClient(
            timeout=cfg.timeout,
            limits=httpx.Limits(max_connections=max(1, cfg.concurrency)),
            follow_redirects=False,
        )

    @staticmethod
    def _compile(env: SandboxedEnvironment, where: str, source: str) -> Template:
        try:
            return env.from_string(source)
        except TemplateError as exc:
            raise ValueError(f"gateway.{where}: invalid template {source!r}: {exc}") from exc

    @staticmethod
    def _secret_forms(password: str | None) -> list[str]:
        if not password:
            return []
        forms = {password, quote(password, safe=""), quote_plus(password)}
        forms.add(json.dumps(password)[1:-1])
        return sorted(forms, key=len, reverse=True)

    def _context(self, sms: OutgoingSms) -> dict[str, Any]:
        return {
            "to": sms.to,
            "to_national": sms.to.lstrip("+"),
            "sender": sms.sender,
            "text": sms.text,
            "message_id": sms.id,
            "coding": 2 if sms.encoding == "ucs2" else 0,
            "encoding": sms.encoding,
            "dlr_url": dlr_url_for(self.dlr_url_template, sms.id),
            "username": self.cfg.username or "",
            "password": self.cfg.password or "",
        }

    def _render(self, sms: OutgoingSms) -> tuple[str, dict[str, str], dict[str, str]]:
        ctx = self._context(sms)
        try:
            url = self._url.render(ctx)
            fields = {k: t.render(ctx) for k, t in self._fields.items()}
            headers = {k: t.render(ctx) for k, t in self._headers.items()}
        except TemplateError as exc:
            raise ValueError(f"gateway.http templates: {exc}") from exc
        return url, fields, headers

    def redact(self, text: str) -> str:
        """``text`` with every form of the password replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _reason(self, response: httpx.Response) -> str:
        body = response.text
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in _REASON_KEYS:
                if isinstance(data.get(key), str) and data[key].strip():
                    body = data[key]
                    break
        # Redact around the whitespace folding: a password with spaces in it changes there.
        excerpt = self.redact(" ".join(self.redact(body).split()))
        if len(excerpt) > _REASON_CHARS:
            excerpt = excerpt[: _REASON_CHARS - 1] + "…"
        label = f"HTTP {response.status_code}"
        if response.reason_phrase:
            label += f" {response.reason_phrase}"
        return f"{label}: {excerpt}" if excerpt else label

    async def submit(self, sms: OutgoingSms) -> str | None:
        try:
            url, fields, headers = self._render(sms)
        except ValueError as exc:
            raise PermanentError(self.redact(str(exc))) from None
        kwargs: dict[str, Any] = {"headers": headers}
        if self.http.body == "json":
            kwargs["json"] = fields
        elif self.http.body == "form":
            kwargs["data"] = fields
        else:
            kwargs["params"] = fields
        try:
            response = await self._client.request(self.http.method, url, **kwargs)
        except httpx.TimeoutException:
            raise TransientError(
                f"no answer from the provider within {self.cfg.timeout:g} s"
            ) from None
        except httpx.TransportError as exc:
            detail = self.redact(str(exc) or type(exc).__name__)
            raise TransientError(f"provider unreachable: {detail}") from None
        status = response.status_code
        if status in self.http.ok_status:
            gateway_id = extract_id(self.http.id_from, response.text)
            if gateway_id is None:
                log.warning(
                    "provider accepted message %s but its answer has no id at %s",
                    sms.id,
                    self.http.id_from,
                )
            return gateway_id
        reason = self._reason(response)
        if status in _TRANSIENT_STATUS or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RetryLaterError(reason, retry_after=retry_after)
        raise PermanentError(f"gateway refused: {reason}")

    async def aclose(self) -> None:
        await self._client.aclose()
