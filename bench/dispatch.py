"""Dispatch through Kannel: our outbox beside Kannel's sendsms driven directly."""

from __future__ import annotations

import time

from bench.ingest import one_to_many
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import Mail2SmsServer


async def dispatch_through_kannel(server: Mail2SmsServer, stack: KannelStack, n: int) -> dict:
    """One email to ``n`` numbers; time from its 250 (all queued) until the operator
    behind Kannel has recorded all ``n``."""
    operator = stack.operator
    before = operator.count()
    queued = await one_to_many(server, numbers=n)
    start = time.monotonic()
    received = await operator.await_for(before + n, 30.0 + n / 20)
    end = max(mt.received_at for mt in received[before:])
    seconds = max(end - start, 1e-6)
    return {"n": n, "queue_seconds": queued["seconds"], "seconds": round(seconds, 3),
            "per_second": round(n / seconds, 1)}
