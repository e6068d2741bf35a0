"""The Telegram connector, end to end: Telegram's webhook -> live gateway -> fake Bot API.

Updates are shaped as the Bot API documents them (see ``payloads.py``).
"""

from __future__ import annotations

import logging
import time

import pytest

from bottender.connectors.telegram import UPDATE_KINDS
from tests.connectors import payloads
from tests.connectors.bots import RECORDED
from tests.connectors.conftest import TELEGRAM_SECRET, TELEGRAM_TOKEN
from tests.connectors.payloads import (
    ALICE,
    BOB,
    CHANNEL,
    FORUM,
    GROUP,
    SUPERGROUP,
    private_chat,
    text_update,
    tg_message,
    update,
)

RECORDER = "tests.connectors.bots:recorder"
SEND_MESSAGE = f"/bot{TELEGRAM_TOKEN}/sendMessage"


def tg(chat_or_user: dict) -> str:
    return f"telegram:{chat_or_user['id']}"


def header(call, name: str) -> str | None:
    return {key.lower(): value for key, value in call.headers.items()}.get(name.lower())


async def assert_nothing_ran(channel) -> None:
    assert channel.platform.calls == [], "the bot must not have called Telegram"
    assert channel.sessions() == [], "no session may be written"
    assert RECORDED == []


async def assert_still_serving(channel) -> None:
    assert (await channel.healthz()).status == 200
    assert (await channel.post(text_update("still there?", sender=BOB))).status == 200
    assert channel.sent()[-1] == {"chat_id": BOB["id"], "text": "Count: 1"}


# ------------------------------------------------------------------ secret token


async def test_with_a_secret_token_configured_the_right_header_is_accepted(telegram):
    channel = telegram(secret_token=TELEGRAM_SECRET)

    answer = await channel.post(text_update("hi"), secret_token=TELEGRAM_SECRET)

    assert answer.status == 200
    assert channel.sent() == [{"chat_id": ALICE["id"], "text": "Count: 1"}]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("wrong-secret", id="wrong"),
        pytest.param(TELEGRAM_SECRET.upper(), id="different-case"),
        pytest.param(TELEGRAM_SECRET + "x", id="longer"),
        pytest.param(TELEGRAM_SECRET[:-1], id="prefix"),
    ],
)
async def test_with_a_secret_token_configured_a_missing_or_wrong_header_is_refused_401(
    telegram, given
):
    channel = telegram(secret_token=TELEGRAM_SECRET)

    answer = await channel.post(text_update("hi"), secret_token=given)

    assert answer.status == 401
    assert answer.body["ok"] is False
    await assert_nothing_ran(channel)


@pytest.mark.parametrize("given", [None, "anything"], ids=["no-header", "some-header"])
async def test_without_a_secret_token_configured_updates_are_accepted(telegram, given):
    channel = telegram()

    answer = await channel.post(text_update("hi"), secret_token=given)

    assert answer.status == 200
    assert channel.sent() == [{"chat_id": ALICE["id"], "text": "Count: 1"}]


# ------------------------------------------------------------------ session ids


def _who(user=None, group=None, channel=None) -> dict:
    return {"user": user, "group": group, "channel": channel}


#: (case in payloads.all_update_payloads(), the session id, who the session is with)
SESSION_CASES = [
    ("message:private", tg(ALICE), _who(ALICE)),
    ("message:group", tg(GROUP), _who(ALICE, group=GROUP)),
    ("message:supergroup", tg(SUPERGROUP), _who(ALICE, group=SUPERGROUP)),
    ("edited_message", tg(SUPERGROUP), _who(ALICE, group=SUPERGROUP)),
    ("channel_post", tg(CHANNEL), _who(channel=CHANNEL)),
    ("edited_channel_post", tg(CHANNEL), _who(channel=CHANNEL)),
    ("business_message", tg(BOB), _who(BOB)),
    ("edited_business_message", tg(BOB), _who(BOB)),
    ("deleted_business_messages", tg(BOB), _who()),
    ("guest_message", tg(SUPERGROUP), _who(ALICE, group=SUPERGROUP)),
    ("message_reaction", tg(SUPERGROUP), _who(ALICE, group=SUPERGROUP)),
    ("message_reaction_count", tg(CHANNEL), _who(channel=CHANNEL)),
    ("my_chat_member", tg(GROUP), _who(ALICE, group=GROUP)),
    ("chat_member", tg(SUPERGROUP), _who(BOB, group=SUPERGROUP)),
    ("chat_join_request", tg(SUPERGROUP), _who(BOB, group=SUPERGROUP)),
    ("chat_boost", tg(CHANNEL), _who(channel=CHANNEL)),
    ("removed_chat_boost", tg(CHANNEL), _who(channel=CHANNEL)),
    ("callback_query:message", tg(GROUP), _who(ALICE, group=GROUP)),
    ("callback_query:inline", tg(ALICE), _who(ALICE)),
    ("inline_query", tg(ALICE), _who(ALICE)),
    ("chosen_inline_result", tg(ALICE), _who(ALICE)),
    ("shipping_query", tg(BOB), _who(BOB)),
    ("pre_checkout_query", tg(BOB), _who(BOB)),
    ("purchased_paid_media", tg(BOB), _who(BOB)),
    ("poll_answer:user", tg(ALICE), _who(ALICE)),
    ("poll_answer:voter_chat", tg(CHANNEL), _who(channel=CHANNEL)),
    ("poll_answer:voter_group", tg(SUPERGROUP), _who(group=SUPERGROUP)),
    ("business_connection", tg(BOB), _who(BOB)),
    ("managed_bot", tg(ALICE), _who(ALICE)),
]


@pytest.mark.parametrize(
    ("case", "session_id", "who"), SESSION_CASES, ids=[c[0] for c in SESSION_CASES]
)
async def test_every_update_kind_runs_in_the_session_of_its_chat_or_sender(
    telegram, case, session_id, who
):
    channel = telegram(app=RECORDER)
    kind = case.partition(":")[0]

    answer = await channel.post(update(kind, payloads.all_update_payloads()[case]))

    assert answer.status == 200
    [seen] = RECORDED
    assert seen["platform"] == "telegram"
    assert seen["session_id"] == session_id
    assert {name: seen[name] for name in who} == who
    assert seen["room"] is None
    stored = channel.session(session_id)
    assert {name: getattr(stored, name) for name in who} == who


async def test_a_poll_update_names_no_conversation_and_runs_without_a_session(telegram):
    channel = telegram(app=RECORDER)

    answer = await channel.post(update("poll", payloads.all_update_payloads()["poll"]))

    assert answer.status == 200
    assert RECORDED == [
        {
            "platform": "telegram",
            "session_id": None,
            "user": None,
            "group": None,
            "room": None,
            "channel": None,
            "text": None,
        }
    ]
    assert channel.sessions() == []


def test_the_session_cases_cover_every_update_kind_the_connector_handles():
    covered = {case.partition(":")[0] for case, _, _ in SESSION_CASES} | {"poll"}
    assert covered == set(UPDATE_KINDS)


async def test_updates_of_one_chat_share_a_session_whatever_their_kind(telegram):
    channel = telegram()
    message = tg_message(GROUP, ALICE, "hi")
    callback = {
        "id": "cbq-1",
        "from": BOB,
        "message": tg_message(GROUP, payloads.THE_BOT, "Count: 1"),
        "chat_instance": "-1",
        "data": "again",
    }

    await channel.post(update("message", message))
    await channel.post(update("callback_query", callback))

    assert [m["text"] for m in channel.sent()] == ["Count: 1", "Count: 2"]
    stored = channel.session(tg(GROUP))
    assert stored.state == {"count": 2}
    assert stored.user == BOB, "the session names who acted last"


async def test_a_redelivered_update_runs_once(telegram):
    channel = telegram()
    same = text_update("hi")

    assert (await channel.post(same)).status == 200
    assert (await channel.post(same)).status == 200

    assert channel.sent() == [{"chat_id": ALICE["id"], "text": "Count: 1"}]
    assert channel.session(tg(ALICE)).state == {"count": 1}


# --------------------------------------------------------------------- sending


@pytest.mark.parametrize(
    ("chat", "sender"),
    [
        pytest.param(private_chat(ALICE), ALICE, id="private"),
        pytest.param(GROUP, ALICE, id="group"),
        pytest.param(SUPERGROUP, BOB, id="supergroup"),
    ],
)
async def test_send_text_calls_send_message_on_the_sessions_chat(telegram, chat, sender):
    channel = telegram()

    await channel.post(text_update("hi", chat=chat, sender=sender))

    [call] = channel.platform.calls
    assert (call.method, call.path) == ("POST", SEND_MESSAGE)
    assert header(call, "Content-Type").startswith("application/json")
    assert call.json == {"chat_id": chat["id"], "text": "Count: 1"}


async def test_send_text_after_an_inline_callback_goes_to_the_senders_private_chat(telegram):
    channel = telegram()
    callback = payloads.all_update_payloads()["callback_query:inline"]

    await channel.post(update("callback_query", callback))

    assert channel.sent() == [{"chat_id": ALICE["id"], "text": "Count: 1"}]


async def test_a_reply_to_a_forum_topic_message_stays_in_the_topic(telegram):
    channel = telegram()

    await channel.post(update("message", payloads.topic_message(thread_id=42)))

    assert channel.sent() == [{"chat_id": FORUM["id"], "text": "Count: 1", "message_thread_id": 42}]


async def test_a_reply_thread_outside_a_forum_topic_is_not_a_topic(telegram):
    """Replies in ordinary supergroups carry message_thread_id too, but are no topic."""
    channel = telegram()
    reply = tg_message(SUPERGROUP, ALICE, "me too", message_thread_id=4005)

    await channel.post(update("message", reply))

    assert channel.sent() == [{"chat_id": SUPERGROUP["id"], "text": "Count: 1"}]


async def test_a_reply_to_a_business_message_goes_through_the_business_connection(telegram):
    channel = telegram()

    await channel.post(update("business_message", payloads.business_message()))

    assert channel.sent() == [
        {"chat_id": BOB["id"], "text": "Count: 1", "business_connection_id": "bc-4242"}
    ]


async def test_a_guest_bot_answers_its_guest_query_instead_of_sending_to_the_chat(telegram):
    """Summoned as a guest, the bot is no member of the chat: its text is the query's answer."""
    channel = telegram()

    await channel.post(update("guest_message", payloads.guest_message()))
    await channel.post(update("guest_message", payloads.guest_message()))

    assert channel.sent() == []
    answers = [call.json for call in channel.platform.calls_to("/answerGuestQuery")]
    assert [a["guest_query_id"] for a in answers] == ["gq-5566", "gq-5566"]
    assert [a["result"]["input_message_content"] for a in answers] == [
        {"message_text": "Count: 1"},
        {"message_text": "Count: 2"},
    ]
    assert all(a["result"]["type"] == "article" and a["result"]["title"] for a in answers)
    assert len({a["result"]["id"] for a in answers}) == 2
    assert channel.session(tg(SUPERGROUP)).state == {"count": 2}


# -------------------------------------------------------------------- bad input


async def test_an_update_of_an_unknown_kind_is_acknowledged_and_ignored(telegram):
    channel = telegram(app=RECORDER)
    future = {"update_id": payloads.next_update_id(), "future_thing": {"id": 1, "chat": GROUP}}

    answer = await channel.post(future)

    assert answer.status == 200
    await assert_nothing_ran(channel)


@pytest.mark.parametrize(
    "update_id",
    [
        pytest.param("MISSING", id="missing"),
        pytest.param(None, id="null"),
        pytest.param("814300001", id="string"),
        pytest.param(814300001.0, id="float"),
        pytest.param(True, id="boolean"),
    ],
)
async def test_an_update_without_an_integer_update_id_is_refused_400(telegram, update_id):
    channel = telegram()
    body = text_update("hi")
    if update_id == "MISSING":
        del body["update_id"]
    else:
        body["update_id"] = update_id

    answer = await channel.post(body)

    assert answer.status == 400
    assert answer.body["ok"] is False and answer.body["error"]
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"update_id": 1, "message": {', id="malformed-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(payloads.encode([text_update("hi")]), id="json-array"),
    ],
)
async def test_a_body_that_is_not_an_update_object_is_refused_400(telegram, data):
    channel = telegram()

    answer = await channel.post(data)

    assert answer.status == 400
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


async def test_a_get_on_the_webhook_is_405(telegram):
    channel = telegram()

    answer = await channel.request("GET", channel.url)

    assert answer.status == 405
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


# ------------------------------------------------------------- Bot API failures


async def test_a_429_is_retried_after_the_wait_telegram_asks_for(telegram):
    channel = telegram()
    channel.platform.answer(
        SEND_MESSAGE,
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
        ),
        (
            200,
            {
                "ok": True,
                "result": tg_message(private_chat(ALICE), payloads.THE_BOT, "Count: 1"),
            },
        ),
    )

    started = time.monotonic()
    answer = await channel.post(text_update("hi"))
    elapsed = time.monotonic() - started

    assert answer.status == 200
    assert channel.sent() == [{"chat_id": ALICE["id"], "text": "Count: 1"}] * 2
    assert elapsed >= 1.0, "the retry waited retry_after seconds"
    assert channel.session(tg(ALICE)).state == {"count": 1}


async def test_a_bot_api_error_reaches_the_bot_with_telegrams_description(telegram):
    channel = telegram(app="tests.connectors.bots:catching_sender")
    channel.platform.answer(
        SEND_MESSAGE,
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
    )

    answer = await channel.post(text_update("hi"))

    assert answer.status == 200
    [outcome] = RECORDED
    assert "Bad Request: chat not found" in outcome["error"]
    assert outcome["type"] == "TelegramApiError"
    assert len(channel.sent()) == 1, "a 400 is not retried"


async def test_an_uncaught_bot_api_error_is_logged_answered_200_and_saves_nothing(telegram, caplog):
    channel = telegram()
    await channel.post(text_update("one"))
    channel.platform.answer(
        SEND_MESSAGE,
        (
            403,
            {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            },
        ),
    )

    with caplog.at_level(logging.ERROR):
        answer = await channel.post(text_update("two"))

    assert answer.status == 200
    assert "Forbidden: bot was blocked by the user" in caplog.text
    assert channel.session(tg(ALICE)).state == {"count": 1}
    assert TELEGRAM_TOKEN not in caplog.text, "the bot token never reaches the logs"
