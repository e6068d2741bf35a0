"""``bottender worker``: run events from the durable inbox, serving no HTTP.

Gateways (``bottender start``, with ``--ingest-only`` for channels whose ``ack``
is ``"immediate"``) answer the platforms and fill the inbox; workers claim the
entries and run the bot. Both scale apart on one Redis, MongoDB (or, on one
host, file) store. A worker also picks up what a dead gateway or worker left.
SIGTERM or Ctrl-C stops claiming, lets running events finish and gives back
the rest for another process to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bottender.server.app import SHUTDOWN_GRACE_SECONDS, Gateway
from bottender.server.config import Config, ConfigError

logger = logging.getLogger("bottender.worker")


async def run_worker(config: Config, stop: asyncio.Event | None = None) -> None:
    """Claim and run inbox entries until ``stop`` is set (or SIGTERM/SIGINT)."""
    if config.driver == "memory":
        raise ConfigError(
            "session.driver: bottender worker needs a shared store with a durable inbox"
            " (file, redis or mongo), not 'memory'"
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    gateway = Gateway(config)
    await gateway.start()
    logger.warning(
        "worker %s running inbox entries of channels %s on the %s store",
        gateway.dispatcher.owner,
        ", ".join(config.channels) or "(none)",
        config.driver,
    )
    try:
        await stop.wait()
    finally:
        await gateway.stop(SHUTDOWN_GRACE_SECONDS)
