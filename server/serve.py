"""Serving the gateway with uvicorn."""

from __future__ import annotations

import asyncio
import logging
import os

import uvicorn

from server.asgi import APP_ENV, CONFIG_ENV
from server.config import Config
from server.stores import build_store

logger = logging.getLogger("bottender.server")

#: Seconds uvicorn gives requests in flight on SIGTERM before closing them.
GRACEFUL_SHUTDOWN_SECONDS = 30


async def _check_store(config: Config) -> None:
    """Fail before serving, with a clear message, when the store is down."""
    store = build_store(config)
    await store.open()
    await store.close()


def serve(
    config: Config, *, host: str, port: int, workers: int = 1, log_level: str = "info"
) -> int:
    asyncio.run(_check_store(config))
    if workers > 1 and config.driver == "memory":
        logger.warning(
            "%d workers on the memory store: each worker keeps its own sessions, so a"
            " conversation's state depends on which worker gets each event;"
            " use the redis or mongo driver to share sessions",
            workers,
        )
    os.environ[CONFIG_ENV] = str(config.path)
    if config.app_ref and ":" in config.app_ref:
        os.environ[APP_ENV] = config.app_ref
    uvicorn.run(
        "server.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=True,
    )
    return 0
