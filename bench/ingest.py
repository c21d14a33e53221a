"""SMTP ingest: concurrent authenticated clients against a real ``mail2sms serve``."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage

import aiosmtplib

from bench.stats import latency_line
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer


def _email(n: int, numbers: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "sms@sms.example.com"
    msg["Subject"] = ", ".join(numbers)
    msg["Message-ID"] = f"<bench-{n}@example.com>"
    msg.set_content(f"Rappel: votre rendez-vous n°{n} est demain à 9h.")
    return msg


async def _client(server: Mail2SmsServer, ids: range, latencies: list[float],
                  numbers_of: callable) -> None:  # type: ignore[valid-type]
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, timeout=30)
    await smtp.connect()
    await smtp.login("alice@example.com", PASSWORD)
    try:
        for n in ids:
            msg = _email(n, numbers_of(n))
            start = time.perf_counter()
            await smtp.send_message(msg)
            latencies.append(time.perf_counter() - start)
    finally:
        await smtp.quit()


async def smtp_ingest(server: Mail2SmsServer, *, emails: int = 2000, clients: int = 20) -> dict:
    """``clients`` connections, each sending its share of ``emails`` (one number each)."""
    latencies: list[float] = []

    def one_number(n: int) -> list[str]:
        return [f"+3361{n % 100000000:08d}"]

    # one warm-up email per client so first logins (argon2) are not counted
    await asyncio.gather(*(
        _client(server, range(10_000_000 + c, 10_000_001 + c), [], one_number)
        for c in range(clients)
    ))
    share = emails // clients
    start = time.perf_counter()
    await asyncio.gather(*(
        _client(server, range(c * share, (c + 1) * share), latencies, one_number)
        for c in range(clients)
    ))
    seconds = time.perf_counter() - start
    return {"emails": len(latencies), "seconds": seconds, "per_second": len(latencies) / seconds,
            "latency": latency_line(latencies)}


async def one_to_many(server: Mail2SmsServer, *, numbers: int = 1000) -> dict:
    """One email to ``numbers`` recipients: the 250 comes once every row is committed."""
    latencies: list[float] = []
    await _client(server, range(20_000_000, 20_000_001), latencies,
                  lambda n: [f"+3365{i:07d}" for i in range(numbers)])
    return {"numbers": numbers, "seconds": latencies[0]}
