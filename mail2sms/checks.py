"""Checks ``check-config`` runs beyond the schema: things only the whole config can tell."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from mail2sms.config import (
    Config,
    ConfigProblem,
    is_loopback,
    load_yaml_with_lines,
    split_host_port,
)
from sms.phones import normalise
from sms.sender import validate_sender


def check_all(config: Config, path: Path) -> list[ConfigProblem]:
    _, lines = load_yaml_with_lines(path)
    file = str(path)
    problems: list[ConfigProblem] = []

    def add(loc: tuple, message: str) -> None:
        line = None
        for end in range(len(loc), -1, -1):
            if loc[:end] in lines:
                line = lines[loc[:end]]
                break
        problems.append(ConfigProblem(file, line, ".".join(map(str, loc)), message))

    for key in ("smtp", "http"):
        try:
            split_host_port(getattr(config, key).listen)
        except ValueError as exc:
            add((key, "listen"), str(exc))
    smtp = config.smtp
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        add(("smtp", "tls_cert"), "tls_cert and tls_key go together")
    for key in ("tls_cert", "tls_key"):
        value = getattr(smtp, key)
        if value and not Path(value).is_file():
            add(("smtp", key), f"no such file: {value}")
    if smtp.require_tls and not smtp.tls_cert:
        add(("smtp", "require_tls"), "require_tls needs tls_cert and tls_key")
    if not smtp.domains:
        add(("smtp", "domains"), "at least one domain is needed")
    seen: set[str] = set()
    for i, user in enumerate(config.users):
        if user.email in seen:
            add(("users", i, "email"), f"duplicate user {user.email}")
        seen.add(user.email)
        if user.sender and (problem := validate_sender(user.sender)):
            add(("users", i, "sender"), problem)
        if user.test_number:
            phone = normalise(user.test_number, config.compliance.country)
            if phone.e164 is None or phone.reason:
                add(("users", i, "test_number"), phone.reason or "invalid number")
        if user.category not in ("alert", "marketing"):
            add(("users", i, "category"), "expected alert or marketing")
    if problem := validate_sender(config.gateway.shortcode):
        add(("gateway", "shortcode"), problem)
    token = config.http.webhook_token
    if not token:
        add(("http", "webhook_token"), "an empty token would leave the webhooks open")
    elif not re.fullmatch(r"[A-Za-z0-9._~-]+", token):
        add(("http", "webhook_token"), "use letters, digits and . _ ~ - only: the token "
            "travels in gateway URLs, where % & + would be misread")
    if config.gateway.rate_per_second <= 0:
        add(("gateway", "rate_per_second"), "must be above 0")
    imap = config.imap
    if imap.enabled:
        if not imap.username:
            add(("imap", "username"), "the mailbox login is needed when imap.enabled")
        if not imap.ssl and not is_loopback(imap.host):
            add(("imap", "ssl"), "plain IMAP would send the password in clear: only for a "
                "server on loopback")
        if imap.ca_file and not Path(imap.ca_file).is_file():
            add(("imap", "ca_file"), f"no such file: {imap.ca_file}")
    problems += _rules_problems(config, add)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(config.compliance.timezone)
    except Exception:
        add(("compliance", "timezone"), f"unknown time zone {config.compliance.timezone!r}")
    return problems


def _rules_problems(config: Config, add: Callable[[tuple, str], None]) -> list[ConfigProblem]:
    """Every problem of the rules file, as ``file:line: where: message`` too."""
    from autoresponder.loader import RulesError, load_rules

    path = config.rules_file
    if path is None:
        return []
    if not path.is_file():
        add(("rules",), f"no such file: {path} (the built-in STOP/START/HELP words apply "
            "until it exists)")
        return []
    try:
        load_rules(path)
    except RulesError as exc:
        return list(exc.problems)
    return []
