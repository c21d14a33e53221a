"""A real Kannel (bearerbox + smsbox) on loopback ports, in front of a fake operator.

    with FakeOperator() as operator, KannelStack(operator, mo_url=...) as kannel:
        httpx.get(kannel.sendsms_url, params={...})
        operator.wait_for(1)

Configuration follows KANNEL.md: an `smsc = http`, `system-type = kannel` link whose
`send-url` is the fake operator; smsbox with one sendsms-user and a catch-all MO
service calling `get-url`. Every port is free, bound to 127.0.0.1; every wait is bounded;
a failed start raises with the tail of the boxes' logs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from tests.servers.operator import FakeOperator
from tests.servers.ports import free_port, port_answers

BEARERBOX = Path(os.environ.get("KANNEL_BEARERBOX", "/usr/sbin/bearerbox"))
SMSBOX = Path(os.environ.get("KANNEL_SMSBOX", "/usr/sbin/smsbox"))

# What our MO webhook expects from Kannel (DESIGN.md, HTTP API).
MO_QUERY = "from=%p&to=%P&text=%a&ts=%t&id=%I"

# Stacks still running when the interpreter exits (a test run interrupted, a fixture
# that never reached its teardown): their boxes must not outlive it and hold the ports.
_running: set[KannelStack] = set()


@atexit.register
def _stop_leftovers() -> None:
    for stack in list(_running):
        stack.stop()


def _wait_until(process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for the process to exit until `deadline` (monotonic); True when it has."""
    try:
        process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


class KannelError(RuntimeError):
    """Kannel could not be started; the message carries the tail of its logs."""


def kannel_installed() -> bool:
    return BEARERBOX.is_file() and SMSBOX.is_file()


def _quote(value: str) -> str:
    # Kannel's config strings are double-quoted; a quote inside would end the value.
    if '"' in value or "\n" in value:
        raise ValueError(f"unsupported character in Kannel config value: {value!r}")
    return f'"{value}"'


def _tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"({path.name}: {exc})"
    return "\n".join(content[-lines:]) or f"({path.name} is empty)"


class KannelStack:
    """bearerbox + smsbox configured against `operator`, on free loopback ports.

    `mo_url` is our MO webhook (may already carry `?token=...`); Kannel's `get-url`
    appends `from=%p&to=%P&text=%a&ts=%t&id=%I` to it. Without it, MOs are accepted and
    answered with nothing.
    """

    def __init__(
        self,
        operator: FakeOperator,
        mo_url: str | None = None,
        *,
        username: str = "mail2sms",
        password: str = "sendsms-secret",
        log_level: int = 0,
        workdir: Path | None = None,
        startup_timeout: float = 15.0,
        dlr_via_kannel: bool = True,
    ) -> None:
        self.operator = operator
        self.username = username
        self.password = password
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.dlr_via_kannel = dlr_via_kannel
        self.smsc_username = "operator"
        self.smsc_password = "operator-secret"
        self.admin_password = "admin-secret"
        self.admin_port = free_port()
        self.smsbox_port = free_port()
        self.sendsms_port = free_port()
        self.smsc_port = free_port()  # Kannel listens here for the operator's MOs
        self._own_dir = workdir is None
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="kannel-"))
        self._mo_base = mo_url
        self._bearerbox: subprocess.Popen[bytes] | None = None
        self._smsbox: subprocess.Popen[bytes] | None = None
        self.write_config()

    # -- addresses -------------------------------------------------------------------

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def mo_url(self) -> str | None:
        """Kannel's `get-url` for MOs, escapes included (None when no webhook is set)."""
        if self._mo_base is None:
            return None
        separator = "&" if "?" in self._mo_base else "?"
        return f"{self._mo_base}{separator}{MO_QUERY}"

    @property
    def smsc_url(self) -> str:
        """Where the operator side delivers MOs (and DLRs) to bearerbox."""
        return f"http://127.0.0.1:{self.smsc_port}/"

    @property
    def smsc_dlr_url(self) -> str:
        """The smsc group's `dlr-url`: bearerbox's own MO/DLR port, with the operator's
        credentials (Kannel appends `&dlr-url=<ours>&dlr-mask=%d&dlr-mid=<uuid>`)."""
        query = urllib.parse.urlencode(
            {"username": self.smsc_username, "password": self.smsc_password}
        )
        return f"{self.smsc_url}?{query}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def config_path(self) -> Path:
        return self.dir / "kannel.conf"

    @property
    def bearerbox_log(self) -> Path:
        return self.dir / "bearerbox.log"

    @property
    def smsbox_log(self) -> Path:
        return self.dir / "smsbox.log"

    # -- configuration ---------------------------------------------------------------

    def write_config(self) -> Path:
        d = self.dir
        # With an smsc-level dlr-url the operator is handed a URL back into bearerbox
        # (wrapping ours), so its report travels operator -> bearerbox -> smsbox -> us and
        # Kannel expands %d, %A, %T... itself, as it does behind a real SMPP operator.
        dlr_route = ""
        if self.dlr_via_kannel:
            dlr_route = f"dlr-url = {_quote(self.smsc_dlr_url)}\n"
        if self.mo_url is not None:
            service = f"get-url = {_quote(self.mo_url)}"
        else:
            service = 'text = ""\nomit-empty = true'
        config = f"""\
group = core
admin-port = {self.admin_port}
admin-interface = "127.0.0.1"
admin-password = {_quote(self.admin_password)}
status-password = {_quote(self.admin_password)}
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.smsbox_port}
smsbox-interface = "127.0.0.1"
box-allow-ip = "127.0.0.1"
box-deny-ip = "*.*.*.*"
dlr-storage = internal
log-file = {_quote(str(d / "bearerbox.log"))}
log-level = {self.log_level}
access-log = {_quote(str(d / "access.log"))}

group = smsc
smsc = http
smsc-id = operator
system-type = kannel
port = {self.smsc_port}
connect-allow-ip = "127.0.0.1"
smsc-username = {_quote(self.smsc_username)}
smsc-password = {_quote(self.smsc_password)}
send-url = {_quote(self.operator.url)}
{dlr_route}
group = smsbox
bearerbox-host = "127.0.0.1"
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = "127.0.0.1"
log-file = {_quote(str(d / "smsbox.log"))}
log-level = {self.log_level}
access-log = {_quote(str(d / "smsbox-access.log"))}

group = sendsms-user
username = {_quote(self.username)}
password = {_quote(self.password)}
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
{service}
"""
        self.config_path.write_text(config)
        return self.config_path

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> KannelStack:
        """Start bearerbox, then smsbox once bearerbox takes boxes; wait until ready."""
        if not kannel_installed():
            raise KannelError(
                f"Kannel is not installed ({BEARERBOX} or {SMSBOX} missing): "
                "run `make system-deps` (scripts/install-system-deps.sh)"
            )
        if self.running:
            return self
        self.stop()  # one box may have died: start from scratch
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        _running.add(self)
        deadline = time.monotonic() + self.startup_timeout
        try:
            self._bearerbox = self._spawn(BEARERBOX, "bearerbox")
            self._wait(deadline, "bearerbox's smsbox-port", lambda: port_answers(self.smsbox_port))
            self._smsbox = self._spawn(SMSBOX, "smsbox")
            self._wait(deadline, "smsbox's sendsms-port", lambda: port_answers(self.sendsms_port))
            self._wait(deadline, "smsbox connected and smsc online", self._ready)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both boxes (killed if they linger past `timeout`); idempotent.

        bearerbox goes first: it flushes what it still owes smsbox, then tells smsbox to
        quit. Stopping smsbox first can leave bearerbox waiting forever for a box to hand
        a pending DLR to.
        """
        bearerbox, smsbox = self._bearerbox, self._smsbox
        self._bearerbox = self._smsbox = None
        _running.discard(self)
        deadline = time.monotonic() + timeout
        if bearerbox is not None and bearerbox.poll() is None:
            bearerbox.terminate()
            _wait_until(bearerbox, min(deadline, time.monotonic() + timeout / 2))
        if smsbox is not None and smsbox.poll() is None:
            smsbox.terminate()
        for process in (bearerbox, smsbox):
            if process is None:
                continue
            if not _wait_until(process, deadline):
                process.kill()
                process.wait(timeout)

    def restart(self) -> KannelStack:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the working directory (when it is ours)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        """Both boxes alive."""
        return all(p is not None and p.poll() is None for p in (self._bearerbox, self._smsbox))

    def __enter__(self) -> KannelStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, binary: Path, name: str) -> subprocess.Popen[bytes]:
        out = (self.dir / f"{name}.stderr").open("ab")
        try:
            # -v 2: warnings and worse on stderr; the full log goes to log-file.
            return subprocess.Popen(
                [str(binary), "-v", "2", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )
        finally:
            out.close()

    def _wait(self, deadline: float, what: str, ready: Any) -> None:
        while True:
            for name, process in (("bearerbox", self._bearerbox), ("smsbox", self._smsbox)):
                if process is not None and process.poll() is not None:
                    raise KannelError(
                        f"{name} exited with status {process.returncode} while waiting for "
                        f"{what}\n{self.logs_tail()}"
                    )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise KannelError(
                    f"Kannel not ready after {self.startup_timeout} s: no {what}\n"
                    f"{self.logs_tail()}"
                )
            time.sleep(0.05)

    def status(self, timeout: float = 2.0) -> str:
        """bearerbox's /status.txt (raises on connection errors)."""
        url = f"{self.admin_url}/status.txt?password={urllib.parse.quote(self.admin_password)}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8", "replace")

    def _ready(self) -> bool:
        try:
            status = self.status()
        except (OSError, urllib.error.URLError):
            return False
        return "smsbox:" in status and "online" in status

    def logs_tail(self, lines: int = 25) -> str:
        """The last lines of every log, for failure messages."""
        parts = []
        for name in ("bearerbox.log", "bearerbox.stderr", "smsbox.log", "smsbox.stderr"):
            path = self.dir / name
            if path.exists():
                parts.append(f"--- {name} ---\n{_tail(path, lines)}")
        return "\n".join(parts) or f"(no logs in {self.dir})"

    # -- the operator's side ---------------------------------------------------------

    def _mo_params(self, sender: str, receiver: str, text: str) -> dict[str, str]:
        return {
            "username": self.smsc_username,
            "password": self.smsc_password,
            "from": sender,
            "to": receiver,
            "text": text,
            "charset": "UTF-8",
        }

    def inject_mo(self, sender: str, receiver: str, text: str, timeout: float = 5.0) -> str:
        """Deliver an MO to bearerbox as the operator would; returns Kannel's answer.

        Raises httpx.HTTPStatusError when Kannel refuses it.
        """
        response = httpx.get(
            self.smsc_url, params=self._mo_params(sender, receiver, text), timeout=timeout
        )
        response.raise_for_status()
        return response.text

    async def ainject_mo(self, sender: str, receiver: str, text: str, timeout: float = 5.0) -> str:
        """`inject_mo` for async tests whose MO webhook runs on the same event loop."""
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(
                self.smsc_url, params=self._mo_params(sender, receiver, text)
            )
        response.raise_for_status()
        return response.text
