"""A personalised send to a large group: queueing it (SQLite, PostgreSQL), then
dispatching it through Kannel beside Kannel's sendsms driven directly.

``python -m bench.campaign [--members 100000] [--backend sqlite|postgresql|both]
[--dispatch N]``. Every member is a distinct valid mobile number, so a group of
100,000 gives 100,000 messages.

(h) The contacts are imported first (not timed); then, in a fresh child process so its
peak memory is its own, one send to ``#bench`` with ``Bonjour {{ first_name }}, ...``
is planned and committed (``campaigns.queue.queue_request``): the time is from the
request until every message row is committed.

(i) ``mail2sms serve`` with the Kannel driver in front of real bearerbox/smsbox and the
fake operator; ``mail2sms send --to '#bench'`` queues the send (the command returns once
every row is committed) and the time runs from its return until the operator has
every SMS. Kannel-direct: a separate process drives sendsms with as many keep-alive
connections as our dispatcher uses, for the same number of SMS, each asking for
delivery reports as our driver does; each measure has a fresh Kannel.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.contacts import _IMPORT, _child, write_csv
from bench.kannel_direct import kannel_direct
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator
from tests.servers.postgres import PostgresServer

_QUEUE = """
import json, resource, sys, time
from campaigns.queue import queue_request
from campaigns.plan import UserPolicy
from campaigns.request import SendRequest
from sms.config import ComplianceConfig
from store.db import Database
from sqlalchemy import text
db = Database(sys.argv[1])
request = SendRequest(user="bench@example.com", groups=["bench"], category="alert",
                      text="Bonjour {{ first_name }}, votre code {{ code_client }} à {{ ville }}")
start = time.perf_counter()
plan, request_id = db.run_sync(lambda s: queue_request(
    s, request, policy=UserPolicy(email="bench@example.com"),
    compliance=ComplianceConfig(), shortcode="36105"))
seconds = time.perf_counter() - start
rows = db.run_sync(lambda s: s.connection().execute(
    text("select count(*) from messages where request_id = :r"), {"r": request_id}).scalar())
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"planned": len(plan.messages), "queued": plan.count("queued"),
                  "rows": rows, "seconds": seconds, "own_mb": own}))
"""


def bench_queue(members: int, url: str | None) -> dict:
    """Import ``members`` contacts into group Bench, then queue a send to ``#bench``."""
    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as tmp:
        path = Path(tmp) / "contacts.csv"
        write_csv(path, members, clean=True)
        db = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        _child(_IMPORT, db, str(path), "auto")
        return _child(_QUEUE, db)


def report(backend: str, members: int, r: dict) -> None:
    print(f"(h) {backend}: personalised send to a group of {members}: {r['rows']} rows "
          f"committed ({r['queued']} queued) in {r['seconds']:.2f} s = "
          f"{r['rows'] / r['seconds']:.0f} messages/s, peak memory {r['own_mb']:.0f} MB")


async def bench_dispatch(members: int, concurrency: int = 20) -> dict:
    """(i): our dispatch of a send to ``#bench`` and Kannel-direct asking for delivery
    reports as we do, each on a fresh Kannel of the same configuration (bearerbox keeps a
    pending report per SMS, and a store already holding 100,000 slows the next run)."""
    with tempfile.TemporaryDirectory(prefix="bench-campaign-dispatch-") as tmp, \
            FakeOperator() as operator:
        with KannelStack(operator, log_level=1) as stack:
            await kannel_direct(stack, min(members, 200), concurrency)  # warm-up
            direct = await kannel_direct(stack, members, concurrency, dlr=True)
        operator.reset()
        with KannelStack(operator, log_level=1) as stack:
            return await _ours(Path(tmp), operator, stack, members, concurrency, direct)


async def _ours(tmp: Path, operator: FakeOperator, stack: KannelStack, members: int,
                concurrency: int, direct: dict) -> dict:
    gateway = {"driver": "kannel", "url": stack.sendsms_url, "username": stack.username,
               "password": stack.password, "rate_per_second": 100000,
               "concurrency": concurrency}
    config = base_config(tmp, log_level="WARNING", gateway=gateway)
    config["users"][0]["daily_limit"] = None
    path = tmp / "contacts.csv"
    write_csv(path, members, clean=True)
    _child(_IMPORT, config["database"]["url"], str(path), "auto")
    with Mail2SmsServer(tmp, config) as server:
        before = operator.count()
        started = time.monotonic()
        send = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mail2sms.cli", "send", "--config",
            str(server.config_path), "--as", "alice@example.com", "--to", "#bench",
            "--text", "Bonjour {{ first_name }}, votre code {{ code_client }}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await send.communicate()
        queued = time.monotonic()
        if send.returncode:
            raise RuntimeError(f"mail2sms send failed: {output.decode()[-2000:]}")
        received = await operator.await_for(before + members, 60.0 + members / 50)
        ours = received[before:]
        end = max(mt.received_at for mt in ours)
    # from the commit: the first SMS may leave while the command is still printing
    seconds = max(end - min(queued, min(mt.received_at for mt in ours)), 1e-6)
    return {"n": members, "queue_seconds": queued - started, "seconds": seconds,
            "per_second": members / seconds, "direct": direct}


def run(members: int, backend: str = "both", dispatch: int | None = None) -> None:
    if backend in ("sqlite", "both"):
        report("SQLite", members, bench_queue(members, None))
    if backend in ("postgresql", "both"):
        with PostgresServer() as server:
            url = server.create_database("bench_campaign")
            report("PostgreSQL", members, bench_queue(members, url))
    n = members if dispatch is None else dispatch
    if n:
        r = asyncio.run(bench_dispatch(n))
        direct = r["direct"]["per_second"]
        print(f"(i) dispatch of a personalised send to {n} contacts through Kannel "
              f"(20 connections): mail2sms {r['per_second']:.0f} SMS/s "
              f"({r['seconds']:.1f} s after `mail2sms send` returned, which took "
              f"{r['queue_seconds']:.1f} s), Kannel sendsms direct (same DLR request) "
              f"{direct:.0f} SMS/s: "
              f"ratio {r['per_second'] / direct:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign", description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both", "none"],
                        default="both", help="where (h) runs; none: only (i)")
    parser.add_argument("--dispatch", type=int, default=None,
                        help="SMS for (i) (default: the whole send; 0: skip)")
    args = parser.parse_args()
    run(args.members, args.backend, args.dispatch)


if __name__ == "__main__":
    main()
