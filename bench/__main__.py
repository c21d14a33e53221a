"""``make bench``: SMTP ingest, fan-out, dispatch through Kannel (vs Kannel direct),
MO through the webhook and through Kannel (vs Kannel alone), delivery reports through
the webhook, contact import, and a
personalised send to a large group (queued on SQLite and PostgreSQL, dispatched through
Kannel vs Kannel direct)."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from pathlib import Path

from bench.dispatch import dispatch_through_kannel
from bench.dlr import bench_dlr
from bench.ingest import one_to_many, smtp_ingest
from bench.kannel_direct import kannel_direct
from bench.mo import bench_mo
from tests.servers.kannel import KannelStack
from tests.servers.mail2sms_server import Mail2SmsServer, base_config
from tests.servers.operator import FakeOperator
from tests.servers.smtp_sink import SmtpSink


def _server(tmp: Path, **overrides: object) -> Mail2SmsServer:
    config = base_config(tmp, log_level="WARNING", **overrides)
    config["users"][0]["daily_limit"] = None
    return Mail2SmsServer(tmp, config)


async def bench_ingest(emails: int, clients: int, fanout: int) -> None:
    # reports go to a real SMTP server, as they would to the site's relay
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, SmtpSink() as relay:
        with _server(Path(tmp), mail_out={"relay": f"127.0.0.1:{relay.port}"}) as server:
            result = await smtp_ingest(server, emails=emails, clients=clients)
            print(f"(a) SMTP ingest, {clients} authenticated clients, one recipient each: "
                  f"{result['emails']} emails in {result['seconds']:.2f} s = "
                  f"{result['per_second']:.0f} emails/s; latency to 250: {result['latency']}")
            result = await one_to_many(server, numbers=fanout)
            print(f"(b) one email to {fanout} numbers: all queued (250) after "
                  f"{result['seconds'] * 1000:.0f} ms")


async def bench_dispatch(n: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp, \
            FakeOperator() as operator, KannelStack(operator, log_level=1) as stack:
        await kannel_direct(stack, min(n, 200), concurrency)  # warm-up
        direct = await kannel_direct(stack, n, concurrency)
        gateway = {"driver": "kannel", "url": stack.sendsms_url, "username": stack.username,
                   "password": stack.password, "rate_per_second": 100000,
                   "concurrency": concurrency}
        with _server(Path(tmp), gateway=gateway) as server:
            await dispatch_through_kannel(server, stack, min(n, 200))  # warm-up
            ours = await dispatch_through_kannel(server, stack, n)
        ratio = ours["per_second"] / direct["per_second"]
        print(f"(c) dispatch through Kannel, {n} SMS, {concurrency} connections: "
              f"mail2sms {ours['per_second']:.0f} SMS/s, Kannel sendsms direct "
              f"{direct['per_second']:.0f} SMS/s: ratio {ratio:.2f} "
              f"({ratio * 100:.0f} % of Kannel direct)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--dispatch", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--mo", type=int, default=10000, help="MOs per MO measure")
    parser.add_argument("--dlr", type=int, default=10000, help="delivery reports")
    parser.add_argument("--contacts", type=int, default=1_000_000, help="rows to import")
    parser.add_argument("--members", type=int, default=100_000, help="group to plan for")
    parser.add_argument("--campaign", type=int, default=100_000,
                        help="contacts of the personalised send queued and dispatched")
    parser.add_argument("--campaign-dispatch", type=int, default=None,
                        help="SMS of that send dispatched through Kannel (default: all)")
    parser.add_argument("--only", choices=["ingest", "dispatch", "mo", "dlr", "contacts",
                                             "campaign"],
                        default=None)
    args = parser.parse_args()
    print(f"mail2sms benchmarks on {platform.node()}: {os.cpu_count()} CPU(s), "
          f"Python {platform.python_version()}")
    if args.only in (None, "ingest"):
        asyncio.run(bench_ingest(args.emails, args.clients, args.fanout))
    if args.only in (None, "dispatch"):
        asyncio.run(bench_dispatch(args.dispatch, args.concurrency))
    if args.only in (None, "mo"):
        asyncio.run(bench_mo(args.mo, args.concurrency))
    if args.only in (None, "dlr"):
        asyncio.run(bench_dlr(args.dlr, args.concurrency))
    if args.only in (None, "contacts"):
        from bench import contacts

        contacts.run(args.contacts, args.members)
    if args.only in (None, "campaign"):
        from bench import campaign

        campaign.run(args.campaign, "both", args.campaign_dispatch)


if __name__ == "__main__":
    main()
