"""A Redis failover in the middle of a burst loses no update and doubles none.

Two gateways share the store; several Telegram chats talk to them at once. The
test plays Telegram: each chat sends its updates one after another and resends
an update, with the same ``update_id``, until it is answered 200. Mid-burst a
master fails over:

* Cluster: ``CLUSTER FAILOVER`` on the replica of the master serving one of the
  chats, then the old master is killed; or that master is killed outright
  (its replica takes over once the others count it failed);
* Sentinel: the master is killed, and the sentinels promote its replica.

Each chat keeps talking until the failover is over and then a little more; at
the end every chat's count equals the updates it sent, and its replies are
exactly ``Count: 1`` .. ``Count: n``. (A reply may be sent twice: an event
whose write failed after the bot had sent its message is run again on
redelivery. The state is what must never be doubled or lost.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from bottender.sessions.redis import RedisStore
from tests.fixtures.redis_ha import SERVICE, ClusterServers, SentinelServers, role, wait_until

CHATS = 6
#: Updates each chat sends before the failover starts, and after it is over.
BEFORE, AFTER = 5, 10
#: A user's pace between two messages: load shaping, not synchronisation.
TYPING_PAUSE = 0.03
#: The platform's pause before resending an update that was not answered 200.
RESEND_PAUSE = 0.1
GIVE_UP_AFTER = 120.0
LOCK_LEASE = 5


class RecentErrors(logging.Handler):
    """The gateways' last error lines, tracebacks included: a failure shows what they hit."""

    def __init__(self, keep: int = 20) -> None:
        super().__init__(logging.ERROR)
        self.lines: deque[str] = deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __str__(self) -> str:
        return "\n".join(self.lines) or "(none)"


@pytest.fixture
def gateway_errors() -> Iterator[RecentErrors]:
    """What the gateways (in this process, on their own threads) log at ERROR and above."""
    handler = RecentErrors()
    logger = logging.getLogger("bottender")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class Platform:
    """Telegram's side: chats sending updates, resending each until it gets a 200."""

    def __init__(self, urls: list[str], errors: RecentErrors) -> None:
        self.urls = urls
        self.errors = errors
        self.sent = dict.fromkeys(range(1, CHATS + 1), 0)
        self.refused = 0
        self.failover_over = threading.Event()

    def all_sent(self, count: int) -> bool:
        return all(sent >= count for sent in self.sent.values())

    async def chat(self, http: aiohttp.ClientSession, chat_id: int) -> None:
        after = 0
        while after < AFTER:
            if self.failover_over.is_set():
                after += 1
            update_id = chat_id * 100_000 + self.sent[chat_id] + 1
            await self.deliver(http, chat_id, update_id)
            self.sent[chat_id] += 1
            await asyncio.sleep(TYPING_PAUSE)

    async def deliver(self, http: aiohttp.ClientSession, chat_id: int, update_id: int) -> None:
        deadline = time.monotonic() + GIVE_UP_AFTER
        attempt = 0
        while time.monotonic() < deadline:
            url = self.urls[(update_id + attempt) % len(self.urls)] + "/webhooks/telegram"
            attempt += 1
            try:
                async with http.post(url, json=telegram_update(update_id, chat_id)) as response:
                    if response.status == 200:
                        return
                    assert response.status == 503, (
                        f"{response.status} {await response.text()}; "
                        f"the gateways' last errors:\n{self.errors}"
                    )
            except aiohttp.ClientError:
                pass
            self.refused += 1
            await asyncio.sleep(RESEND_PAUSE)
        raise AssertionError(f"update {update_id} of chat {chat_id} never got a 200")

    async def burst(self, failover: Callable[[], None]) -> None:
        """Every chat talks; ``failover`` runs in a thread once each chat sent BEFORE."""

        def fail_over_when_ready() -> None:
            while not self.all_sent(BEFORE):
                time.sleep(0.01)
            try:
                failover()
            finally:
                self.failover_over.set()

        async with aiohttp.ClientSession() as http:
            thread = asyncio.create_task(asyncio.to_thread(fail_over_when_ready))
            await asyncio.gather(*(self.chat(http, chat) for chat in self.sent))
            await thread


def telegram_update(update_id: int, chat_id: int) -> dict[str, Any]:
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


def start_gateways(make_gateway, fake_platform, store: dict[str, Any]) -> list[str]:
    config = {
        "app": "tests.bots:counter",
        "session": {"driver": "redis", "stores": {"redis": {**store, "lock_lease": LOCK_LEASE}}},
        "channels": {
            "telegram": {"enabled": True, "access_token": "T", "origin": fake_platform.origin}
        },
    }
    return [make_gateway(**config).url for _ in range(2)]


def assert_every_update_counted_once(platform: Platform, fake_platform, store: dict) -> None:
    async def counts() -> dict[int, int]:
        reader = RedisStore(**store)
        await reader.open()
        try:
            found = {}
            for chat in platform.sent:
                session = await reader.read(f"telegram:{chat}")
                found[chat] = session.state["count"] if session else 0
            return found
        finally:
            await reader.close()

    assert asyncio.run(counts()) == platform.sent, f"the gateways' last errors:\n{platform.errors}"
    for chat, sent in platform.sent.items():
        texts = {
            call.json["text"]
            for call in fake_platform.calls_to("/sendMessage")
            if call.json["chat_id"] == chat
        }
        assert texts == {f"Count: {n}" for n in range(1, sent + 1)}, chat


@pytest.mark.parametrize("how", ["failover-then-kill", "crash"])
def test_a_cluster_master_failed_over_mid_burst_loses_and_doubles_nothing(
    how: str, make_gateway, fake_platform, redis_cluster: ClusterServers, gateway_errors
) -> None:
    prefix = f"failover-{time.time_ns()}:"
    store = {"url": redis_cluster.url, "cluster": True, "prefix": prefix}
    platform = Platform(start_gateways(make_gateway, fake_platform, store), gateway_errors)
    master = redis_cluster.master_of(f"{prefix}session:{{telegram:1}}")
    served = [
        chat
        for chat in platform.sent
        if redis_cluster.master_of(f"{prefix}session:{{telegram:{chat}}}") == master
    ]

    def failover() -> None:
        if how == "crash":  # its replica takes over once the others see it fail
            (replica,) = redis_cluster.replicas_of(master)
            master.kill()
            wait_until(lambda: role(replica.port) == "master", "the replica to take over")
        else:
            redis_cluster.fail_over(master)
            master.kill()
        redis_cluster.wait_ok()

    try:
        asyncio.run(platform.burst(failover))
    finally:
        redis_cluster.restore()

    assert served, "at least one chat lives on the master that failed over"
    assert_every_update_counted_once(platform, fake_platform, store)


def test_the_sentinel_master_killed_mid_burst_loses_and_doubles_nothing(
    make_gateway, fake_platform, redis_sentinel: SentinelServers, gateway_errors
) -> None:
    store = {
        "sentinels": redis_sentinel.addresses,
        "service_name": SERVICE,
        "prefix": f"failover-{time.time_ns()}:",
    }
    platform = Platform(start_gateways(make_gateway, fake_platform, store), gateway_errors)
    old_master = redis_sentinel.master.port

    try:
        asyncio.run(platform.burst(redis_sentinel.kill_master))
    finally:
        redis_sentinel.restore()

    assert redis_sentinel.master.port != old_master
    assert platform.refused > 0, "the updates sent while no master was elected were refused"
    assert_every_update_counted_once(platform, fake_platform, store)
