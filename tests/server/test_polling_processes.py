"""Long polling as real ``bottender start --polling`` processes against the fake Bot API.

A crash (SIGKILL) mid-burst loses no update and runs none twice; SIGTERM
finishes the update in flight and exits 0; two processes on one redis store
poll one at a time, the second taking over once the first is killed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bottender.sessions.file import FileStore
from bottender.sessions.redis import RedisStore
from tests.fixtures.gateway import write_config
from tests.fixtures.tunnels import Bottender, free_port, standin_env
from tests.fixtures.waiting import wait_for
from tests.server.conftest import PROJECT_ENV
from tests.server.updates import text_update

TOKEN = "333:CCC-process"
BURST = 60


def config(tmp_path: Path, origin: str, app: str, session: dict[str, Any], **channels: Any) -> Path:
    telegram = {"enabled": True, "access_token": TOKEN, "origin": origin, "poll_timeout": 1}
    return write_config(
        tmp_path,
        app=app,
        initial_state={"count": 0},
        session=session,
        channels={"telegram": telegram, **channels},
    )


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Bottender]]:
    started: list[Bottender] = []

    def run(*args: str) -> Bottender:
        env = {k: v for k, v in standin_env().items() if k not in PROJECT_ENV}
        process = Bottender(
            ["start", "--polling", "--host", "127.0.0.1", "--port", str(free_port()), *args],
            cwd=tmp_path,
            env=env,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()


def queue(fake_platform, count: int, chat_id: int = 7) -> None:
    updates = [text_update(0, "hi", chat_id=chat_id) for _ in range(count)]
    for update in updates:
        del update["update_id"]
    fake_platform.queue_updates(TOKEN, *updates)


def sent(fake_platform) -> list[str]:
    return fake_platform.texts(f"/bot{TOKEN}/sendMessage")


def test_a_crash_mid_burst_loses_nothing_and_runs_nothing_twice(tmp_path, fake_platform, start):
    sessions = tmp_path / "sessions"
    path = config(
        tmp_path,
        fake_platform.origin,
        "tests.server.channel_bots:paced_counter",
        {"driver": "file", "stores": {"file": {"dirname": str(sessions)}}},
    )
    queue(fake_platform, BURST)
    first = start("--config", str(path))
    wait_for(lambda: len(sent(fake_platform)) >= 15, "a third of the burst", timeout=60)
    first.signal(signal.SIGKILL)
    first.wait()
    assert len(sent(fake_platform)) < BURST, "the crash must come mid-burst"

    start("--config", str(path))
    wait_for(lambda: fake_platform.bot(TOKEN).updates == [], "every update confirmed", timeout=60)
    wait_for(lambda: f"Count: {BURST}" in sent(fake_platform), "the last count", timeout=60)

    async def count() -> int:
        store = FileStore(dirname=str(sessions))
        await store.open()
        try:
            session = await store.read("telegram:7")
            return session.state["count"]
        finally:
            await store.close()

    assert asyncio.run(count()) == BURST  # every update counted exactly once
    texts = sent(fake_platform)
    assert sorted(set(texts), key=lambda t: int(t.split()[1])) == [
        f"Count: {n}" for n in range(1, BURST + 1)
    ]
    # Only the update inside the bot when the process died may have been answered twice.
    assert len(texts) - BURST <= 1


def test_sigterm_finishes_the_update_in_flight_and_exits_0(tmp_path, fake_platform, start):
    sessions = tmp_path / "sessions"
    path = config(
        tmp_path,
        fake_platform.origin,
        "tests.server.channel_bots:slow_counter",
        {"driver": "file", "stores": {"file": {"dirname": str(sessions)}}},
    )
    process = start("--config", str(path))
    fake_platform.queue_updates(TOKEN, {"message": text_update(0, "one")["message"]})
    wait_for(lambda: sent(fake_platform) == ["started one"], "the bot at work", timeout=60)
    process.signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert sent(fake_platform) == ["started one", "Count: 1"]
    assert fake_platform.bot(TOKEN).updates == []  # confirmed on the way out


def test_line_channels_are_skipped_with_a_message(tmp_path, fake_platform, start):
    line = {"enabled": True, "access_token": "L", "channel_secret": "S", "origin": "http://x"}
    path = config(tmp_path, fake_platform.origin, "tests.bots:counter", {}, line=line)
    fake_platform.bot(TOKEN).webhook = "https://old.example.com/hook"
    process = start("--config", str(path))
    process.wait_output("LINE channel 'line' skipped")
    process.wait_output("webhook of channel 'telegram' deleted", stream="stderr")
    queue(fake_platform, 2)
    wait_for(lambda: sent(fake_platform) == ["Count: 1", "Count: 2"], "two counts", timeout=60)


def test_two_processes_on_redis_poll_one_at_a_time_and_take_over(
    tmp_path, fake_platform, start, redis_server
):
    prefix = f"polling-{time.time_ns()}:"
    store = {"url": redis_server, "prefix": prefix, "lock_lease": 2}
    path = config(
        tmp_path,
        fake_platform.origin,
        "tests.bots:counter",
        {"driver": "redis", "stores": {"redis": store}},
    )
    first = start("--config", str(path))
    first.wait_output("channel telegram: polling for updates", stream="stderr")
    second = start("--config", str(path))
    second.wait_output("waiting for the polling lease", stream="stderr")
    queue(fake_platform, 5)
    wait_for(lambda: len(sent(fake_platform)) == 5, "five counts", timeout=60)
    # A reply goes out before its session is written: killed before the confirmation,
    # the last update would run again (at least once; the crash test covers that).
    wait_for(lambda: fake_platform.bot(TOKEN).updates == [], "the five confirmed", timeout=60)
    assert "polling for updates" not in second.stderr  # standing by
    # Never two pollers at once. (A bare "409" may be in a random inbox owner id.)
    assert "409 Conflict" not in first.stderr + second.stderr

    first.signal(signal.SIGKILL)
    first.wait()
    queue(fake_platform, 5)
    second.wait_output("channel telegram: polling for updates", 30, stream="stderr")
    wait_for(lambda: len(sent(fake_platform)) == 10, "ten counts", timeout=60)
    assert sent(fake_platform) == [f"Count: {n}" for n in range(1, 11)]

    async def count() -> int:
        redis = RedisStore(redis_server, prefix=prefix)
        await redis.open()
        try:
            return (await redis.read("telegram:7")).state["count"]
        finally:
            await redis.close()

    assert asyncio.run(count()) == 10


def test_dev_polling_opens_no_tunnel_and_counts(tmp_path, fake_platform):
    line = {"enabled": True, "access_token": "L", "channel_secret": "S", "origin": "http://x"}
    config(tmp_path, fake_platform.origin, "tests.bots:counter", {}, line=line)
    env = {k: v for k, v in standin_env(TUNNEL_RECORD=str(tmp_path / "t.json")).items()}
    env = {k: v for k, v in env.items() if k not in PROJECT_ENV}
    dev = Bottender(["dev", "--polling", "--port", str(free_port())], cwd=tmp_path, env=env)
    try:
        dev.wait_output("LINE channel 'line' skipped")
        dev.wait_output("Polling for updates (no tunnel)")
        queue(fake_platform, 1)
        wait_for(lambda: sent(fake_platform) == ["Count: 1"], "a count", timeout=60)
        assert not (tmp_path / "t.json").exists()  # no tunnel program was started
        assert fake_platform.calls_to("/setWebhook") == []
    finally:
        dev.stop()
