"""A clock set by the test for one server process, through libfaketime.

The process is started with ``LD_PRELOAD`` of libfaketime and reads its time from a
file (``FAKETIME_TIMESTAMP_FILE``, re-read at every call with ``FAKETIME_NO_CACHE``).
The file holds ``@YYYY-MM-DD HH:MM:SS``: the process's clock starts there and runs on
at the normal pace; rewriting the file jumps it, ``time.time()`` and
``time.monotonic()`` alike, so asyncio timers due by the new time fire at the loop's
next wake-up. Only that process is faked: Kannel, the fake operator and the test keep
the real clock.

Times in the file are read in the process's ``TZ``, which ``env()`` sets to UTC.
``FAKETIME_DONT_FAKE_MONOTONIC`` must stay unset: with it, libfaketime 0.9.10 makes
``time.sleep`` fail with EINVAL.

The thread-safe build (``libfaketimeMT``) is preloaded: with the plain one, a thread that
reads the clock while another is taking in the new file can combine the new time with
the old starting point, and for a moment sees the clock seconds ahead. The server's
outbox then claimed deferred SMS about two seconds before their ``not_before``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def faketime_installed() -> bool:
    return LIBFAKETIME.is_file()


class FakeClock:
    """The clock of the processes started with ``env()``; ``set()`` moves it."""

    def __init__(self, path: Path, start: datetime | None = None) -> None:
        self.path = path
        if start is not None:
            self.set(start)

    def env(self) -> dict[str, str]:
        """Environment variables that give a child process this clock."""
        if not faketime_installed():
            raise RuntimeError(
                f"libfaketime is not installed ({LIBFAKETIME} missing): "
                "run `make system-deps` (scripts/install-system-deps.sh) first"
            )
        if not self.path.exists():
            raise RuntimeError(f"set the clock before starting a process on it ({self.path})")
        preload = os.environ.get("LD_PRELOAD")
        return {
            "LD_PRELOAD": f"{LIBFAKETIME}:{preload}" if preload else str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "TZ": "UTC",
        }

    def set(self, when: datetime) -> None:
        """Jump the faked clock to ``when`` (timezone-aware); it runs on from there."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("FakeClock.set needs a timezone-aware datetime")
        utc = when.astimezone(UTC)
        # written whole then renamed: the faked process never reads half a line
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"@{utc:%Y-%m-%d %H:%M:%S}\n")
        tmp.replace(self.path)
