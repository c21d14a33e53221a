"""A private, throwaway PostgreSQL cluster on 127.0.0.1 for tests.

PostgreSQL refuses to run as root, and CI runs tests as root: in that case the cluster
belongs to an unprivileged system user created for the purpose.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from tests.servers.ports import free_port

TEST_OS_USER = "mail2sms-test"
SUPERUSER = "postgres"
_BINARIES = ("initdb", "pg_ctl", "postgres")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
_START_ATTEMPTS = 3  # a port taken between free_port() and bind is retried on a new one


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); non-numeric names sort last
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then
    /usr/local/bin, then the highest /usr/lib/postgresql/<version>/bin."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    candidates.append(Path("/usr/local/bin"))
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _BINARIES):
            return bindir
    raise PostgresNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH, in "
        "/usr/local/bin or /usr/lib/postgresql/*/bin: run `make system-deps` "
        "(installs Debian's postgresql package)"
    )


def ensure_os_user(name: str = TEST_OS_USER) -> pwd.struct_passwd:
    """Create the unprivileged system user once; safe when several test runs race."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    last_error = ""
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        try:
            # Exit 9 ("already exists") means a concurrent run won the race: fine.
            return pwd.getpwnam(name)
        except KeyError:
            last_error = result.stderr.strip()
        time.sleep(0.2)  # exit 10: /etc/passwd locked by a concurrent useradd
    raise RuntimeError(f"could not create the system user {name!r}: {last_error}")


def _as_user_prefix(user: pwd.struct_passwd | None) -> list[str]:
    """The command prefix that runs a program as ``user`` (None: as ourselves)."""
    if user is None:
        return []
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser:
        return [runuser, "-u", user.pw_name, "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [
            setpriv,
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
        ]
    raise RuntimeError("neither runuser nor setpriv is available to drop root privileges")


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only.

    Tuned for speed, not durability (fsync, synchronous_commit and full_page_writes
    off): its data is thrown away by ``stop()``.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.host = "127.0.0.1"
        self.port = 0
        self.user = SUPERUSER
        self._os_user: pwd.struct_passwd | None = None
        self._dir: Path | None = None
        self._running = False

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb, configure and start; returns once it accepts TCP connections."""
        if self._running:
            return self
        if os.geteuid() == 0:
            self._os_user = ensure_os_user()
        try:
            self._make_dir()
            self._initdb()
            ok, last_error = False, ""
            for _ in range(_START_ATTEMPTS):
                self.port = free_port()
                self._write_config()
                ok, last_error = self._pg_ctl_start()
                if ok:
                    break
                if "could not bind" not in last_error and "in use" not in last_error:
                    break
            if not ok:
                raise RuntimeError(f"PostgreSQL did not start:\n{last_error}")
            self._running = True
            atexit.register(self.stop)  # last resort if the session ends abnormally
            self._wait_accepting(_START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server at once and delete its files; safe to call twice."""
        directory, self._dir = self._dir, None
        if directory is None:
            return
        data = directory / "data"
        if self._running:
            self._running = False
            result = self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    str(int(_STOP_TIMEOUT)),
                ],
                timeout=_STOP_TIMEOUT + 5,
                check=False,
            )
            if result.returncode != 0:
                self._kill_postmaster(data)
        atexit.unregister(self.stop)
        shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- databases ----------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of ``dbname`` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string of ``dbname`` (for psycopg directly)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connection a test left open on it."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        if not self._running:
            raise RuntimeError("PostgresServer is not running: call start() first")
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    # --- internals ----------------------------------------------------------------

    def _make_dir(self) -> None:
        # mkdtemp in /tmp (1777, traversable by everyone), then hand it to the user
        # that runs the cluster; 0700 is what PostgreSQL wants for its own files.
        self._dir = Path(tempfile.mkdtemp(prefix="mail2sms-pg-", dir="/tmp"))
        (self._dir / "sock").mkdir()
        if self._os_user is not None:
            for path in (self._dir, self._dir / "sock"):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
        os.chmod(self._dir, 0o700)

    def _initdb(self) -> None:
        assert self._dir is not None
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self._dir / "data"),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )

    def _write_config(self) -> None:
        assert self._dir is not None
        data = self._dir / "data"
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self._dir / 'sock'}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "logging_collector": "off",
        }
        # ALTER SYSTEM's file: read after postgresql.conf, rewritten on each attempt.
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        for path, text in ((data / "postgresql.auto.conf", conf), (data / "pg_hba.conf", hba)):
            path.write_text(text)
            if self._os_user is not None:
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)

    def _pg_ctl_start(self) -> tuple[bool, str]:
        assert self._dir is not None
        log = self._dir / "postgres.log"
        result = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self._dir / "data"),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(_START_TIMEOUT)),
            ],
            timeout=_START_TIMEOUT + 10,
            check=False,
        )
        if result.returncode == 0:
            return True, ""
        log_text = log.read_text(errors="replace") if log.exists() else ""
        return False, f"{result.stdout}{result.stderr}\n--- postgres.log ---\n{log_text[-4000:]}"

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL on {self.host}:{self.port} not accepting connections "
                        f"after {timeout:.0f} s: {exc}"
                    ) from exc
                time.sleep(0.1)

    def _kill_postmaster(self, data: Path) -> None:
        """pg_ctl failed to stop it: signal the postmaster directly (SIGQUIT = immediate)."""
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + _STOP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _run(
        self, argv: Sequence[str], *, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            [*_as_user_prefix(self._os_user), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            # the cluster's user may not be allowed into our working directory
            cwd=self._dir or "/",
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result
