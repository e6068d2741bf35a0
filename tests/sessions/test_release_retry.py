"""A lock whose release failed in a store outage is given back once the store returns.

The outage is a TCP proxy in front of a real Redis that cuts every connection
and refuses new ones, so the release never reaches Redis (a frozen server would
still run it when thawed). The lease is long (60 s): a lock given back only when
its lease ran out would fail the generous 30 s waits below.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bottender.sessions.redis import RedisStore
from tests.fixtures.servers import RedisProcess
from tests.fixtures.waiting import until

LEASE = 60.0
GENEROUS = 30.0


class CuttableProxy:
    """127.0.0.1:port -> Redis, until ``cut()``; ``restore()`` lets connections in again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.up = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.up = False
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    def restore(self) -> None:
        self.up = True

    async def stop(self) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def proxy(redis_process: RedisProcess) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(redis_process.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def lock_key_exists(redis_process: RedisProcess, key: str) -> bool:
    redis = Redis.from_url(redis_process.url)
    try:
        return bool(await redis.exists(f"bottender:lock:{key}"))
    finally:
        await redis.aclose()


async def test_a_release_lost_in_an_outage_is_retried_when_the_store_returns(
    proxy: CuttableProxy, redis_process: RedisProcess
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", lock_lease=LEASE)
    await store.open()
    try:
        async with store.lock("telegram:1"):
            assert await lock_key_exists(redis_process, "telegram:1")
            proxy.cut()
        # The release failed: the lock is still in Redis, its lease far from over.
        assert await lock_key_exists(redis_process, "telegram:1")
        proxy.restore()

        async def released() -> bool:
            return not await lock_key_exists(redis_process, "telegram:1")

        await until(released, "the lost release to be retried", timeout=GENEROUS)
        # And the session can be locked again at once, not after the 60 s lease.
        async with asyncio.timeout(GENEROUS), store.lock("telegram:1"):
            pass
    finally:
        await store.close()


async def test_the_retries_end_with_the_lease_when_the_store_never_returns(
    proxy: CuttableProxy,
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", lock_lease=1.0)
    await store.open()
    try:
        async with store.lock("telegram:2"):
            proxy.cut()
        assert store._releasing, "a failed release is retried in the background"

        async def gave_up() -> bool:
            return not store._releasing

        await until(gave_up, "the retries to end with the lease", timeout=GENEROUS)
    finally:
        await store.close()
