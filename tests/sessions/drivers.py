"""One way to build, inspect and clean up each driver, so the contract suite is written once.

A backend hands out stores that share one namespace (a directory, a key
prefix, a collection), the way several processes of one bot share a store;
``shared`` says whether two stores really see each other's data (the memory
driver's do not).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from bottender.sessions.base import SessionStore
from bottender.sessions.file import FileStore
from bottender.sessions.memory import MemoryStore
from bottender.sessions.mongo import MongoStore
from bottender.sessions.redis import RedisStore

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ["memory", "file", "redis", "redis-cluster", "redis-sentinel", "mongo"]


class FakeClock:
    """Time that moves only when a test says so; it starts at the real time because
    servers sweep their TTL indexes by their own clock."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend:
    driver = ""
    shared = True

    def __init__(self) -> None:
        self.stores: list[SessionStore] = []

    def options(self) -> dict[str, Any]:
        """Constructor arguments that put a store in this backend's namespace."""
        raise NotImplementedError

    def build(self, **overrides: Any) -> SessionStore:
        raise NotImplementedError

    async def make(self, **overrides: Any) -> SessionStore:
        store = self.build(**overrides)
        await store.open()
        self.stores.append(store)
        return store

    async def lock_residue(self) -> list[str]:
        """Whatever locks left behind in the backend; empty once every lock is released."""
        return []

    async def cleanup(self) -> None:
        for store in self.stores:
            await store.close()


class MemoryBackend(Backend):
    driver = "memory"
    shared = False

    def build(self, **overrides: Any) -> SessionStore:
        overrides.pop("lock_lease", None)
        return MemoryStore(**overrides)


class FileBackend(Backend):
    driver = "file"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def options(self) -> dict[str, Any]:
        return {"dirname": str(self.directory)}

    def build(self, **overrides: Any) -> SessionStore:
        return FileStore(**{**self.options(), **overrides})

    async def lock_residue(self) -> list[str]:
        locks = self.directory / "locks"
        leftovers = os.listdir(locks) if locks.exists() else []
        leftovers += [name for name in os.listdir(self.directory) if name.endswith(".tmp")]
        return leftovers


class RedisBackend(Backend):
    driver = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = f"test-{uuid.uuid4().hex[:12]}:"

    def options(self) -> dict[str, Any]:
        return {"url": self.url, "prefix": self.prefix}

    def build(self, **overrides: Any) -> SessionStore:
        return RedisStore(**{**self.options(), **overrides})

    def client(self) -> Redis | RedisCluster:
        """A plain client on the same server(s), to look behind the store's back."""
        return Redis.from_url(self.url)

    async def keys(self, pattern: str = "*") -> list[bytes]:
        redis = self.client()
        try:
            return [key async for key in redis.scan_iter(match=self.prefix + pattern)]
        finally:
            await redis.aclose()

    async def lock_residue(self) -> list[str]:
        return [key.decode() for key in await self.keys("lock:*")]

    async def cleanup(self) -> None:
        await super().cleanup()
        keys = await self.keys()
        if keys:
            redis = self.client()
            try:
                for key in keys:  # one by one: on a Cluster they live in different slots
                    await redis.delete(key)
            finally:
                await redis.aclose()


class RedisClusterBackend(RedisBackend):
    """The redis driver on a 3-master Redis Cluster (keys hash-tagged by session)."""

    def options(self) -> dict[str, Any]:
        return {**super().options(), "cluster": True}

    def client(self) -> RedisCluster:
        return RedisCluster.from_url(self.url)


class RedisSentinelBackend(RedisBackend):
    """The redis driver on the master a set of sentinels watch."""

    def __init__(self, sentinels: list[list[Any]], service_name: str) -> None:
        super().__init__("")
        self.sentinels = sentinels
        self.service_name = service_name

    def options(self) -> dict[str, Any]:
        return {
            "sentinels": self.sentinels,
            "service_name": self.service_name,
            "prefix": self.prefix,
        }

    def client(self) -> Redis:
        return Sentinel([tuple(address) for address in self.sentinels]).master_for(
            self.service_name
        )


class MongoBackend(Backend):
    driver = "mongo"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.collection = f"test_{uuid.uuid4().hex[:12]}"

    def options(self) -> dict[str, Any]:
        return {"url": self.url, "collection_name": self.collection}

    def build(self, **overrides: Any) -> SessionStore:
        return MongoStore(**{**self.options(), **overrides})

    def client(self) -> AsyncMongoClient:
        return AsyncMongoClient(self.url, serverSelectionTimeoutMS=3000)

    async def lock_residue(self) -> list[str]:
        client = self.client()
        try:
            collection = client["bottender"][self.collection]
            return [doc["_id"] async for doc in collection.find({"lock_owner": {"$exists": True}})]
        finally:
            await client.close()

    async def cleanup(self) -> None:
        await super().cleanup()
        client = self.client()
        try:
            for name in (self.collection, f"{self.collection}_events"):
                await client["bottender"].drop_collection(name)
        finally:
            await client.close()


def start_worker(backend: Backend, *args: str, **overrides: Any) -> subprocess.Popen[str]:
    """Another process on the same store: ``python -m tests.sessions.worker``."""
    config = {"driver": backend.driver, **backend.options(), **overrides}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sessions.worker", repr(config), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def expect_line(worker: subprocess.Popen[str], wanted: str) -> None:
    assert worker.stdout is not None
    line = worker.stdout.readline().strip()
    assert line == wanted, f"worker said {line!r}, expected {wanted!r}"


def run_counters(backend: Backend, key: str, *, workers: int = 4, times: int = 25) -> None:
    """Several processes increment one session at once; returns when all are done."""
    processes = [start_worker(backend, "count", key, str(times)) for _ in range(workers)]
    try:
        for process in processes:
            expect_line(process, "ready")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            expect_line(process, "done")
            assert process.wait(timeout=30) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def stop_worker(worker: subprocess.Popen[str]) -> None:
    """Kill -9: the worker gets no chance to clean up, like a crashed process."""
    worker.kill()
    worker.wait()
