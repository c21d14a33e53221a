"""SMTP login checks: argon2 hashes, a cache of recent good logins, failure throttling."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mail2sms.config import UserConfig

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@dataclass
class _Window:
    """Timestamps of recent failures, trimmed to the window."""

    times: deque[float] = field(default_factory=deque)

    def count(self, now: float, window: float) -> int:
        while self.times and self.times[0] < now - window:
            self.times.popleft()
        return len(self.times)


class AuthOutcome:
    OK = "ok"
    BAD = "bad"
    THROTTLED = "throttled"


class Authenticator:
    """Checks logins against the configured users.

    Argon2 is slow on purpose (tens of milliseconds), which would cap a busy server at
    a few dozen logins a second. A successful login is remembered for ``cache_ttl``
    seconds as an HMAC of the password under a key that lives only in this process, so
    a repeated login with the same password costs one HMAC, a wrong password still goes
    through argon2, and nothing usable to recover a password is kept in memory.
    """

    def __init__(
        self,
        users: list[UserConfig],
        *,
        max_failures: int = 5,
        window: float = 300.0,
        cache_ttl: float = 600.0,
        failure_delay: float = 0.5,
    ):
        self._users = {u.email: u for u in users}
        self._key = secrets.token_bytes(32)
        self._cache: dict[str, tuple[bytes, float]] = {}
        self._fail_by_peer: dict[str, _Window] = {}
        self._fail_by_user: dict[str, _Window] = {}
        self.max_failures = max_failures
        self.window = window
        self.cache_ttl = cache_ttl
        self.failure_delay = failure_delay

    def _mac(self, login: str, password: bytes) -> bytes:
        return hmac.new(self._key, login.encode() + b"\0" + password, hashlib.sha256).digest()

    def throttled(self, peer: str, login: str) -> float:
        """Seconds to wait before this peer or user may try again (0: may try now)."""
        now = time.monotonic()
        waits = []
        for table, key in ((self._fail_by_peer, peer), (self._fail_by_user, login)):
            win = table.get(key)
            if win and win.count(now, self.window) >= self.max_failures:
                waits.append(win.times[0] + self.window - now)
        return max(waits, default=0.0)

    def _record_failure(self, peer: str, login: str) -> None:
        now = time.monotonic()
        self._fail_by_peer.setdefault(peer, _Window()).times.append(now)
        self._fail_by_user.setdefault(login, _Window()).times.append(now)

    async def check(self, peer: str, login_raw: bytes, password: bytes) -> tuple[str, str]:
        """Return (outcome, login). Never raises on any input."""
        login = login_raw.decode("utf-8", "replace").strip().lower()
        if self.throttled(peer, login) > 0:
            return AuthOutcome.THROTTLED, login
        mac = self._mac(login, password)
        cached = self._cache.get(login)
        if cached and cached[1] > time.monotonic() and hmac.compare_digest(cached[0], mac):
            return AuthOutcome.OK, login
        user = self._users.get(login)
        ok = False
        if user is not None:
            ok = await asyncio.to_thread(_verify, user.password_hash, password)
        else:
            # Spend the same time as a real check so unknown users cannot be told apart.
            await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        if ok:
            self._cache[login] = (mac, time.monotonic() + self.cache_ttl)
            return AuthOutcome.OK, login
        self._record_failure(peer, login)
        await asyncio.sleep(self.failure_delay)
        return AuthOutcome.BAD, login


def _verify(password_hash: str, password: bytes) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))
