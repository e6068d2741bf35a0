"""Backends for the session tests: the contract suite runs once per driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.redis_ha import SERVICE
from tests.sessions.drivers import (
    DRIVERS,
    Backend,
    FakeClock,
    FileBackend,
    MemoryBackend,
    MongoBackend,
    RedisBackend,
    RedisClusterBackend,
    RedisSentinelBackend,
)


def _backend(driver: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if driver == "memory":
        return MemoryBackend()
    if driver == "file":
        return FileBackend(tmp_path / "sessions")
    if driver == "redis":
        return RedisBackend(request.getfixturevalue("redis_server"))
    if driver == "redis-cluster":
        return RedisClusterBackend(request.getfixturevalue("redis_cluster").url)
    if driver == "redis-sentinel":
        sentinel = request.getfixturevalue("redis_sentinel")
        return RedisSentinelBackend(sentinel.addresses, SERVICE)
    return MongoBackend(request.getfixturevalue("mongo_server"))


@pytest.fixture(params=DRIVERS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = _backend(request.param, request, tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
async def file_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = _backend("file", request, tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
async def redis_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = _backend("redis", request, tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
async def mongo_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = _backend("mongo", request, tmp_path)
    yield made
    await made.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
