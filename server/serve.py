"""Serving the gateway in production with uvicorn.

SIGTERM (what a container runtime or systemd sends) shuts down gracefully:
uvicorn stops accepting connections and lets requests in flight finish (up to
``GRACEFUL_SHUTDOWN_SECONDS``), then the app's lifespan ends, where
``Gateway.stop`` waits for events still running past their deadline
(``bottender.server.app.SHUTDOWN_GRACE_SECONDS``), writes their sessions and closes the
store. Both waits are bounded, so a stuck bot cannot hold the process forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from types import FrameType
from typing import Any

import uvicorn

from bottender.server import startup
from bottender.server.asgi import APP_ENV, CONFIG_ENV, INGEST_ONLY_ENV, POLLING_ENV
from bottender.server.channels import skipped_for_polling
from bottender.server.config import Config
from bottender.server.edge import uvicorn_options
from bottender.server.logs import log_config
from bottender.server.metrics import shared_directory
from bottender.server.stores import build_store

logger = logging.getLogger("bottender.server")

#: Seconds uvicorn gives requests in flight on SIGTERM before closing them.
GRACEFUL_SHUTDOWN_SECONDS = 30
#: Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, unless configured.
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1"
FORWARDED_ALLOW_IPS_ENV = "FORWARDED_ALLOW_IPS"


async def _check_store(config: Config) -> None:
    """Fail before serving, with a clear message, when the store is down."""
    store = build_store(config)
    await store.open()
    await store.close()


def export_config(
    config: Config, app_override: str | None = None, *, polling: bool = False
) -> None:
    """Tell uvicorn's worker processes (``bottender.server.asgi:create``) what to load.

    Only a command-line ``--app`` is handed down: the app the config chose is
    chosen again by each worker, so a reloaded dev server follows an edited ``.env``.
    """
    os.environ[CONFIG_ENV] = str(config.path)
    os.environ[POLLING_ENV] = "1" if polling else "0"
    if app_override:
        os.environ[APP_ENV] = app_override
    else:
        os.environ.pop(APP_ENV, None)


def forwarded_allow_ips(option: str | None = None) -> str:
    """``--forwarded-allow-ips``, else ``$FORWARDED_ALLOW_IPS``, else only 127.0.0.1.

    Forwarded headers decide the client address in the logs and the scheme of
    URLs; believing them from anyone would let any client claim any address.
    """
    return option or os.environ.get(FORWARDED_ALLOW_IPS_ENV) or DEFAULT_FORWARDED_ALLOW_IPS


def serve(
    config: Config,
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    log_format: str = "text",
    forwarded_allow: str | None = None,
    metrics_port: int | None = None,
    polling: bool = False,
    ingest_only: bool = False,
    app_override: str | None = None,
    check_tokens: bool = True,
) -> int:
    asyncio.run(_check_store(config))
    if polling:
        announce_polling(config, workers)
    startup.check_port_free(host, port)
    bots: dict[str, str] = {}
    if check_tokens and config.channels:
        checked = asyncio.run(startup.check_tokens(config))
        for warning in checked.warnings:
            logger.warning("%s", warning)
        bots = checked.bots
    for line in startup.banner(config, host=host, port=port, bots=bots, polling=polling):
        print(line, flush=True)
    warning = startup.no_channel_warning(config)
    if warning:
        logger.warning("%s", warning)
    if workers > 1 and config.driver == "memory":
        logger.warning(
            "%d workers on the memory store: each worker keeps its own sessions, so a"
            " conversation's state depends on which worker gets each event;"
            " use the redis or mongo driver to share sessions",
            workers,
        )
    export_config(config, app_override, polling=polling)
    # uvicorn re-raises a SIGTERM it handled gracefully: make that a clean exit (status 0).
    signal.signal(signal.SIGTERM, _exit_zero)
    if ingest_only:
        os.environ[INGEST_ONLY_ENV] = "1"
    observed = config.metrics is not None or metrics_port is not None
    # Metrics on: one multiprocess directory for this run's workers (server/metrics.py).
    with shared_directory(metrics_port) if observed else contextlib.nullcontext():
        _run_uvicorn(config, host, port, workers, log_level, log_format, forwarded_allow)
    return 0


def _run_uvicorn(
    config: Config,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    log_format: str,
    forwarded_allow: str | None,
) -> None:
    run_gateway(
        config,
        host=host,
        port=port,
        log_level=log_level,
        log_format=log_format,
        workers=workers,
        # Every webhook gets its own structured line (server/logs.py); uvicorn's
        # access line would repeat it, so it is kept for debugging only.
        access_log=log_level == "debug",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips(forwarded_allow),
    )


def run_gateway(
    config: Config,
    *,
    host: str,
    port: int,
    log_level: str,
    log_format: str = "text",
    **uvicorn_settings: Any,
) -> None:
    """Serve the gateway with uvicorn: the one way ``start`` and ``dev`` both serve it.

    Whatever else a command sets (workers, reload, shutdown grace), the edge's
    limits (server/edge.py: header size, read timeouts, connections) always
    apply, so a bot tried with ``bottender dev`` meets the limits it meets in
    production.
    """
    uvicorn.run(
        "bottender.server.asgi:create",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config(log_level, log_format),
        **uvicorn_settings,
        **uvicorn_options(config.limits),
    )


def announce_polling(config: Config, workers: int = 1) -> None:
    """Say which channels will not be served, and when pollers cannot share a lease."""
    for line in skipped_for_polling(config):
        print(line, flush=True)
    if workers > 1 and config.driver == "memory":
        logger.warning(
            "--polling with %d workers on the memory store: each worker has its own locks,"
            " so every worker polls each bot and the platform refuses all but one (409);"
            " use the redis, mongo or file driver to keep one poller per bot",
            workers,
        )


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    """What a SIGTERM does once uvicorn has shut down (events finished, sessions written)."""
    raise SystemExit(0)
