"""``mail2sms serve`` as a real process, with a config written for the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.servers.ports import free_port, port_answers

#: The password of every test user; its argon2 hash is made once per test session.
PASSWORD = "s3cret-pass"
_HASH: str | None = None


def password_hash() -> str:
    global _HASH
    if _HASH is None:
        from mail2sms.auth import hash_password

        _HASH = hash_password(PASSWORD)
    return _HASH


def base_config(tmp: Path, **overrides: Any) -> dict[str, Any]:
    """A config on free loopback ports, SQLite in ``tmp``, console gateway."""
    smtp_port, http_port = free_port(), free_port()
    config: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp / 'mail2sms.db'}"},
        "smtp": {
            "listen": f"127.0.0.1:{smtp_port}",
            "domains": ["sms.example.com"],
            "auth_max_failures": 3,
            "auth_window": 60,
        },
        "users": [
            {
                "email": "alice@example.com",
                "password_hash": password_hash(),
                "test_number": "+33612345678",
                "daily_limit": 100000,
            },
            {"email": "bob@example.com", "password_hash": password_hash(), "sender": "ACME"},
        ],
        "http": {"listen": f"127.0.0.1:{http_port}", "webhook_token": "test-token"},
        "gateway": {
            "driver": "console",
            "outbox_file": str(tmp / "sent.jsonl"),
            "rate_per_second": 1000,
        },
        "mail_out": {"relay": "127.0.0.1:1", "from": "sms@sms.example.com", "timeout": 5},
        "rules": None,
        "log_level": "INFO",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


class Mail2SmsServer:
    """Starts ``python -m mail2sms.cli serve`` and waits until every port answers."""

    def __init__(self, tmp: Path, config: dict[str, Any], env: dict[str, str] | None = None):
        """``env`` is added to the process's environment (e.g. ``FakeClock.env()``)."""
        self.tmp = tmp
        self.config = config
        self.env = dict(env or {})
        self.config_path = tmp / "config.yaml"
        self.proc: subprocess.Popen[str] | None = None
        self.output: deque[str] = deque(maxlen=400)
        self._reader: threading.Thread | None = None

    @property
    def smtp_port(self) -> int:
        return int(self.config["smtp"]["listen"].rpartition(":")[2])

    @property
    def http_port(self) -> int:
        return int(self.config["http"]["listen"].rpartition(":")[2])

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def db_url(self) -> str:
        return str(self.config["database"]["url"])

    def start(self, timeout: float = 30.0) -> Mail2SmsServer:
        self.config_path.write_text(yaml.safe_dump(self.config, allow_unicode=True))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mail2sms.cli", "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.tmp,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mail2sms exited with {self.proc.returncode}:\n{self.log}")
            if any("mail2sms ready" in line for line in list(self.output)) and port_answers(
                self.smtp_port
            ):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mail2sms did not start within {timeout} s:\n{self.log}")

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self.output.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.output)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._reader:
            self._reader.join(2)
        return proc.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` (e.g. SIGHUP: reload the rules, re-read the schedules)."""
        if self.proc is None:
            raise RuntimeError("mail2sms is not running")
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """Stop at once, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def __enter__(self) -> Mail2SmsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
