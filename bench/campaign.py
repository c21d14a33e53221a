"""A personalised send to a large group: queueing it, on SQLite and on PostgreSQL.

``python -m bench.campaign [--members 100000] [--backend sqlite|postgresql|both]``.
The contacts are imported first (not timed); then, in a fresh child process so its
peak memory is its own, one ``mail2sms send``-equivalent to ``#bench`` with
``Bonjour {{ first_name }}, ...`` is planned and committed (``campaigns.queue``): the
time is from the request until every message row is committed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.contacts import _IMPORT, _child, write_csv
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
        write_csv(path, members)
        db = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        _child(_IMPORT, db, str(path), "auto")
        return _child(_QUEUE, db)


def report(backend: str, members: int, r: dict) -> None:
    print(f"(h) {backend}: personalised send to a group of {members}: {r['rows']} rows "
          f"committed ({r['queued']} queued) in {r['seconds']:.2f} s = "
          f"{r['rows'] / r['seconds']:.0f} messages/s, peak memory {r['own_mb']:.0f} MB")


def run(members: int, backend: str = "both") -> None:
    if backend in ("sqlite", "both"):
        report("SQLite", members, bench_queue(members, None))
    if backend in ("postgresql", "both"):
        with PostgresServer() as server:
            url = server.create_database("bench_campaign")
            report("PostgreSQL", members, bench_queue(members, url))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign", description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    run(args.members, args.backend)


if __name__ == "__main__":
    main()
