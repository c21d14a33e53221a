"""(j) Delivery reports through Kannel's DLR webhook: reports/s and latency per report.

Every SMS sent with a DLR request brings at least one report back, as fast as the SMS
left: the webhook must keep up with the dispatcher. The reports are Kannel's dlr-url
calls, sent by the lean client from a process of its own to a real ``mail2sms serve``
whose messages were first dispatched (console gateway). Standalone:
``python -m bench.dlr [N] [CONCURRENCY]``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ingest import one_to_many
from bench.mo import TOKEN, ClientProcess, client_main
from bench.rawhttp import get_request
from bench.stats import latency_line
from tests.servers.mail2sms_server import Mail2SmsServer, base_config

#: What an SMPP operator answers, as Kannel passes it in ``%A``.
ANSWER = ("id:4f2a sub:001 dlvrd:001 submit date:2612021000 done date:2612021000 "
          "stat:DELIVRD err:000")


def _server(tmp: Path) -> Mail2SmsServer:
    config = base_config(tmp, log_level="WARNING")
    config["users"][0]["daily_limit"] = None
    config["gateway"]["rate_per_second"] = 100_000
    return Mail2SmsServer(tmp, config)


def _statuses(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall())


async def _dispatched(db: sqlite3.Connection, n: int, timeout: float) -> list[int]:
    """The ids of the n messages once the gateway took them all (bounded wait)."""
    deadline = time.monotonic() + timeout
    while _statuses(db).get("submitted", 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} messages not dispatched after {timeout:.0f} s: "
                               f"{_statuses(db)}")
        await asyncio.sleep(0.1)
    return [row[0] for row in db.execute("SELECT id FROM messages ORDER BY id")]


def _requests(url: str, ids: list[int]) -> list[bytes]:
    return [get_request(url, {"token": TOKEN, "id": str(i), "status": "1", "answer": ANSWER,
                              "ts": "1764669600"}) for i in ids]


async def bench_dlr(n: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dlr-") as tmp, _server(Path(tmp)) as server:
        await one_to_many(server, numbers=n)
        db = sqlite3.connect(f"file:{server.db_url.removeprefix('sqlite:///')}?mode=ro",
                             uri=True, timeout=5)
        try:
            ids = await _dispatched(db, n, 60 + n / 100)
            url = f"{server.http_url}/webhooks/kannel/dlr"
            async with ClientProcess(client_main, url, _requests(url, ids), concurrency) as client:
                client.go.set()
                seconds, latencies = await client.result(30.0 + n / 50)
            statuses = _statuses(db)
        finally:
            db.close()
    result = {"n": n, "seconds": seconds, "per_second": n / seconds,
              "latency": latency_line(latencies), "statuses": statuses}
    delivered = statuses.get("delivered", 0)
    print(f"(j) delivery reports through Kannel's DLR webhook, {n} reports, {concurrency} "
          f"connections: {result['per_second']:.0f} reports/s; latency per report: "
          f"{result['latency']}; {delivered} messages delivered"
          + ("" if delivered == n else f": MISMATCH, expected {n} ({statuses})"))
    return result


if __name__ == "__main__":
    argv = [int(a) for a in sys.argv[1:3]]
    asyncio.run(bench_dlr(*(argv + [10000, 20][len(argv):])))
