"""Authenticated bodies that are valid JSON but not shaped as the platform sends: 400, never 500.

Each body here answered 500 in a reliability review, and each 500 was a poison
update the platform kept redelivering. A body whose values the session would
keep but no store could write is refused before the bot runs, so no reply goes
out for an update that then fails.
"""

from __future__ import annotations

import json
import logging
import re

import aiohttp
import pytest
from multidict import CIMultiDict

from tests.connectors import payloads
from tests.connectors.conftest import LINE_SECRET, TELEGRAM_SECRET


def nested(levels: int, leaf: object = "x") -> object:
    """``leaf`` inside ``levels`` objects, as a forged body would nest it."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "event",
    [
        {"type": []},
        {"type": "follow", "replyToken": {}},
        {"type": "follow", "source": {"type": {}}},
        {"type": "follow", "source": {"type": "user", "userId": nested(253)}},
        {"type": "follow", "source": "user"},
        {"type": "message", "message": {"type": "text", "text": ["hi"]}, "replyToken": "r"},
        {"type": "follow", "webhookEventId": {"id": 1}, "source": payloads.user_source()},
    ],
    ids=[
        "type-list",
        "replyToken-object",
        "source-type-object",
        "userId-nested-253",
        "source-string",
        "text-list",
        "webhookEventId-object",
    ],
)
async def test_a_line_event_with_fields_of_the_wrong_type_is_refused_400(line, event):
    channel = line()
    answer = await channel.post(payloads.line_body(event))
    assert answer.status == 400
    assert answer.body["ok"] is False
    assert "event" in answer.body["error"]
    assert channel.replies() == [] and channel.pushes() == []
    assert channel.sessions() == []


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "poll_answer": {"poll_id": "p", "voter_chat": "x"}},
        {"update_id": 2, "poll_answer": {"poll_id": "p", "voter_chat": [1], "user": 5}},
    ],
    ids=["voter_chat-string", "voter_chat-list"],
)
async def test_a_telegram_poll_answer_whose_voter_chat_is_no_object_runs_without_a_session(
    telegram, update
):
    channel = telegram()
    answer = await channel.post(update, secret_token=TELEGRAM_SECRET)
    assert answer.status == 200
    assert channel.sessions() == []


@pytest.mark.parametrize("levels", [253, 300])
@pytest.mark.parametrize("field", ["from", "chat"])
async def test_a_telegram_message_whose_copied_objects_nest_deep_is_refused_400(
    telegram, field, levels
):
    channel = telegram()
    message = payloads.tg_message(payloads.private_chat(payloads.ALICE), payloads.ALICE)
    message[field] = {**message[field], "deep": nested(levels)}
    answer = await channel.post(payloads.update("message", message), secret_token=TELEGRAM_SECRET)
    assert answer.status == 400
    assert f"message.{field}" in answer.body["error"]
    # Refused before the bot ran: nothing was sent, so a redelivery cannot send it twice.
    assert channel.sent() == []
    assert channel.sessions() == []


@pytest.mark.parametrize(
    "change",
    [
        {"id": 2**64 - 1},
        {"first_name": "x" * 20_000},
        {"bad\0key": 1},
        {"$where": 1},
    ],
    ids=["uint64-id", "huge-name", "nul-key", "dollar-key"],
)
async def test_a_telegram_sender_no_store_could_keep_is_refused_before_the_bot_runs(
    telegram, change
):
    channel = telegram()
    sender = {**payloads.ALICE, **change}
    message = payloads.tg_message(payloads.private_chat(payloads.ALICE), sender)
    answer = await channel.post(payloads.update("message", message), secret_token=TELEGRAM_SECRET)
    assert answer.status == 400
    assert channel.sent() == []


async def test_a_valid_line_body_still_runs_after_a_refused_one(line):
    channel = line()
    assert (await channel.post(payloads.line_body({"type": []}))).status == 400
    answer = await channel.post(payloads.line_body(payloads.text_event("hi")))
    assert answer.status == 200
    assert len(channel.replies()) == 1


async def test_more_events_than_the_cap_in_one_body_are_refused_400(line):
    channel = line(server={"max_events_per_body": 5})
    users = [payloads.user_source(f"user{i}") for i in range(6)]
    too_many = payloads.line_body(*(payloads.text_event("hi", source) for source in users))
    answer = await channel.post(too_many)
    assert answer.status == 400
    assert "more than 5 events" in answer.body["error"]
    assert channel.replies() == []

    at_cap = payloads.line_body(*(payloads.text_event("hi", source) for source in users[:5]))
    assert (await channel.post(at_cap)).status == 200
    assert len(channel.replies()) == 5


async def post_with_headers(url: str, data: bytes, headers: list[tuple[str, str]]) -> int:
    """POST with headers given as pairs, so one name can be sent twice."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers=CIMultiDict(headers)) as response,
    ):
        return response.status


async def test_a_line_signature_header_sent_twice_is_refused_401_even_when_both_match(line):
    channel = line()
    data = payloads.encode(payloads.line_body(payloads.text_event("hi")))
    signature = payloads.line_signature(data, LINE_SECRET)
    headers = [("Content-Type", "application/json")]
    twice = [*headers, ("X-Line-Signature", signature), ("X-Line-Signature", signature)]
    assert await post_with_headers(channel.url, data, twice) == 401
    assert channel.replies() == []
    assert await post_with_headers(channel.url, data, [*headers, ("X-Line-Signature", signature)])
    assert len(channel.replies()) == 1


async def test_a_telegram_secret_token_header_sent_twice_is_refused_401(telegram):
    channel = telegram(secret_token=TELEGRAM_SECRET)
    data = payloads.encode(payloads.text_update("hi"))
    name = "X-Telegram-Bot-Api-Secret-Token"
    headers = [("Content-Type", "application/json"), (name, TELEGRAM_SECRET)]
    assert await post_with_headers(channel.url, data, [*headers, (name, TELEGRAM_SECRET)]) == 401
    assert await post_with_headers(channel.url, data, [*headers, (name, "something-else")]) == 401
    assert channel.sent() == []
    assert await post_with_headers(channel.url, data, headers) == 200
    assert len(channel.sent()) == 1


async def test_a_forged_user_id_cannot_write_a_second_access_line(line, caplog):
    channel = line()
    source = {"type": "user", "userId": 'U1\nFAKE status=200 "x\0'}
    with caplog.at_level(logging.INFO, logger="bottender.access"):
        answer = await channel.post(payloads.line_body(payloads.follow_event(source)))
    assert answer.status == 200
    (record,) = [r for r in caplog.records if r.name == "bottender.access"]
    text = record.getMessage()
    assert "\n" not in text and "\0" not in text
    # The line reads back as the fields it was given: quoted values are JSON strings.
    tokens = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?:\s|$)', text.split(" ", 1)[1])
    assert [key for key, _ in tokens] == list(record.fields)
    values = dict(tokens)
    assert values["status"] == "200"
    assert json.loads(json.loads(values["sessions"])) == ['line:U1\nFAKE status=200 "x\0']
