"""The platform API clients against the fake platform: retries, timeouts, errors, fallback.

Waits between retries go through an injected ``sleep`` that records them, so
the tests see exactly how long the client would have waited without waiting.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import aiohttp
import pytest

from bottender.connectors import api
from bottender.connectors.api import MAX_ATTEMPTS, PlatformApiError, PlatformUnreachable
from bottender.connectors.line import LineConnector
from bottender.connectors.line_api import LineApiError, LineClient
from bottender.connectors.telegram_api import TelegramApiError, TelegramClient
from tests.fixtures.contexts import started_context
from tests.fixtures.tunnels import free_port

TOKEN = "987654:AAE-very_secret_bot_token"
LINE_TOKEN = "line-very-secret-access-token"


class Waits:
    """A ``sleep`` that records instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def too_many(retry_after: int) -> tuple[int, dict[str, Any]]:
    return 429, {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry_after}",
        "parameters": {"retry_after": retry_after},
    }


SENT = (200, {"ok": True, "result": {"message_id": 1}})


# --- Telegram ------------------------------------------------------------------------


async def test_telegram_429_waits_retry_after_then_succeeds(http, fake_platform):
    fake_platform.answer(f"/bot{TOKEN}/sendMessage", too_many(3), too_many(1), SENT)
    waits = Waits()
    client = TelegramClient(http, TOKEN, fake_platform.origin, sleep=waits)
    assert await client.send_message(7, "hi") == {"message_id": 1}
    assert waits.waits == [3.0, 1.0]
    assert len(fake_platform.calls_to("/sendMessage")) == 3


async def test_telegram_429_too_long_is_raised_at_once(http, fake_platform):
    fake_platform.answer(f"/bot{TOKEN}/sendMessage", too_many(600))
    waits = Waits()
    client = TelegramClient(http, TOKEN, fake_platform.origin, sleep=waits)
    with pytest.raises(TelegramApiError, match="Too Many Requests: retry after 600") as caught:
        await client.send_message(7, "hi")
    assert caught.value.status == 429
    assert waits.waits == [] and len(fake_platform.calls) == 1


async def test_telegram_429_is_retried_a_bounded_number_of_times(http, fake_platform):
    fake_platform.answer(f"/bot{TOKEN}/sendMessage", too_many(2))
    waits = Waits()
    client = TelegramClient(http, TOKEN, fake_platform.origin, sleep=waits)
    with pytest.raises(TelegramApiError):
        await client.send_message(7, "hi")
    assert len(fake_platform.calls) == MAX_ATTEMPTS
    assert waits.waits == [2.0] * (MAX_ATTEMPTS - 1)


async def test_telegram_5xx_and_4xx_are_not_retried(http, fake_platform):
    # A retried sendMessage after a 5xx may post the message twice: the bot decides.
    fake_platform.answer(
        f"/bot{TOKEN}/sendMessage",
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
    )
    client = TelegramClient(http, TOKEN, fake_platform.origin, sleep=Waits())
    with pytest.raises(TelegramApiError, match="Bad Gateway"):
        await client.send_message(7, "hi")
    with pytest.raises(TelegramApiError, match="chat not found") as caught:
        await client.send_message(7, "hi")
    assert (caught.value.status, caught.value.reason) == (400, "Bad Request: chat not found")
    assert caught.value.body["error_code"] == 400
    assert len(fake_platform.calls) == 2


async def test_telegram_non_json_answer_is_an_error(http, fake_platform):
    fake_platform.answer(f"/bot{TOKEN}/getMe", (200, ["not", "telegram"]))
    client = TelegramClient(http, TOKEN, fake_platform.origin)
    with pytest.raises(TelegramApiError, match="unexpected response"):
        await client.call("getMe")


# --- LINE ------------------------------------------------------------------------------


async def test_line_429_and_5xx_back_off_then_succeed(http, fake_platform):
    fake_platform.answer(
        "/v2/bot/message/push",
        (429, {"message": "The API rate limit has been exceeded. Try again later."}),
        (500, {"message": "Internal server error"}),
        (200, {"sentMessages": [{"id": "1"}]}),
    )
    waits = Waits()
    client = LineClient(http, LINE_TOKEN, fake_platform.origin, sleep=waits)
    assert await client.push("U1", [{"type": "text", "text": "hi"}]) == {
        "sentMessages": [{"id": "1"}]
    }
    calls = fake_platform.calls_to("/push")
    assert len(calls) == 3
    # Exponential with jitter: attempt n waits 0.5 * 2**(n-1) * [0.5, 1.5).
    assert 0.25 <= waits.waits[0] < 0.75 and 0.5 <= waits.waits[1] < 1.5
    # One retry key for every try of one push, so LINE delivers it once.
    keys = {c.headers["X-Line-Retry-Key"] for c in calls}
    assert len(keys) == 1


async def test_line_5xx_retries_are_bounded_and_raise_lines_reason(http, fake_platform):
    fake_platform.answer("/v2/bot/message/push", (503, {"message": "Service unavailable"}))
    waits = Waits()
    client = LineClient(http, LINE_TOKEN, fake_platform.origin, sleep=waits)
    with pytest.raises(
        LineApiError, match=r"LINE API error 503 in POST /v2/bot/message/push: Service unavailable"
    ):
        await client.push("U1", [{"type": "text", "text": "hi"}])
    assert len(fake_platform.calls) == MAX_ATTEMPTS
    assert len(waits.waits) == MAX_ATTEMPTS - 1
    assert sum(waits.waits) < 0.5 * (1 + 2 + 4) * 1.5


async def test_line_reply_is_retried_on_429_but_not_on_5xx(http, fake_platform):
    """A reply has no retry key, and a 5xx reply may have reached the user already."""
    fake_platform.answer(
        "/v2/bot/message/reply",
        (429, {"message": "The API rate limit has been exceeded. Try again later."}),
        (200, {"sentMessages": [{"id": "1"}]}),
        (500, {"message": "Internal server error"}),
    )
    client = LineClient(http, LINE_TOKEN, fake_platform.origin, sleep=Waits())
    assert await client.reply("token-1", [{"type": "text", "text": "hi"}]) == {
        "sentMessages": [{"id": "1"}]
    }
    with pytest.raises(LineApiError, match="LINE API error 500"):
        await client.reply("token-2", [{"type": "text", "text": "hi"}])
    assert [c.json["replyToken"] for c in fake_platform.calls] == ["token-1", "token-1", "token-2"]


async def test_line_4xx_is_not_retried_and_names_the_details(http, fake_platform):
    fake_platform.answer(
        "/v2/bot/message/push",
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "May not be empty", "property": "messages[0].text"}],
            },
        ),
    )
    client = LineClient(http, LINE_TOKEN, fake_platform.origin, sleep=Waits())
    with pytest.raises(LineApiError) as caught:
        await client.push("U1", [{"type": "text", "text": ""}])
    assert caught.value.reason == (
        "The request body has 1 error(s) (messages[0].text: May not be empty)"
    )
    assert len(fake_platform.calls) == 1


def line_event(reply_token: str = "reply-1") -> dict[str, Any]:
    return {
        "destination": "Ubot",
        "events": [
            {
                "type": "message",
                "replyToken": reply_token,
                "source": {"type": "user", "userId": "U1"},
                "webhookEventId": "01E",
                "deliveryContext": {"isRedelivery": False},
                "timestamp": 0,
                "mode": "active",
                "message": {"type": "text", "id": "1", "text": "hi"},
            }
        ],
    }


async def line_context(http, fake_platform, *, reply_fallback_to_push: bool) -> Any:
    """The context of one LINE text event from user U1, its connector started."""
    connector = LineConnector(
        path="/webhooks/line",
        initial_state={},
        access_token=LINE_TOKEN,
        channel_secret="secret",
        origin=fake_platform.origin,
        reply_fallback_to_push=reply_fallback_to_push,
    )
    return await started_context(connector, http, line_event())


@pytest.mark.parametrize("fallback", [True, False])
async def test_rejected_reply_token_falls_back_to_push_when_configured(
    http, fake_platform, fallback
):
    fake_platform.answer("/v2/bot/message/reply", (400, {"message": "Invalid reply token"}))
    context = await line_context(http, fake_platform, reply_fallback_to_push=fallback)
    await context.send_text("one")
    await context.send_text("two")
    if fallback:
        await context.flush()
        [push] = fake_platform.calls_to("/push")
        assert push.json == {
            "to": "U1",
            "messages": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        }
    else:
        with pytest.raises(LineApiError, match="Invalid reply token"):
            await context.flush()
        assert fake_platform.calls_to("/push") == []


async def test_a_refused_message_is_not_pushed_again(http, fake_platform):
    """Only a refused reply token falls back: an invalid message would be refused again."""
    fake_platform.answer(
        "/v2/bot/message/reply",
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [
                    {"message": "Length must be between 0 and 5000", "property": "messages[0].text"}
                ],
            },
        ),
    )
    context = await line_context(http, fake_platform, reply_fallback_to_push=True)
    await context.send_text("x" * 5001)
    with pytest.raises(LineApiError, match="Length must be between"):
        await context.flush()
    assert fake_platform.calls_to("/push") == []


# --- transport failures: timeouts, refused connections; never the token ---------------------


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    shown = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.args)
    for secret in secrets:
        assert secret not in shown
    assert exc.__cause__ is None and exc.__context__ is None


async def test_timeout_becomes_platform_unreachable_without_token(http, fake_platform, monkeypatch):
    monkeypatch.setattr(api, "DEFAULT_TIMEOUT", aiohttp.ClientTimeout(total=0.2))
    fake_platform.delay = 1.0
    client = TelegramClient(http, TOKEN, fake_platform.origin)
    with pytest.raises(PlatformUnreachable) as caught:
        await client.send_message(7, "hi")
    assert str(caught.value) == (
        f"Telegram API unreachable: no answer from 127.0.0.1:{fake_platform.port} within 0.2 s"
    )
    assert caught.value.status == 0 and caught.value.platform == "Telegram"
    assert_no_secret(caught.value, TOKEN)


async def test_calls_queued_behind_a_full_pool_wait_their_turn_rather_than_fail(fake_platform):
    """A burst larger than the pool: the wait for a connection is not a connect timeout."""
    # The default, scaled down fivefold: the TCP connect bounded at 1 s, the call at 3 s.
    default = api.DEFAULT_TIMEOUT
    bounds = ("total", "connect", "sock_connect", "sock_read")
    scaled = aiohttp.ClientTimeout(
        **{name: value / 5 for name in bounds if (value := getattr(default, name))}
    )
    fake_platform.delay = 0.3
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
        calls = [
            api.request_json(
                http,
                "POST",
                f"{fake_platform.origin}/bot{TOKEN}/sendMessage",
                json={"chat_id": 7, "text": str(n)},
                retry_after=lambda response, attempt: None,
                http_timeout=scaled,
            )
            for n in range(6)
        ]
        # The sixth waits 1.5 s for the one connection: past the connect bound, in time.
        answers = await asyncio.gather(*calls)
    assert [a.status for a in answers] == [200] * 6
    assert len(fake_platform.calls_to("/sendMessage")) == 6


async def test_refused_connection_becomes_platform_unreachable_without_token(http):
    port = free_port()
    telegram = TelegramClient(http, TOKEN, f"http://127.0.0.1:{port}")
    with pytest.raises(PlatformApiError) as caught:
        await telegram.call("getMe")
    assert isinstance(caught.value, PlatformUnreachable)
    assert f"cannot connect to 127.0.0.1:{port}" in str(caught.value)
    assert_no_secret(caught.value, TOKEN)

    line = LineClient(http, LINE_TOKEN, f"http://127.0.0.1:{port}")
    with pytest.raises(PlatformUnreachable, match="LINE API unreachable") as caught:
        await line.get_webhook_endpoint()
    assert_no_secret(caught.value, LINE_TOKEN)


async def test_invalid_origin_is_reported_without_token(http):
    client = TelegramClient(http, TOKEN, "not a url")
    with pytest.raises(PlatformUnreachable) as caught:
        await client.call("getMe")
    assert_no_secret(caught.value, TOKEN)


def test_scrub_replaces_longest_secrets_first():
    assert api.scrub("a 12:abc b 12", ["12", "12:abc", ""]) == "a <redacted> b <redacted>"


# --- one pooled HTTP client per process ----------------------------------------------------


def test_gateway_shares_one_pooled_client(make_gateway, fake_platform):
    live = make_gateway(
        app="tests.bots:counter",
        channels={
            "line": {
                "enabled": True,
                "access_token": LINE_TOKEN,
                "channel_secret": "s",
                "origin": fake_platform.origin,
            },
            "telegram": {"enabled": True, "access_token": TOKEN, "origin": fake_platform.origin},
        },
    )
    gateway = live.gateway
    assert gateway.http is not None
    assert {id(c.client._http) for c in gateway.connectors} == {id(gateway.http)}
    # A bounded pool (server.max_api_connections): a burst of events queues for sockets.
    assert gateway.http.connector.limit == 100
    assert gateway.http.connector.limit_per_host == 0
