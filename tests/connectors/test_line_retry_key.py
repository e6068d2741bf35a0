"""LINE pushes are idempotent across replays: the retry key comes from the event.

When the durable inbox replays an event whose process died after pushing, the
replay pushes with the same ``X-Line-Retry-Key`` per call position, and LINE
drops it (answering 409, which is not an error for the bot).
"""

from __future__ import annotations

import uuid

import aiohttp

from bottender.connectors.line import LineContext, LineEvent
from bottender.connectors.line_api import LineClient, push_retry_key
from tests.fixtures.platform_api import FakePlatform, Recorded

PUSH = "/v2/bot/message/push"


def unfollow(event_id: str | None) -> LineEvent:
    raw = {
        "type": "unfollow",
        "mode": "active",
        "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": "Ualice"},
        "deliveryContext": {"isRedelivery": False},
    }
    if event_id:
        raw["webhookEventId"] = event_id
    return LineEvent(raw)


def key_of(call: Recorded) -> str:
    return {k.lower(): v for k, v in call.headers.items()}["x-line-retry-key"]


def test_a_retry_key_is_a_uuid_fixed_by_the_event_and_the_push_position() -> None:
    key = push_retry_key("01HEVENT", 0)
    assert key is not None and uuid.UUID(key)
    assert push_retry_key("01HEVENT", 0) == key
    assert len({key, push_retry_key("01HEVENT", 1), push_retry_key("01HOTHER", 0)}) == 3
    assert push_retry_key(None, 0) is None


async def test_a_replayed_event_pushes_with_the_same_keys_and_line_drops_it(
    fake_platform: FakePlatform,
) -> None:
    accepted: set[str] = set()

    def push(call: Recorded) -> tuple[int, dict]:
        if key_of(call) in accepted:
            return 409, {"message": "The retry key is already accepted"}
        accepted.add(key_of(call))
        return 200, {"sentMessages": []}

    fake_platform.answer(PUSH, push)
    async with aiohttp.ClientSession() as http:
        client = LineClient(http, "token", fake_platform.origin)
        for _ in range(2):  # the first run, then its replay
            context = LineContext(unfollow("01HEVENT"), None, {}, client)
            for n in range(7):
                await context.push_text(f"message {n}")
            await context.flush()  # a 409 is not an error: the messages went out before

    first, second, third, fourth = fake_platform.calls_to(PUSH)
    assert [key_of(first), key_of(second)] == [key_of(third), key_of(fourth)]
    assert key_of(first) != key_of(second)
    assert len(accepted) == 2


async def test_an_event_without_an_id_draws_a_fresh_key_per_call(
    fake_platform: FakePlatform,
) -> None:
    async with aiohttp.ClientSession() as http:
        client = LineClient(http, "token", fake_platform.origin)
        for _ in range(2):
            context = LineContext(unfollow(None), None, {}, client)
            await context.push_text("hello")
            await context.flush()

    keys = [key_of(call) for call in fake_platform.calls_to(PUSH)]
    assert len(set(keys)) == 2
    assert all(uuid.UUID(key) for key in keys)


async def test_a_redelivered_event_whose_reply_token_was_used_is_not_an_error(
    fake_platform: FakePlatform,
) -> None:
    from bottender.connectors.line import LineConnector

    fake_platform.answer("/v2/bot/message/reply", (400, {"message": "Invalid reply token"}))
    connector = LineConnector(
        path="/webhooks/line", initial_state={}, access_token="t", channel_secret="s"
    )
    async with aiohttp.ClientSession() as http:
        client = LineClient(http, "token", fake_platform.origin)
        event = unfollow("01HEVENT")
        event.raw["replyToken"] = "used-by-the-first-run"
        context = LineContext(event, None, {}, client)
        await context.reply_text("hello")
        try:
            await context.flush()
        except Exception as error:  # a first delivery: the refusal is the bot's error
            assert "Invalid reply token" in str(error)
        else:
            raise AssertionError("a refused reply token on a first delivery must raise")

        connector.mark_replayed(event)  # the inbox replays it after its process died
        context = LineContext(event, None, {}, client)
        await context.reply_text("hello")
        await context.flush()  # the first run's reply went out: not an error, not re-sent

    assert event.is_redelivery
    assert fake_platform.calls_to("/v2/bot/message/push") == []
