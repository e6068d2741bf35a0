"""Several gateway processes sharing one store lose no update of a shared chat.

Three real ``bottender start`` processes, one store (file, Redis or MongoDB),
150 simultaneous updates of one Telegram chat spread over them: the count must
end at exactly 150, with 150 distinct replies; and redelivered, each to another
process, none of them runs twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bottender.sessions.session import HANDLED_LIMIT
from tests.fixtures.gateway import write_config
from tests.fixtures.redis_ha import SERVICE
from tests.fixtures.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3
UPDATES = 150
CHAT_ID = 4242
OTHER_CHAT = 4343
REDELIVERED = 30
assert REDELIVERED <= HANDLED_LIMIT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def telegram_update(update_id: int, chat_id: int = CHAT_ID) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"},
            "text": "hi",
        },
    }


@pytest.fixture
def start_gateways(tmp_path: Path) -> Iterator:
    processes: list[subprocess.Popen[bytes]] = []

    def start(config: Path, count: int) -> list[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        urls = []
        for index in range(count):
            port = free_port()
            log = (tmp_path / f"gateway-{index}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [
                        *(
                            sys.executable,
                            "-m",
                            "bottender.server.cli",
                            "start",
                            "--config",
                            str(config),
                        ),
                        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                    ],
                    cwd=tmp_path,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        return urls

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gateway at {url} exited with {process.returncode}", pytrace=False)
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"gateway at {url} never became healthy", pytrace=False)


async def post_all(
    urls: list[str], update_ids: range, *, chat_id: int = CHAT_ID, shift: int = 0
) -> list[int]:
    """Post the updates at once, spread over the processes (``shift`` moves each to another)."""
    async with aiohttp.ClientSession() as http:

        async def post(update_id: int) -> int:
            url = urls[(update_id + shift) % len(urls)] + "/webhooks/telegram"
            body = telegram_update(update_id, chat_id)
            async with http.post(url, json=body) as response:
                return response.status

        return await asyncio.gather(*(post(i) for i in update_ids))


def store_options(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict:
    """The store config of a backend: a driver, on a Redis Cluster or Sentinel for redis-*."""
    if backend == "file":
        return {"dirname": str(tmp_path / "sessions")}
    prefix = f"multiproc-{time.time_ns()}:"
    if backend == "redis":
        return {"url": request.getfixturevalue("redis_server"), "prefix": prefix}
    if backend == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        return {"url": cluster.url, "cluster": True, "prefix": prefix}
    if backend == "redis-sentinel":
        sentinel = request.getfixturevalue("redis_sentinel")
        return {"sentinels": sentinel.addresses, "service_name": SERVICE, "prefix": prefix}
    url = request.getfixturevalue("mongo_server").rstrip("/")
    return {"url": f"{url}/multiproc{time.time_ns()}"}


@pytest.mark.parametrize("backend", ["file", "redis", "redis-cluster", "redis-sentinel", "mongo"])
def test_three_processes_share_one_chat_without_losing_an_update(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, fake_platform, start_gateways
) -> None:
    driver = backend.partition("-")[0]
    config = write_config(
        tmp_path,
        app="tests.bots:counter",
        initial_state={"count": 0},
        session={"driver": driver, "stores": {driver: store_options(backend, tmp_path, request)}},
        channels={
            "telegram": {"enabled": True, "access_token": "T", "origin": fake_platform.origin}
        },
    )
    urls = start_gateways(config, PROCESSES)

    statuses = asyncio.run(post_all(urls, range(1, UPDATES + 1)))

    assert statuses == [200] * UPDATES
    wait_for(lambda: len(fake_platform.texts()) >= UPDATES, "the replies", timeout=60)
    texts = fake_platform.texts()
    assert sorted(texts) == sorted(f"Count: {n}" for n in range(1, UPDATES + 1))
    chat_ids = {call.json["chat_id"] for call in fake_platform.calls_to("/sendMessage")}
    assert chat_ids == {CHAT_ID}

    # Another chat's updates, each redelivered to a process other than the one that
    # handled it (a session remembers its last HANDLED_LIMIT delivery ids): all are
    # acknowledged, none runs twice.
    again = range(UPDATES + 1, UPDATES + 1 + REDELIVERED)
    assert asyncio.run(post_all(urls, again, chat_id=OTHER_CHAT)) == [200] * REDELIVERED
    assert asyncio.run(post_all(urls, again, chat_id=OTHER_CHAT, shift=1)) == [200] * REDELIVERED
    # A Telegram update is answered once its session is written, after its reply was sent
    # (unless past the channel's 20 s deadline, hence the wait): a redelivery that ran
    # again would have sent its reply before its 200 came back.
    wait_for(lambda: len(fake_platform.texts()) >= UPDATES + REDELIVERED, "the replies", timeout=60)
    other = [c.json["text"] for c in fake_platform.calls_to("/sendMessage")][UPDATES:]
    assert sorted(other) == sorted(f"Count: {n}" for n in range(1, REDELIVERED + 1))
