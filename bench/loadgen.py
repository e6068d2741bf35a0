"""A small built-in load generator: the fallback when wrk is missing, and the
exact-count driver of the memory-growth phase.

It sends the same bodies as the wrk scripts (bench/wrk/*.lua) over keep-alive
connections, ``connections`` requests in flight, and reports the same numbers
wrk's report() does. It is far slower than wrk (it is Python, on the same
event-loop machinery as the servers it measures), so its requests/s bound what
it can show; the bench says which generator produced each number.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp

from bench.payloads import telegram_update

Body = tuple[bytes, dict[str, str]]


def telegram_bodies(
    *, base: int, chats: int = 1000, hot_chat: int = 0, chat_ids: Iterator[int] | None = None
) -> Iterator[Body]:
    """Unique update_ids; chats spread at random, one hot chat, or the given ids in order."""
    rng = random.Random(base)
    headers = {"Content-Type": "application/json"}
    update_id = base
    while True:
        update_id += 1
        if chat_ids is not None:
            chat = next(chat_ids)
        else:
            chat = hot_chat or rng.randint(1, chats)
        yield telegram_update(update_id, chat), headers


def line_bodies(path: str) -> Iterator[Body]:
    with open(path, "rb") as file:
        lines = file.read().splitlines()
    while True:
        for line in lines:
            signature, _, body = line.partition(b"\t")
            yield body, {"Content-Type": "application/json", "X-Line-Signature": signature.decode()}


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(
    url: str,
    bodies: Iterator[Body],
    *,
    connections: int = 64,
    duration: float | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Send until ``duration`` seconds passed or ``total`` requests were sent."""
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    sent = 0
    started = time.perf_counter()
    deadline = started + duration if duration is not None else float("inf")

    def take() -> Body | None:
        nonlocal sent
        if time.perf_counter() >= deadline or (total is not None and sent >= total):
            return None
        sent += 1
        return next(bodies)

    async def worker(session: aiohttp.ClientSession) -> None:
        while (item := take()) is not None:
            body, headers = item
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status >= 400:
                        errors["status"] += 1
            except TimeoutError:
                errors["timeout"] += 1
                continue
            except aiohttp.ClientError:
                errors["read"] += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1e6)

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "sent": sent,
        "wraps": 0,
        "errors": errors,
        "latency_us": {
            "p50": _percentile(latencies, 50),
            "p90": _percentile(latencies, 90),
            "p99": _percentile(latencies, 99),
            "max": latencies[-1] if latencies else 0.0,
            "mean": sum(latencies) / len(latencies) if latencies else 0.0,
        },
    }


def run_sync(url: str, bodies: Iterator[Body], **options: Any) -> dict[str, Any]:
    runner: Callable[..., Any] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        pass
    return runner(run(url, bodies, **options))
