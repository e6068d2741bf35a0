"""Telegram long polling in-process: the real gateway, runtime and store, a fake Bot API.

The fake (tests/fixtures/platform_api.py) serves getUpdates from a queue as the
Bot API does: ``offset`` confirms, ``timeout`` holds the call, ``allowed_updates``
filters, a webhook or a second poller is a 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from bottender.connectors.telegram import UPDATE_KINDS
from bottender.server.app import Gateway
from bottender.server.config import load_config
from bottender.server.polling import FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS, backoff_delays
from tests.fixtures.gateway import write_config
from tests.fixtures.platform_api import FakePlatform
from tests.fixtures.waiting import until
from tests.server import channel_bots
from tests.server.updates import text_update

TOKEN = "111:AAA-polling"
OTHER_TOKEN = "222:BBB-polling"


def telegram(origin: str, token: str = TOKEN, **options: Any) -> dict[str, Any]:
    return {"enabled": True, "access_token": token, "origin": origin, "poll_timeout": 1, **options}


@contextlib.asynccontextmanager
async def polling(
    tmp_path: Path, channels: dict, app: str = "tests.bots:counter", **names: Any
) -> AsyncIterator[Gateway]:
    config = load_config(
        write_config(tmp_path, app=app, initial_state={"count": 0}, channels=channels, **names)
    )
    gateway = Gateway(config, polling=True)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def texts(platform: FakePlatform, token: str = TOKEN) -> list[str]:
    return platform.texts(f"/bot{token}/sendMessage")


def queue_texts(platform: FakePlatform, token: str, words: list[str], chat_id: int = 7) -> None:
    """Queue text updates, numbered by the fake from 1 per bot."""
    updates = [text_update(0, word, chat_id=chat_id) for word in words]
    platform.queue_updates(
        token, *({k: v for k, v in u.items() if k != "update_id"} for u in updates)
    )


async def test_the_counting_bot_counts_over_polling_and_the_webhook_is_deleted_first(
    tmp_path, fake_platform, caplog
):
    caplog.set_level(logging.INFO, "bottender")
    fake_platform.bot(TOKEN).webhook = "https://old.example.com/webhooks/telegram"
    fake_platform.queue_updates(TOKEN, *(text_update(i, "hi") for i in range(1, 11)))
    async with polling(tmp_path, {"telegram": telegram(fake_platform.origin)}) as gateway:
        await until(lambda: len(texts(fake_platform)) == 10, "ten counts")
        assert texts(fake_platform) == [f"Count: {n}" for n in range(1, 11)]
        await until(lambda: fake_platform.bot(TOKEN).updates == [], "every update confirmed")
        assert (await gateway.store.read("telegram:7")).state == {"count": 10}
    assert fake_platform.bot(TOKEN).webhook == ""
    assert any("deleted (https://old.example.com" in r.getMessage() for r in caplog.records)
    polls = [c.json for c in fake_platform.calls_to(f"/bot{TOKEN}/getUpdates")]
    assert polls[0]["allowed_updates"] == list(UPDATE_KINDS) and polls[0]["timeout"] == 1
    offsets = [p.get("offset") for p in polls if p.get("offset") is not None]
    assert offsets == sorted(offsets) and offsets[-1] == 11  # only ever forward, past the last


async def test_two_bots_polled_by_one_gateway_keep_their_sessions_and_tokens(
    tmp_path, fake_platform
):
    channels = {
        "telegram": telegram(fake_platform.origin),
        "support": {"platform": "telegram", **telegram(fake_platform.origin, OTHER_TOKEN)},
    }
    # The same chat and the same update ids on both bots: neither may skip the other's.
    queue_texts(fake_platform, TOKEN, ["a", "b", "c"])
    queue_texts(fake_platform, OTHER_TOKEN, ["x", "y"])
    async with polling(tmp_path, channels, app="tests.server.channel_bots:channel_counter") as gw:
        await until(lambda: len(texts(fake_platform)) == 3, "three counts")
        await until(
            lambda: len(texts(fake_platform, OTHER_TOKEN)) == 2, "two counts of the other bot"
        )
        assert texts(fake_platform) == ["telegram 1", "telegram 2", "telegram 3"]
        assert texts(fake_platform, OTHER_TOKEN) == ["support 1", "support 2"]
        assert (await gw.store.read("telegram:7")).state == {"count": 3}
        assert (await gw.store.read("support:7")).state == {"count": 2}


async def test_stopping_cuts_the_long_poll_but_finishes_the_update_in_flight(
    tmp_path, fake_platform
):
    channel_bots.STARTED.clear()
    channels = {"telegram": telegram(fake_platform.origin, poll_timeout=30)}
    async with polling(tmp_path, channels, app="tests.server.channel_bots:slow_counter") as gw:
        queue_texts(fake_platform, TOKEN, ["one"])
        await until(lambda: channel_bots.STARTED == ["one"], "the bot at work")
        await gw.stop()  # while the bot works, and with a 30 s long poll to cut
        assert texts(fake_platform) == ["started one", "Count: 1"]
        assert (await gw.store.read("telegram:7")).state == {"count": 1}


async def test_a_webhook_set_meanwhile_is_explained_in_one_line_and_polling_resumes(
    tmp_path, fake_platform, caplog
):
    caplog.set_level(logging.INFO, "bottender")
    async with polling(tmp_path, {"telegram": telegram(fake_platform.origin)}) as gateway:
        await until(
            lambda: gateway.pollers[0].polling and fake_platform.calls_to("/getUpdates"),
            "the first poll",
        )
        fake_platform.bot(TOKEN).webhook = "https://someone.example.com/hook"
        queue_texts(fake_platform, TOKEN, ["hi"])
        await until(
            lambda: any("409 Conflict" in r.getMessage() for r in caplog.records),
            "the 409 logged",
        )
        [line] = [r.getMessage() for r in caplog.records if "409 Conflict" in r.getMessage()][:1]
        assert "a webhook was set meanwhile, or another process polls this bot" in line
        assert "\n" not in line and TOKEN not in line
        fake_platform.bot(TOKEN).webhook = ""
        await until(lambda: texts(fake_platform) == ["Count: 1"], "the count")


async def test_network_errors_back_off_then_polling_recovers(tmp_path, fake_platform, caplog):
    caplog.set_level(logging.INFO, "bottender")
    down = (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    fake_platform.answer(f"/bot{TOKEN}/getUpdates", down)
    queue_texts(fake_platform, TOKEN, ["hi"])
    async with polling(tmp_path, {"telegram": telegram(fake_platform.origin)}):
        await until(lambda: len(fake_platform.calls_to("/getUpdates")) >= 2, "a retried poll")
        retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
        assert retries and "Bad Gateway" in retries[0]
        fake_platform.answers.clear()  # the platform is back
        await until(lambda: texts(fake_platform) == ["Count: 1"], "the count")


def test_backoff_doubles_from_one_second_to_thirty_with_jitter():
    delays = backoff_delays()
    drawn = [next(delays) for _ in range(8)]
    for delay, base in zip(drawn, [1, 2, 4, 8, 16, 30, 30, 30], strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    assert (FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS) == (1.0, 30.0)
    assert len({round(next(backoff_delays()), 6) for _ in range(20)}) > 1  # jittered


async def test_line_channels_are_not_polled(tmp_path, fake_platform):
    line = {
        "enabled": True,
        "access_token": "L",
        "channel_secret": "S",
        "origin": fake_platform.origin,
        "bot_user_id": "Ubot",
    }
    channels = {"line": line, "telegram": telegram(fake_platform.origin)}
    async with polling(tmp_path, channels) as gateway:
        assert [c.channel for c in gateway.connectors] == ["telegram"]
        assert [p.name for p in gateway.pollers] == ["telegram"]


@pytest.fixture(autouse=True)
def _no_leftover_started() -> None:
    channel_bots.STARTED.clear()


async def test_an_update_whose_session_cannot_be_written_is_not_confirmed_and_runs_later(
    tmp_path, fake_platform, redis_process, caplog
):
    caplog.set_level(logging.INFO, "bottender")
    session = {"driver": "redis", "stores": {"redis": {"url": redis_process.url}}}
    channels = {"telegram": telegram(fake_platform.origin)}
    async with polling(tmp_path, channels, session=session):
        queue_texts(fake_platform, TOKEN, ["before"])
        await until(lambda: fake_platform.bot(TOKEN).updates == [], "the update written, confirmed")
        assert texts(fake_platform) == ["Count: 1"]

        await asyncio.to_thread(redis_process.kill)
        queue_texts(fake_platform, TOKEN, ["during"], chat_id=8)
        await until(
            lambda: any(
                "session store failed on update 2" in r.getMessage() for r in caplog.records
            ),
            "the store failure logged",
        )
        assert [u["update_id"] for u in fake_platform.bot(TOKEN).updates] == [2]  # kept
        assert texts(fake_platform) == ["Count: 1"]

        await asyncio.to_thread(redis_process.start)
        await until(
            lambda: texts(fake_platform) == ["Count: 1", "Count: 1"], "chat 8's first count"
        )
        await until(lambda: fake_platform.bot(TOKEN).updates == [], "the update confirmed")


class Snapshots(logging.Handler):
    """What the fake platform had seen at the moment each matching log line was written."""

    def __init__(self, platform: FakePlatform, needle: str) -> None:
        super().__init__(logging.INFO)
        self.platform, self.needle = platform, needle
        self.taken: list[tuple[int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            polls = len(self.platform.calls_to(f"/bot{TOKEN}/getUpdates"))
            self.taken.append((polls, len(texts(self.platform))))


async def test_a_poller_whose_lease_is_taken_stops_polling_and_takes_it_back_later(
    tmp_path, fake_platform, redis_server, caplog
):
    """Another process holding the lease means Telegram would 409 one of two pollers."""
    caplog.set_level(logging.INFO, "bottender")
    prefix = f"polling-lease-{uuid.uuid4().hex[:8]}:"
    stores = {"redis": {"url": redis_server, "prefix": prefix, "lock_lease": 1.5}}
    # One long poll at a time, held for 30 s: any getUpdates after it is a new decision.
    channels = {"telegram": telegram(fake_platform.origin, poll_timeout=30)}
    resumed = Snapshots(fake_platform, "polling for updates")
    logging.getLogger("bottender.polling").addHandler(resumed)
    thief = redis.asyncio.Redis.from_url(redis_server)
    try:
        async with polling(tmp_path, channels, session={"driver": "redis", "stores": stores}):
            await until(lambda: len(fake_platform.calls_to("/getUpdates")) == 1, "the first poll")

            # Another process takes the lease (this one stalled past it, say) and holds it 2 s.
            lease = f"{prefix}lock:poller:telegram-bot:{TOKEN.split(':')[0]}"
            assert await thief.set(lease, "another-process", px=2000, xx=True)
            await until(
                lambda: any("took the polling lease" in r.getMessage() for r in caplog.records),
                "the lost lease logged",
            )
            queue_texts(fake_platform, TOKEN, ["while stolen"])

            # Back once the thief's lease ran out: the update waited for it.
            await until(lambda: texts(fake_platform) == ["Count: 1"], "the update run")
    finally:
        logging.getLogger("bottender.polling").removeHandler(resumed)
        await thief.aclose()
    # When polling resumed, nothing had been fetched nor run since the cut long poll.
    assert resumed.taken == [(0, 0), (1, 0)]
    lost = [r for r in caplog.records if "took the polling lease" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelname == "WARNING"
    assert "stopped polling" in lost[0].getMessage()
    assert not [r for r in caplog.records if "409" in r.getMessage()]
    assert not [r for r in caplog.records if "lost the lock" in r.getMessage()]  # one line only
