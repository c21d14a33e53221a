"""SMS gateway drivers, chosen by ``gateway.driver`` in the config."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.drivers.base import Driver


def make_driver(cfg: GatewayConfig, *, dlr_url_template: str | None) -> Driver:
    """The driver ``cfg.driver`` names, ready to submit.

    ``dlr_url_template`` is the URL the gateway calls back with delivery reports;
    ``{id}`` in it stands for our message id.
    """
    if cfg.driver == "console":
        from gateway.drivers.console import ConsoleDriver

        return ConsoleDriver(cfg.outbox_file)
    if cfg.driver == "http":
        from gateway.drivers.http import HttpDriver

        return HttpDriver(cfg, dlr_url_template=dlr_url_template)
    if cfg.driver == "kannel":
        # Imported here so the other drivers work while Kannel's is absent or broken.
        from gateway.drivers.kannel import KannelDriver

        return KannelDriver(
            cfg.url,
            cfg.username,
            cfg.password,
            dlr_url_template=dlr_url_template,
            timeout=cfg.timeout,
            max_connections=cfg.concurrency,
        )
    raise ValueError(f"unknown gateway.driver {cfg.driver!r}: expected console, kannel or http")
