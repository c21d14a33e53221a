"""The configuration file: parsed once into typed objects, errors reported with file:line."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from autoresponder.problems import FileProblem
from gateway.config import GatewayConfig, MailOutConfig
from sms.config import ComplianceConfig


class DatabaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "sqlite:///mail2sms.db"


class SmtpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = "127.0.0.1:2525"
    domains: list[str] = Field(default_factory=lambda: ["sms.example.com"])
    tls_cert: str | None = None
    tls_key: str | None = None
    require_tls: bool = False
    max_message_bytes: int = 1_048_576
    hostname: str | None = None
    #: Failed logins allowed per client address and per user within ``auth_window``
    #: seconds before further attempts are refused for that window.
    auth_max_failures: int = 5
    auth_window: int = 300

    @field_validator("domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [d.strip().lower() for d in value]


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str
    password_hash: str
    sender: str | None = None  # default sender ID; the shortcode when empty
    test_number: str | None = None
    daily_limit: int | None = None
    category: str = "alert"  # default category of this user's sends

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("expected an argon2 hash (run: mail2sms hash-password)")
        return value


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str = "127.0.0.1:8080"
    webhook_token: str = "change-me"
    #: The address the gateway uses to reach us (for DLR URLs); from ``listen`` when empty.
    public_url: str | None = None


class InboundConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forward_to: list[str] = Field(default_factory=list)
    reply_to_sender: bool = True


class ImapConfig(BaseModel):
    """A mailbox on an existing mail server, watched as a second intake."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 993
    ssl: bool = True  # implicit TLS (993); false: plain IMAP (143, loopback only)
    ca_file: str | None = None  # PEM CA bundle for a private CA; None: the system's
    username: str = ""
    password: str = ""
    mailbox: str = "INBOX"
    processed_folder: str = "mail2sms/processed"
    error_folder: str = "mail2sms/errors"
    idle: bool = True  # IMAP IDLE when the server offers it; polling otherwise
    poll_interval: float = 60.0  # seconds between polls (and IDLE renewals)
    #: When set, only emails whose Authentication-Results from this authserv-id say
    #: dkim=pass or spf=pass for the From domain are taken.
    trusted_authserv_id: str | None = None


class CreditConfig(BaseModel):
    """An optional credit balance in segments (``mail2sms credit``)."""

    model_config = ConfigDict(extra="forbid")

    #: Sends take their segments from the balance; one larger than it is refused whole.
    enabled: bool = False
    #: An alert email goes to ``alert_to`` once the balance falls under this many segments.
    alert_below: int | None = Field(default=None, ge=0)
    alert_to: list[str] = Field(default_factory=list)
    #: What one segment costs (your contract's price): the cost of each send is shown
    #: before it goes (``send --dry-run``) and in its report. Used with credit on or off.
    price_per_segment: float | None = Field(default=None, ge=0)
    currency: str = "EUR"

    def cost(self, segments: int) -> str | None:
        """``segments`` priced, e.g. ``55.80 EUR``; None without a price."""
        if self.price_per_segment is None:
            return None
        return f"{segments * self.price_per_segment:,.2f} {self.currency}"

    def warnings(self) -> list[tuple[str, str]]:
        """(key, message) for settings that are valid but do not do what they seem to."""
        found = []
        if self.alert_below is not None and not self.alert_to:
            found.append(("alert_below", "no alert will be sent: alert_to is empty"))
        if (self.alert_below is not None or self.alert_to) and not self.enabled:
            found.append(("enabled", "credit is off: alert_below and alert_to do nothing"))
        return found


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    users: list[UserConfig] = Field(default_factory=list)
    http: HttpConfig = Field(default_factory=HttpConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    mail_out: MailOutConfig = Field(default_factory=MailOutConfig)
    inbound: InboundConfig = Field(default_factory=InboundConfig)
    imap: ImapConfig = Field(default_factory=ImapConfig)
    rules: str | None = "rules.yaml"
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    credit: CreditConfig = Field(default_factory=CreditConfig)
    log_level: str = "INFO"
    #: The config file's folder: relative paths in it (rules) are taken from there.
    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def rules_file(self) -> Path | None:
        if not self.rules:
            return None
        path = Path(self.rules)
        if not path.is_absolute() and self._base_dir is not None:
            path = self._base_dir / path
        return path

    def user(self, email: str) -> UserConfig | None:
        email = email.strip().lower()
        return next((u for u in self.users if u.email == email), None)

    @property
    def dlr_base_url(self) -> str:
        base = self.gateway.dlr_url or self.http.public_url
        if base:
            return base.rstrip("/")
        host, port = split_host_port(self.http.listen)
        return f"http://{host}:{port}"


def split_host_port(value: str) -> tuple[str, int]:
    """'127.0.0.1:2525' -> ('127.0.0.1', 2525); '[::1]:25' works too."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


ConfigProblem = FileProblem


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value
            out[(*path, name)] = key.start_mark.line + 1
            _line_index(value, (*path, name), out)
            # keep the key's own line for "unknown key" errors
            out[(*path, name, "__key__")] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_index(item, (*path, index), out)


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse a YAML file and index the line of every key path. Raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, "", f"cannot read: {exc}")]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(str(path), line, "", f"YAML syntax: {problem}")]) from exc
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    return data, lines


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def parse_config(data: Any, *, file: str = "<config>", lines: dict | None = None) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(file, 1, "", "expected a mapping of sections")])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc)
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "missing":
                message = "required key is missing"
            if "input" in err and err["type"] not in ("missing", "extra_forbidden"):
                shown = repr(err["input"])
                if len(shown) < 60:
                    message += f" (got {shown})"
            problems.append(ConfigProblem(file, _line_for(loc, lines or {}), where, message))
        raise ConfigError(problems) from exc


def load_config(path: str | Path) -> Config:
    """Read and validate the config file; relative paths in it are kept as written."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path)
    config = parse_config(data, file=str(path), lines=lines)
    config._base_dir = path.parent
    return config
