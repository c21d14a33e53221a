"""``mail2sms serve``: SMTP intake, HTTP API, outbox dispatcher and sweeper in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from urllib.parse import quote

import uvicorn

from autoresponder.loader import RulesError
from campaigns.schedules import Scheduler
from gateway.drivers import make_driver
from gateway.mailer import Mailer
from gateway.outbox import Outbox
from gateway.sweeper import run_sweeper
from inbound.model import Settings
from inbound.pipeline import Pipeline
from inbound.rulebook import Rulebook
from mail2sms.api import create_app
from mail2sms.config import Config, split_host_port
from mail2sms.imap import ImapIntake
from mail2sms.service import Service
from mail2sms.smtp import start_smtp
from store.db import Database

log = logging.getLogger("mail2sms")


def dlr_url_template(config: Config) -> str:
    """Our DLR webhook as the gateway must call it; ``{id}`` is our message id."""
    # check-config allows only URL-safe tokens: Kannel reads any %X as its own escape
    token = quote(config.http.webhook_token, safe="")
    if config.gateway.driver == "kannel":
        return (f"{config.dlr_base_url}/webhooks/kannel/dlr?token={token}&id={{id}}"
                "&status=%d&answer=%A&ts=%T")
    return f"{config.dlr_base_url}/webhooks/dlr?token={token}&id={{id}}"


def inbound_settings(config: Config) -> Settings:
    """The configuration values the inbound pipeline needs."""
    return Settings(
        forward_to=tuple(config.inbound.forward_to),
        reply_to_sender=config.inbound.reply_to_sender,
        domain=config.smtp.domains[0] if config.smtp.domains else "localhost",
        mail_from=config.mail_out.from_,
        timezone=config.compliance.timezone,
        country=config.compliance.country,
        transliterate=config.compliance.transliterate,
        max_per_day=config.compliance.max_per_number_per_day,
    )


def load_rulebook(config: Config) -> Rulebook:
    """The rules file, read once; an invalid one stops the start with every problem."""
    rulebook = Rulebook(config.rules_file)  # relative to the config file, as check-config
    try:
        rulebook.load()
    except RulesError as exc:
        for problem in exc.problems:
            log.error("rules: %s", problem)
        raise SystemExit(f"not started: {len(exc.problems)} problem(s) in the rules file "
                         f"{config.rules_file}") from exc
    return rulebook


async def serve(config: Config, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    rulebook = load_rulebook(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    db = Database(config.database.url)
    driver = make_driver(config.gateway, dlr_url_template=dlr_url_template(config))
    outbox = Outbox(
        db, driver, rate_per_second=config.gateway.rate_per_second,
        concurrency=config.gateway.concurrency, max_attempts=config.gateway.max_attempts,
        default_sender=config.gateway.shortcode,
        # SQLite means one serving process; PostgreSQL may have several dispatchers
        sole_dispatcher=db.is_sqlite,
    )
    mailer = Mailer(config.mail_out)
    service = Service(config, db, mailer=mailer, wake=outbox.wake)
    # rulebook.reload() swaps the rules between two SMS (file watcher, SIGHUP)
    pipeline = Pipeline(db, rulebook, inbound_settings(config), mailer=mailer,
                        wake=outbox.wake)

    # periodic and event sends; picks up `mail2sms schedules` changes every 30 s
    scheduler = Scheduler(db, config.compliance.timezone)
    await scheduler.start(service.submit)

    def on_sighup() -> None:
        rulebook.reload()
        scheduler.sync_now()  # a `mail2sms schedules` change applies now, not within 30 s

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)

    smtp_host, smtp_port = split_host_port(config.smtp.listen)
    smtp_server = await start_smtp(config, service, smtp_host, smtp_port)
    http_host, http_port = split_host_port(config.http.listen)
    api = uvicorn.Server(uvicorn.Config(
        create_app(config, db, pipeline=pipeline, service=service), host=http_host, port=http_port,
        log_level="warning", access_log=False, lifespan="off",
    ))
    api.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    tasks = [
        asyncio.create_task(outbox.run(stop), name="outbox"),
        asyncio.create_task(run_sweeper(db, stop), name="sweeper"),
        asyncio.create_task(api.serve(), name="http"),
        asyncio.create_task(rulebook.watch(stop), name="rules"),
    ]
    if config.imap.enabled:
        tasks.append(asyncio.create_task(ImapIntake(config, service).run(stop), name="imap"))
    # uvicorn binds inside serve(); wait for it so "ready" means every port answers.
    for _ in range(200):
        if api.started or any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.025)
    failed = [t for t in tasks if t.done() and t.exception()]
    if failed:
        stop.set()
        scheduler.shutdown()
        smtp_server.close()
        raise RuntimeError(f"could not start: {failed[0].exception()}")
    log.info("mail2sms serving: SMTP %s, HTTP %s, gateway %s, database %s",
             config.smtp.listen, config.http.listen, config.gateway.driver,
             config.database.url.split("@")[-1])
    if config.http.webhook_token == "change-me":
        log.warning("http.webhook_token is the example value: set a secret of your own")
    if ready is not None:
        ready.set()
    print(f"mail2sms ready: SMTP on {config.smtp.listen}, HTTP on {config.http.listen}",
          flush=True)

    await stop.wait()
    log.info("stopping")
    scheduler.shutdown()
    smtp_server.close()
    await smtp_server.wait_closed()
    api.should_exit = True
    await asyncio.wait(tasks, timeout=config.gateway.timeout + 5)
    await service.aclose()
    await pipeline.aclose()
    await driver.aclose()
    db.close()
