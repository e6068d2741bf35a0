"""The gateway's side of the durable inbox: when it answers, what it writes first.

A bot held at a gate stands for one slower than the deadline; the file store's
inbox (a directory) shows what was written. Processes dying is the chaos test's
business (test_inbox_chaos.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.bots import GATE, PROBE
from tests.fixtures.waiting import wait_for
from tests.server.conftest import TelegramBot
from tests.server.updates import text_update


@pytest.fixture(autouse=True)
def gate() -> Iterator[None]:
    GATE.clear()
    yield
    GATE.set()


def inbox_files(tmp_path: Path) -> list[str]:
    directory = tmp_path / "sessions" / "inbox"
    return [n for n in directory.iterdir() if n.suffix == ".entry"] if directory.exists() else []


@pytest.fixture
def gated_bot(telegram_bot, fake_platform, tmp_path: Path) -> Callable[..., TelegramBot]:
    def start(
        *, ack: str = "deadline", driver: str = "file", deadline: float = 0.05, **server: object
    ) -> TelegramBot:
        stores = {"file": {"dirname": str(tmp_path / "sessions")}, "memory": {}}
        return telegram_bot(
            "tests.bots:gated",
            session={"driver": driver, "stores": {driver: stores[driver]}},
            channels={
                "telegram": {
                    "enabled": True,
                    "access_token": "123:TEST",
                    "origin": fake_platform.origin,
                    "deadline": deadline,
                    "ack": ack,
                }
            },
            **({"server": server} if server else {}),
        )

    return start


def test_an_event_past_its_deadline_is_in_the_inbox_until_its_session_is_written(
    gated_bot, tmp_path: Path
) -> None:
    bot = gated_bot()

    reply = bot.post(text_update(1, "hi"))

    assert reply.status == 200
    assert len(inbox_files(tmp_path)) == 1  # written before the 200
    stats = bot.live.gateway.dispatcher.stats
    assert (stats.written, stats.pending) == (1, 1)
    GATE.set()
    wait_for(lambda: not inbox_files(tmp_path), "the entry to be removed")
    assert bot.state() == {"count": 1}
    assert (stats.pending, stats.completed) == (0, 1)


def test_an_event_done_within_its_deadline_never_touches_the_inbox(
    gated_bot, tmp_path: Path
) -> None:
    GATE.set()
    bot = gated_bot(deadline=30.0)

    assert bot.say("hi") == ["Count: 1"]  # answered once done
    assert bot.live.gateway.dispatcher.stats.written == 0
    assert inbox_files(tmp_path) == []


def test_the_answer_is_503_when_the_inbox_cannot_be_written(gated_bot, tmp_path: Path) -> None:
    bot = gated_bot()
    (tmp_path / "sessions" / "inbox").write_text("not a directory")  # the inbox is broken

    reply = bot.post(text_update(1, "hi"))

    assert reply.status == 503
    assert bot.live.gateway.dispatcher.stats.write_failures == 1
    # The event still finishes here; the platform's redelivery is then skipped.
    GATE.set()
    wait_for(lambda: bot.state() == {"count": 1}, "the event")
    assert bot.post(text_update(1, "hi")).status == 200
    wait_for(lambda: not bot.live.gateway.background, "the redelivery")
    assert bot.state() == {"count": 1}


def test_past_its_bound_the_gateway_answers_503(gated_bot) -> None:
    bot = gated_bot(inbox_max_pending=1)

    assert bot.post(text_update(1, "hi", chat_id=1)).status == 200
    refused = bot.post(text_update(2, "hi", chat_id=2))

    assert refused.status == 503
    assert refused.json()["error"] == "too many events pending; retry later"
    assert bot.live.gateway.dispatcher.stats.refused == 1
    GATE.set()
    wait_for(lambda: bot.live.gateway.dispatcher.pending == 0, "the first event")
    assert bot.post(text_update(2, "hi", chat_id=2)).status == 200  # the platform's retry


def test_ack_immediate_answers_once_the_inbox_has_the_event(gated_bot, tmp_path: Path) -> None:
    bot = gated_bot(ack="immediate")

    reply = bot.post(text_update(1, "hi"))

    assert reply.status == 200
    assert len(inbox_files(tmp_path)) == 1
    wait_for(lambda: len(PROBE.seen) == 1, "the bot to start")  # it runs here, after the 200
    GATE.set()
    wait_for(lambda: not inbox_files(tmp_path), "the entry to be removed")
    assert bot.state() == {"count": 1}


def test_on_the_memory_store_ack_immediate_warns_at_start_up(gated_bot, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="bottender.dispatch")

    bot = gated_bot(ack="immediate", driver="memory")

    assert "the memory store has no durable inbox" in caplog.text
    assert bot.post(text_update(1, "hi")).status == 200  # answered at once, run in-process
    GATE.set()
    wait_for(lambda: bot.state() == {"count": 1}, "the event")


def leave_behind(tmp_path: Path, body: bytes) -> None:
    """An entry held by a process that then died."""
    import asyncio

    from bottender.sessions.base import InboxEntry
    from bottender.sessions.file import FileStore

    async def write() -> None:
        store = FileStore(str(tmp_path / "sessions"))
        await store.open()
        inbox = store.inbox()
        await inbox.put(InboxEntry("left-behind", "telegram", body), owner="d" * 32)
        await store.close()  # its lock goes, as a dead process's would

    asyncio.run(write())


def test_a_gateway_that_starts_runs_what_a_dead_process_left_in_the_inbox(
    gated_bot, tmp_path: Path
) -> None:
    import orjson

    leave_behind(tmp_path, orjson.dumps(text_update(1, "hi")))
    GATE.set()

    bot = gated_bot()

    wait_for(lambda: not inbox_files(tmp_path), "the entry to be run")
    assert bot.state() == {"count": 1}
    assert bot.replies() == ["Count: 1"]
    assert bot.live.gateway.dispatcher.stats.recovered == 1


def test_an_entry_that_is_no_webhook_body_is_logged_and_removed(
    gated_bot, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger="bottender.dispatch")
    leave_behind(tmp_path, b"{not json")

    gated_bot()

    wait_for(lambda: not inbox_files(tmp_path), "the entry to be removed")
    assert "inbox entry left-behind is not a telegram body" in caplog.text
