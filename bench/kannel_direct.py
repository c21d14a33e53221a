"""The ceiling: SMS/s through Kannel alone, driving its sendsms directly.

Our dispatcher's throughput through the same stack is reported as a ratio to this,
measured in the same run. Standalone: `python -m bench.kannel_direct [N] [CONCURRENCY]`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench.rawhttp import get_request, run_requests
from tests.servers.kannel import KannelStack
from tests.servers.operator import FakeOperator

#: Where Kannel-direct asks for delivery reports when it requests them as we do; the
#: fake operator sends none in a benchmark, so nothing ever calls it.
_DLR_URL = "http://127.0.0.1:9/webhooks/kannel/dlr?token=t&id={i}&status=%d&answer=%A&ts=%T"


def _requests(url: str, username: str, password: str, n: int, dlr: bool) -> list[bytes]:
    requests = []
    for i in range(n):
        params = {"username": username, "password": password, "from": "36105",
                  "to": f"+3361{i % 10_000_000:07d}", "text": f"Benchmark message {i}",
                  "charset": "UTF-8", "coding": "0"}
        if dlr:  # the same delivery-report request as our driver's
            params["dlr-mask"] = "23"
            params["dlr-url"] = _DLR_URL.replace("{i}", str(i))
        requests.append(get_request(url, params))
    return requests


def _client_process(url: str, username: str, password: str, n: int, concurrency: int,
                    ready: Any, go: Any, dlr: bool) -> None:
    # the lean client: with httpx the client, not Kannel, would set the ceiling
    requests = _requests(url, username, password, n, dlr)
    parts = urlsplit(url)
    ready.set()
    go.wait(30)
    asyncio.run(run_requests(parts.hostname or "127.0.0.1", parts.port or 80, requests,
                             concurrency))


async def kannel_direct(stack: KannelStack, n: int, concurrency: int = 20, *,
                        dlr: bool = False) -> dict[str, float]:
    """Send n one-part SMS through `stack`'s sendsms over `concurrency` keep-alive
    connections; time from the first request until its operator has recorded all n.

    The client runs in a process of its own, as our dispatcher does when it is measured,
    so neither shares an interpreter with the fake operator. Raises RuntimeError when
    Kannel refuses one, TimeoutError when they do not all arrive. With `dlr`, each asks
    for delivery reports as our driver does (`dlr-mask` and a `dlr-url`).
    """
    operator = stack.operator
    before = operator.count()
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    client = context.Process(
        target=_client_process,
        args=(stack.sendsms_url, stack.username, stack.password, n, concurrency, ready, go,
              dlr),
    )
    client.start()
    # the clock starts once the client process is up, not while Python starts
    if not await asyncio.to_thread(ready.wait, 30):
        client.kill()
        raise RuntimeError("the sendsms client process did not start")
    start = time.monotonic()
    go.set()
    try:
        # Generous but bounded: the slowest stack seen does ~150 SMS/s.
        received = await operator.await_for(before + n, 30.0 + n / 50)
    finally:
        await asyncio.to_thread(client.join, 30)
        if client.is_alive():
            client.kill()
    if client.exitcode:
        raise RuntimeError(f"the sendsms client failed (exit code {client.exitcode})")
    end = max(mt.received_at for mt in received[before:])
    seconds = end - start
    return {"n": n, "seconds": round(seconds, 3), "per_second": round(n / seconds, 1)}


async def _main(n: int, concurrency: int) -> None:
    # Info-level logs: Kannel's debug logging (every PDU dumped) would be measured too.
    with FakeOperator() as operator, KannelStack(operator, log_level=1) as stack:
        await kannel_direct(stack, min(n, 200), concurrency)  # warm-up: connections, caches
        result = await kannel_direct(stack, n, concurrency)
    print(result)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(_main(*(args + [2000, 20][len(args) :])))
