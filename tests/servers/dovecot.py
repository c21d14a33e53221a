"""A private, throwaway Dovecot IMAP server on 127.0.0.1 for tests.

Everything lives in one temporary directory: the config, ``base_dir``, ``state_dir``,
the log, a passwd-file with plaintext passwords and one maildir per user. Plain IMAP
and IMAPS (a self-signed certificate for 127.0.0.1, made with openssl) listen on free
loopback ports. When the tests run as root (CI), mail belongs to an unprivileged system
user, since Dovecot refuses to give mail processes uid 0.
"""

from __future__ import annotations

import atexit
import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.servers.ports import free_port, port_answers
from tests.servers.postgres import ensure_os_user

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3  # a port taken between free_port() and bind is retried on new ones
_FETCH = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)")


class DovecotNotFound(RuntimeError):
    """Dovecot is not installed on this machine."""


def dovecot_installed() -> bool:
    return os.access(DOVECOT, os.X_OK) and os.access(DOVEADM, os.X_OK)


@dataclass(frozen=True)
class StoredMail:
    """One message of a folder as IMAP shows it."""

    uid: int
    flags: frozenset[str]
    raw: bytes

    @property
    def subject(self) -> str:
        match = re.search(rb"^Subject: ?(.*)$", self.raw, re.MULTILINE | re.IGNORECASE)
        return match.group(1).decode(errors="replace").strip() if match else ""


class DovecotServer:
    """Dovecot with IMAP on ``port`` and IMAPS on ``ssl_port``, both on 127.0.0.1.

    ``users`` maps login to plaintext password. ``cert_file`` is the self-signed
    certificate, usable as a CA file by clients. ``capability`` replaces the capability
    list announced after login, to play an older server (e.g. no IDLE, MOVE or UIDPLUS).
    """

    def __init__(self, users: dict[str, str] | None = None, *,
                 capability: str | None = None) -> None:
        if not dovecot_installed():
            raise DovecotNotFound(
                f"Dovecot is not installed ({DOVECOT} / {DOVEADM} missing): "
                "run `make system-deps` (installs Debian's dovecot-imapd)"
            )
        self.users = dict(users or {"inbox@example.com": "imap-pass"})
        self.capability = capability
        self.host = "127.0.0.1"
        self.port = 0
        self.ssl_port = 0
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # --- paths ----------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        assert self.dir is not None, "Dovecot is not started"
        return self.dir / name

    @property
    def config_file(self) -> Path:
        return self._path("dovecot.conf")

    @property
    def log_file(self) -> Path:
        return self._path("dovecot.log")

    @property
    def cert_file(self) -> Path:
        return self._path("cert.pem")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> DovecotServer:
        """Write the config and start Dovecot; returns once IMAP answers."""
        if self.running:
            return self
        try:
            if self.dir is None:
                self._make_dir()
            last_error = ""
            for _ in range(_START_ATTEMPTS):
                self.port, self.ssl_port = free_port(), free_port()
                self._write_config()
                ok, last_error = self._launch()
                if ok:
                    break
                if "in use" not in last_error:
                    break
            else:
                ok = False
            if not ok:
                raise RuntimeError(f"Dovecot did not start:\n{last_error}")
            atexit.register(self.stop)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Dovecot and delete its files; safe to call twice."""
        self._halt()
        atexit.unregister(self.stop)
        directory, self.dir = self.dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping every mailbox."""
        self._halt()
        ok, error = self._launch()
        if not ok:
            raise RuntimeError(f"Dovecot did not restart:\n{error}")

    def _halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The whole process group: IMAP sessions would otherwise outlive the master for
        # seconds, and a stopped server must drop its clients as a crashed one would.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(_STOP_TIMEOUT if sig == signal.SIGTERM else 5)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:  # children still alive get the same end
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            break
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            port_answers(self.port) or port_answers(self.ssl_port)
        ):
            time.sleep(0.05)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _make_dir(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mail2sms-dovecot-"))
        # Dovecot's unprivileged processes must reach their sockets and the maildirs
        self.dir.chmod(0o755)
        if os.geteuid() == 0:
            mail_user = ensure_os_user()
            internal = _existing_user("dovecot") or mail_user
            login = _existing_user("dovenull") or mail_user
        else:
            mail_user = internal = login = pwd.getpwuid(os.geteuid())
        self._mail_user, self._internal, self._login = mail_user, internal, login
        mail = self._path("mail")
        mail.mkdir()
        os.chown(mail, mail_user.pw_uid, mail_user.pw_gid)
        self._path("passwd").write_text(
            "".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in self.users.items())
        )
        self._path("passwd").chmod(0o644)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(self._path("key.pem")), "-out", str(self.cert_file)],
            capture_output=True, check=True, timeout=30,
        )

    def _write_config(self) -> None:
        assert self.dir is not None
        mail_user = self._mail_user
        self.config_file.write_text(f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/state
instance_name = mail2sms-test-{self.port}
log_path = {self.log_file}
info_log_path = {self.log_file}
listen = {self.host}
protocols = imap
ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self._path("key.pem")}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self._internal.pw_name}
default_internal_group = {pwd_group(self._internal)}
default_login_user = {self._login.pw_name}
first_valid_uid = {mail_user.pw_uid}
first_valid_gid = {mail_user.pw_gid}
mail_location = maildir:{self.dir}/mail/%u
mail_uid = {mail_user.pw_uid}
mail_gid = {mail_user.pw_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.dir}/passwd
  default_fields = home={self.dir}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""" + (f"imap_capability = {self.capability}\n" if self.capability else ""))

    def _launch(self) -> tuple[bool, str]:
        """Start the master in the foreground (our child); wait until IMAP answers."""
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._proc = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.config_file)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, stopped as one in _halt
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                out = self._proc.stdout.read().decode(errors="replace") if self._proc.stdout else ""
                self._proc = None
                return False, out + self._log_since(log_offset)
            if port_answers(self.port) and port_answers(self.ssl_port):
                try:
                    with self.imap(next(iter(self.users))):
                        return True, ""
                except (OSError, imaplib.IMAP4.error):
                    pass
            time.sleep(0.05)
        self._halt()
        return False, f"no IMAP answer within {_START_TIMEOUT} s\n{self._log_since(log_offset)}"

    def _log_since(self, offset: int) -> str:
        if not self.log_file.exists():
            return ""
        with self.log_file.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_since(0).splitlines()[-lines:])

    # --- mailboxes ------------------------------------------------------------------

    def imap(self, user: str) -> imaplib.IMAP4:
        """A logged-in stdlib IMAP client on the plain port (use it as a context manager)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(user, self.users[user])
        return client

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Store ``raw`` in ``folder`` the way the local delivery agent would."""
        result = subprocess.run(
            [str(DOVEADM), "-c", str(self.config_file), "save", "-u", user, "-m", folder],
            input=raw, capture_output=True, timeout=30, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm save failed: {result.stderr.decode(errors='replace')}")

    def messages(self, user: str, folder: str = "INBOX") -> list[StoredMail]:
        """Every message of ``folder`` (empty when it does not exist), without marking any
        as seen."""
        with self.imap(user) as client:
            status, _ = client.select(_quote(folder), readonly=True)
            if status != "OK":
                return []
            status, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            found: list[StoredMail] = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, body = item
                uid, flags = 0, frozenset[str]()
                for match in _FETCH.finditer(head):
                    if match.group(1):
                        uid = int(match.group(1))
                    else:
                        flags = frozenset(match.group(2).decode().split())
                found.append(StoredMail(uid=uid, flags=flags, raw=body))
            return found

    def list_folder(self, user: str, folder: str = "INBOX") -> list[str]:
        """The subjects in ``folder``, in UID order."""
        return [m.subject for m in self.messages(user, folder)]

    def flags(self, user: str, folder: str = "INBOX") -> list[frozenset[str]]:
        """The flags of each message in ``folder``, in UID order."""
        return [m.flags for m in self.messages(user, folder)]

    def folders(self, user: str) -> list[str]:
        with self.imap(user) as client:
            _, data = client.list()
        names = []
        for line in data:
            if isinstance(line, bytes):
                names.append(line.decode().rpartition(' "/" ')[2].strip('"'))
        return names


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _existing_user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def pwd_group(user: pwd.struct_passwd) -> str:
    import grp

    try:
        return grp.getgrgid(user.pw_gid).gr_name
    except KeyError:
        return str(user.pw_gid)
