"""bot.conversation(...) in one process and webhook events of the same session in another,
over one shared store: every event and every conversation change counts, none is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bottender import Bot
from tests.fixtures.gateway import write_config
from tests.fixtures.waiting import wait_for
from tests.server.test_multiprocess import (  # noqa: F401 - start_gateways is a fixture
    CHAT_ID,
    post_all,
    start_gateways,
    store_options,
)

EVENTS = 100
CONVERSATIONS = 40


async def conversations(bot: Bot, count: int) -> None:
    async def one() -> None:
        async with bot.conversation(f"telegram:{CHAT_ID}") as context:
            seen = context.state["count"]
            await asyncio.sleep(0)  # let anything that could interleave do so
            context.set_state({"count": seen + 1, "paid": context.state.get("paid", 0) + 1})
            await context.send_text(f"Count: {seen + 1}")

    await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.parametrize("driver", ["file", "redis"])
def test_conversations_and_events_of_one_session_across_two_processes_lose_nothing(
    driver: str, tmp_path: Path, request: pytest.FixtureRequest, fake_platform
) -> None:
    config = write_config(
        tmp_path,
        app="examples.counter:app",
        initial_state={"count": 0},
        session={"driver": driver, "stores": {driver: store_options(driver, tmp_path, request)}},
        channels={
            "telegram": {"enabled": True, "access_token": "T", "origin": fake_platform.origin}
        },
    )
    (url,) = request.getfixturevalue("start_gateways")(config, 1)

    async def both() -> tuple[list[int], dict]:
        async with Bot.from_config(config) as bot:
            statuses, _ = await asyncio.gather(
                post_all([url], range(1, EVENTS + 1)), conversations(bot, CONVERSATIONS)
            )
            session = await bot.store.read(f"telegram:{CHAT_ID}")
        return statuses, session.state

    statuses, state = asyncio.run(both())

    assert statuses == [200] * EVENTS
    assert state == {"count": EVENTS + CONVERSATIONS, "paid": CONVERSATIONS}
    wait_for(
        lambda: len(fake_platform.texts()) >= EVENTS + CONVERSATIONS, "every reply", timeout=60
    )
    texts = fake_platform.texts()
    assert sorted(texts) == sorted(f"Count: {n}" for n in range(1, EVENTS + CONVERSATIONS + 1))
