"""The runtime behind the webhook: concurrency, failures, redeliveries, bad input, health."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from urllib.parse import urlsplit

import aiohttp
import pytest

import tests.fixtures.gateway as gateway_fixtures
from bottender.sessions.base import StoreError
from bottender.sessions.memory import MemoryStore
from bottender.sessions.session import Session
from tests.bots import RENDEZVOUS_TIMEOUT
from tests.server.conftest import WEBHOOK, http
from tests.server.updates import poll_update, text_update

MAX_BODY = 4096


async def post_all(url: str, updates: list[dict]) -> list[int]:
    """POST every update at once, each on its own connection; their statuses."""
    timeout = aiohttp.ClientTimeout(total=3 * RENDEZVOUS_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def post(update: dict) -> int:
            async with client.post(url, json=update) as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(post(update) for update in updates))


# --- concurrency ----------------------------------------------------------------------


async def test_200_concurrent_updates_of_one_chat_each_count_once(telegram_bot, probe):
    bot = telegram_bot("tests.bots:serial_counter")
    updates = [text_update(update_id, "hi", chat_id=7) for update_id in range(1, 201)]
    assert await post_all(bot.webhook, updates) == [200] * 200
    assert bot.state(7) == {"count": 200}
    replies = bot.replies()
    assert len(replies) == 200
    assert sorted(replies, key=lambda r: int(r.split()[-1])) == [
        f"Count: {n}" for n in range(1, 201)
    ]
    assert probe.max_inside == {"telegram:7": 1}  # never two events of the chat at once


async def test_concurrent_updates_of_many_chats_never_mix_their_sessions(telegram_bot, probe):
    bot = telegram_bot("tests.bots:serial_counter")
    chats = range(100, 140)
    updates = [text_update(chat * 10 + n, "hi", chat_id=chat) for n in range(5) for chat in chats]
    assert await post_all(bot.webhook, updates) == [200] * len(updates)
    assert {session.id: session.state for session in bot.sessions()} == {
        f"telegram:{chat}": {"count": 5} for chat in chats
    }
    assert set(probe.max_inside.values()) == {1}


async def test_events_of_different_sessions_run_at_the_same_time(telegram_bot):
    # Each bot waits until the other session's event is inside too: serialised
    # sessions would make the first one give up after RENDEZVOUS_TIMEOUT with "alone".
    bot = telegram_bot("tests.bots:rendezvous")
    updates = [text_update(1, "hi", chat_id=1), text_update(2, "hi", chat_id=2)]
    assert await post_all(bot.webhook, updates) == [200, 200]
    assert bot.replies() == ["met", "met"]


# --- a failing bot ----------------------------------------------------------------------


def test_a_bot_exception_is_logged_with_the_session_and_leaves_the_session_as_it_was(
    telegram_bot, caplog
):
    bot = telegram_bot("tests.bots:explosive")
    assert bot.say("hi") == ["Count: 1"]
    before = bot.state()
    with caplog.at_level(logging.ERROR):
        reply = bot.post(text_update(2, "boom"))
    assert reply.status == 200  # or the platform would redeliver the failing event forever
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "telegram:7" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert bot.state() == before == {"count": 1, "exploded": False}
    bot.update_ids = iter(range(3, 10))
    assert bot.say("hi") == ["Count: 2"]  # and the conversation goes on


# --- redeliveries -----------------------------------------------------------------------


def test_a_redelivered_update_runs_once(telegram_bot):
    bot = telegram_bot("tests.bots:counter")
    update = text_update(500, "hi")
    assert bot.post(update).status == 200
    assert bot.post(update).status == 200
    assert bot.replies() == ["Count: 1"]
    assert bot.state() == {"count": 1}


async def test_copies_of_an_update_delivered_at_once_run_once(telegram_bot):
    bot = telegram_bot("tests.bots:counter")
    update = text_update(501, "hi")
    assert await post_all(bot.webhook, [update] * 5) == [200] * 5
    assert bot.replies() == ["Count: 1"]
    assert bot.state() == {"count": 1}


def test_a_redelivered_sessionless_update_runs_once(telegram_bot, probe):
    bot = telegram_bot("tests.bots:state_probe")
    assert bot.post(poll_update(77)).status == 200
    assert bot.post(poll_update(77)).status == 200
    assert len(probe.seen) == 2  # one run: the state it read, and after set_state was refused
    assert bot.post(poll_update(78)).status == 200
    assert len(probe.seen) == 4


# --- health -----------------------------------------------------------------------------


def test_healthz_answers_200_with_json(telegram_bot):
    bot = telegram_bot("tests.bots:counter")
    reply = http(bot.live.url + "/healthz", method="GET")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert isinstance(reply.json(), dict)


# --- bad input --------------------------------------------------------------------------


@pytest.fixture
def guarded_bot(telegram_bot):
    return telegram_bot("tests.bots:counter", server={"max_body_size": MAX_BODY})


def refusals(caplog) -> list[str]:
    """The gateway's log lines (bottender.*) captured so far."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("bottender")]


def test_malformed_json_is_a_logged_400(guarded_bot, caplog):
    with caplog.at_level(logging.WARNING):
        reply = guarded_bot.post(b'{"update_id": 1, "message": {')
    assert reply.status == 400
    assert reply.json()["ok"] is False
    assert any("JSON" in line for line in refusals(caplog))
    assert guarded_bot.replies() == []


def test_a_body_that_is_not_a_json_object_is_a_logged_400(guarded_bot, caplog):
    for body in [b"[]", b'[{"update_id": 1}]', b'"hi"', b"42", b"null"]:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            reply = guarded_bot.post(body)
        assert reply.status == 400, body
        assert reply.json()["ok"] is False
        assert any("JSON object" in line for line in refusals(caplog)), f"no log line for {body}"
    assert guarded_bot.replies() == []


def test_an_update_without_update_id_is_a_400(guarded_bot):
    update = text_update(1, "hi")
    del update["update_id"]
    assert guarded_bot.post(update).status == 400
    assert guarded_bot.replies() == []


def test_an_update_of_an_unknown_kind_is_acknowledged_and_not_run(guarded_bot):
    assert guarded_bot.post({"update_id": 9, "some_future_kind": {"id": 1}}).status == 200
    assert guarded_bot.replies() == []
    assert guarded_bot.sessions() == []


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_a_413(guarded_bot, caplog):
    body = json.dumps(text_update(1, "hi")).encode()
    assert guarded_bot.post(body.ljust(MAX_BODY)).status == 200
    with caplog.at_level(logging.WARNING):
        assert guarded_bot.post(body.ljust(MAX_BODY + 1)).status == 413
    assert any("body" in line for line in refusals(caplog))
    assert guarded_bot.replies() == ["Count: 1"]


def raw_exchange(url: str, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request head and part of a body, never finishing it; what the server answers.

    A server that waited for the whole body would never answer: the read times out.
    """
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"no answer while the body was unfinished; got {answer!r}")
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_huge_declared_content_length_is_refused_without_reading_the_body(guarded_bot):
    head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**10}\r\n\r\n"
    ).encode()
    answer = raw_exchange(guarded_bot.live.url, head, [b'{"update_id": 1, "message": "'])
    assert answer.startswith(b"HTTP/1.1 413 "), answer


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(guarded_bot):
    head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"400\r\n" + b" " * 0x400 + b"\r\n"  # 1 KiB chunks; the last chunk never comes
    answer = raw_exchange(guarded_bot.live.url, head, [chunk] * (MAX_BODY // 0x400 + 2))
    assert answer.startswith(b"HTTP/1.1 413 "), answer


def test_the_webhook_only_takes_post(guarded_bot, caplog):
    caplog.set_level(logging.WARNING, logger="bottender.access")
    for method in ["GET", "PUT", "DELETE", "PATCH"]:
        reply = guarded_bot.post(None, method=method)
        assert reply.status == 405, method
        assert json.loads(reply.body) == {"ok": False, "error": "method not allowed"}
        assert reply.headers["allow"] == "POST"
    lines = [r.getMessage() for r in caplog.records if r.name == "bottender.access"]
    assert [line.split(" client=")[0] for line in lines] == [
        f'http method={m} status=405 error="method not allowed"'
        for m in ["GET", "PUT", "DELETE", "PATCH"]
    ]


def test_an_unknown_path_is_404_with_a_reason(guarded_bot):
    reply = http(guarded_bot.live.url + "/webhooks/nowhere", {"update_id": 1})
    assert reply.status == 404
    assert json.loads(reply.body) == {"ok": False, "error": "no such route"}


def test_the_server_stays_healthy_after_bad_input(guarded_bot):
    for body in [b"{", b"[]", b"x" * (MAX_BODY + 1), json.dumps({"update_id": "one"}).encode()]:
        assert guarded_bot.post(body).status in (400, 413)
    assert guarded_bot.post(None, method="GET").status == 405
    assert http(guarded_bot.live.url + "/healthz", method="GET").status == 200
    assert guarded_bot.say("hi") == ["Count: 1"]


# --- a failing store --------------------------------------------------------------------


class FlakyStore(MemoryStore):
    """The memory store, made to fail on demand as an unreachable Redis would."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()
        self.reads = 0

    async def read(self, key: str) -> Session | None:
        self.reads += 1
        if "read" in self.failing:
            raise StoreError("store unreachable (test)")
        return await super().read(key)

    async def write(self, session: Session) -> None:
        if "write" in self.failing:
            raise StoreError("store unreachable (test)")
        await super().write(session)


@pytest.fixture
def flaky(telegram_bot, monkeypatch):
    store = FlakyStore()
    real_create_app = gateway_fixtures.create_app
    monkeypatch.setattr(
        gateway_fixtures,
        "create_app",
        lambda config, **options: real_create_app(config, store=store, **options),
    )
    bot = telegram_bot("tests.bots:counter")
    assert bot.live.gateway.store is store
    return bot, store


def test_a_store_that_cannot_be_read_is_a_503_and_the_bot_never_runs(flaky, caplog):
    bot, store = flaky
    assert bot.say("hi") == ["Count: 1"]
    store.failing = {"read"}
    update = text_update(2, "hi")
    with caplog.at_level(logging.ERROR):
        reply = bot.post(update)
    assert reply.status == 503
    assert store.reads >= 2  # the store was asked, and failed
    assert bot.replies() == ["Count: 1"]  # the bot did not run on a made-up fresh session
    assert any("store" in line for line in refusals(caplog))
    # Once the store is back, Telegram's redelivery of the same update runs, and the
    # conversation goes on where it was: it was never reset for the failed read.
    store.failing = set()
    assert bot.post(update).status == 200
    assert bot.replies() == ["Count: 1", "Count: 2"]
    assert bot.state() == {"count": 2}


def test_a_store_that_cannot_be_written_is_a_503_and_the_redelivery_runs(flaky):
    bot, store = flaky
    store.failing = {"write"}
    update = text_update(1, "hi")
    assert bot.post(update).status == 503
    store.failing = set()
    assert bot.post(update).status == 200
    assert bot.state() == {"count": 1}
    assert bot.replies()[-1] == "Count: 1"
