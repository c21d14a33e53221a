"""The embedded default driver: every SMS becomes one JSON line in a file."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gateway.drivers.base import OutgoingSms, TransientError


class ConsoleDriver:
    """Appends ``{"id", "to", "from", "text", "encoding", "at"}`` lines to ``path``.

    Lines waiting while a write runs are written together by the next write, so a busy
    outbox costs one thread hop per group rather than per SMS. Each group is flushed to
    the OS before its senders hear back: a crash of the process loses nothing reported
    as submitted.
    """

    name = "console"

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        # One thread keeps lines whole and in order without a lock.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-sms")
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._file: TextIO | None = None

    async def submit(self, sms: OutgoingSms) -> str | None:
        line = json.dumps(
            {
                "id": sms.id,
                "to": sms.to,
                "from": sms.sender,
                "text": sms.text,
                "encoding": sms.encoding,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            },
            ensure_ascii=False,
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await done
        return f"console-{sms.id}"

    async def _write_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await loop.run_in_executor(self._executor, self._append, [b[0] for b in batch])
            except OSError as exc:
                error = TransientError(f"cannot write {self.path}: {exc.strerror or exc}")
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    def _append(self, lines: list[str]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write("".join(line + "\n" for line in lines))
        self._file.flush()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def aclose(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_file)
        self._executor.shutdown(wait=True)
