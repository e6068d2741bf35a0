"""The LINE connector, end to end: LINE's webhook -> live gateway -> fake LINE API.

Bodies are shaped as the Messaging API reference documents them (see
``payloads.py``) and signed as LINE signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid

import pytest

from tests.connectors import payloads
from tests.connectors.bots import RECORDED
from tests.connectors.conftest import LINE_ACCESS_TOKEN, LINE_SECRET
from tests.connectors.payloads import (
    group_source,
    line_body,
    line_id,
    room_source,
    text_event,
    user_source,
)

ALICE = line_id("U", "alice")
BOB = line_id("U", "bob")
FAMILY = line_id("C", "family")
TRIP = line_id("R", "trip")

RECORDER = "tests.connectors.bots:recorder"


def texts_of(calls: list[dict]) -> list[str]:
    return [message["text"] for call in calls for message in call["messages"]]


def header(call, name: str) -> str | None:
    return {key.lower(): value for key, value in call.headers.items()}.get(name.lower())


async def assert_nothing_ran(channel) -> None:
    assert channel.platform.calls == [], "the bot must not have called LINE"
    assert channel.sessions() == [], "no session may be written"
    assert RECORDED == []


async def assert_still_serving(channel) -> None:
    """The gateway still answers and still runs bots after refusing a request."""
    assert (await channel.healthz()).status == 200
    event = text_event("still there?", user_source("carol"))
    assert (await channel.post(line_body(event))).status == 200
    assert channel.replies()[-1] == {
        "replyToken": event["replyToken"],
        "messages": [{"type": "text", "text": "Count: 1"}],
    }


# ------------------------------------------------------------------ authenticity


async def test_a_body_signed_with_the_channel_secret_is_accepted_and_runs_the_bot(line):
    channel = line()

    answer = await channel.post(line_body(text_event("hi", user_source("alice"))))

    assert answer.status == 200
    assert texts_of(channel.replies()) == ["Count: 1"]
    assert channel.session(f"line:{ALICE}").state == {"count": 1}


async def test_the_signature_covers_the_raw_bytes_exactly_as_sent(line):
    """Whitespace and non-ASCII text are signed as they are; nothing is re-serialized."""
    channel = line()
    body = line_body(text_event("こんにちは 🐱", user_source("alice")))
    raw = json.dumps(body, indent=2, ensure_ascii=False).encode()

    answer = await channel.post(raw)

    assert answer.status == 200
    assert texts_of(channel.replies()) == ["Count: 1"]


def _signature_of_another_body(data: bytes) -> str:
    other = payloads.encode(line_body(text_event("something else")))
    return payloads.line_signature(other, LINE_SECRET)


def _signed_with_another_secret(data: bytes) -> str:
    return payloads.line_signature(data, "another-channel-secret")


def _hex_instead_of_base64(data: bytes) -> str:
    return hmac.new(LINE_SECRET.encode(), data, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda data: None, id="missing"),
        pytest.param(lambda data: "", id="empty"),
        pytest.param(lambda data: "not-a-signature", id="garbage"),
        pytest.param(_signature_of_another_body, id="signature-of-a-different-body"),
        pytest.param(_signed_with_another_secret, id="other-channel-secret"),
        pytest.param(_hex_instead_of_base64, id="hex-instead-of-base64"),
    ],
)
async def test_a_request_without_a_valid_signature_is_refused_401_and_the_bot_never_runs(
    line, make_signature
):
    channel = line()
    data = payloads.encode(line_body(text_event("hi", user_source("alice"))))
    signature = make_signature(data)

    answer = await channel.post(data, signature=signature)

    assert answer.status == 401
    assert answer.body["ok"] is False
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


async def test_the_signature_header_name_is_case_insensitive(line):
    channel = line()
    data = payloads.encode(line_body(text_event("hi", user_source("alice"))))

    answer = await channel.post_bytes(
        data, {"x-line-signature": payloads.line_signature(data, LINE_SECRET)}
    )

    assert answer.status == 200
    assert texts_of(channel.replies()) == ["Count: 1"]


async def test_a_body_changed_after_signing_is_refused(line):
    channel = line()
    signed = payloads.encode(line_body(text_event("pay 10", user_source("alice"))))
    tampered = signed.replace(b"pay 10", b"pay 99")

    answer = await channel.post(tampered, signature=payloads.line_signature(signed, LINE_SECRET))

    assert answer.status == 401
    await assert_nothing_ran(channel)


# ------------------------------------------------------------- verify requests


async def test_the_consoles_verify_request_is_answered_200_and_runs_nothing(line):
    channel = line()

    answer = await channel.post(payloads.verify_body())

    assert answer.status == 200
    await assert_nothing_ran(channel)


async def test_events_with_the_dummy_verify_reply_tokens_are_answered_200_and_run_nothing(line):
    channel = line()

    answer = await channel.post(payloads.dummy_token_body())

    assert answer.status == 200
    await assert_nothing_ran(channel)


# ------------------------------------------------------------------ session ids


@pytest.mark.parametrize(
    ("source", "session_id", "who"),
    [
        pytest.param(
            user_source("alice"),
            f"line:{ALICE}",
            {"user": {"id": ALICE}, "group": None, "room": None},
            id="user",
        ),
        pytest.param(
            group_source("family", "alice"),
            f"line:{FAMILY}",
            {"user": {"id": ALICE}, "group": {"id": FAMILY}, "room": None},
            id="group",
        ),
        pytest.param(
            group_source("family", user=None),
            f"line:{FAMILY}",
            {"user": None, "group": {"id": FAMILY}, "room": None},
            id="group-without-userId",
        ),
        pytest.param(
            room_source("trip", "alice"),
            f"line:{TRIP}",
            {"user": {"id": ALICE}, "group": None, "room": {"id": TRIP}},
            id="room",
        ),
    ],
)
async def test_the_session_is_the_user_group_or_room_the_event_comes_from(
    line, source, session_id, who
):
    channel = line(app=RECORDER)

    assert (await channel.post(line_body(text_event("hi", source)))).status == 200

    assert RECORDED == [
        {"platform": "line", "session_id": session_id, "channel": None, "text": "hi", **who}
    ]
    stored = channel.session(session_id)
    assert (stored.user, stored.group, stored.room) == (who["user"], who["group"], who["room"])


async def test_a_group_session_is_shared_by_everyone_in_the_group(line):
    channel = line()
    body = line_body(
        text_event("hi", group_source("family", "alice")),
        text_event("hello", group_source("family", "bob")),
    )

    assert (await channel.post(body)).status == 200

    assert texts_of(channel.replies()) == ["Count: 1", "Count: 2"]
    stored = channel.session(f"line:{FAMILY}")
    assert stored.state == {"count": 2}
    assert stored.user == {"id": BOB}, "the session names who spoke last"
    assert channel.session(f"line:{ALICE}") is None


async def test_an_event_from_an_unknown_kind_of_source_runs_the_bot_without_a_session(line):
    channel = line(app=RECORDER)
    source = {"type": "futureChatKind", "futureChatKindId": "F0123456789abcdef"}

    answer = await channel.post(line_body(text_event("hi", source)))

    assert answer.status == 200
    assert RECORDED == [
        {
            "platform": "line",
            "session_id": None,
            "user": None,
            "group": None,
            "room": None,
            "channel": None,
            "text": "hi",
        }
    ]
    assert channel.sessions() == []


# ---------------------------------------------------- several events in one body


async def test_events_of_one_session_in_one_body_run_in_order(line):
    channel = line()
    events = [text_event(f"#{n}", user_source("alice")) for n in (1, 2, 3)]

    assert (await channel.post(line_body(*events))).status == 200

    assert [(r["replyToken"], r["messages"][0]["text"]) for r in channel.replies()] == [
        (events[0]["replyToken"], "Count: 1"),
        (events[1]["replyToken"], "Count: 2"),
        (events[2]["replyToken"], "Count: 3"),
    ]
    assert channel.session(f"line:{ALICE}").state == {"count": 3}


async def test_every_kind_of_event_in_a_body_is_handled(line):
    channel = line()
    body = line_body(
        payloads.follow_event(user_source("alice")),
        text_event("hi", user_source("alice")),
        payloads.postback_event("action=buy&itemid=111", user_source("alice")),
        payloads.sticker_event(user_source("alice")),
    )

    assert (await channel.post(body)).status == 200

    assert texts_of(channel.replies()) == ["Count: 1", "Count: 2", "Count: 3", "Count: 4"]


async def test_each_session_in_one_body_gets_its_own_state(line):
    channel = line()
    alice_1 = text_event("a1", user_source("alice"))
    bob_1 = text_event("b1", user_source("bob"))
    alice_2 = text_event("a2", user_source("alice"))
    family_1 = text_event("f1", group_source("family", "alice"))
    trip_1 = text_event("t1", room_source("trip", "bob"))

    answer = await channel.post(line_body(alice_1, bob_1, alice_2, family_1, trip_1))

    assert answer.status == 200
    by_token = {r["replyToken"]: r["messages"][0]["text"] for r in channel.replies()}
    assert by_token == {
        alice_1["replyToken"]: "Count: 1",
        alice_2["replyToken"]: "Count: 2",
        bob_1["replyToken"]: "Count: 1",
        family_1["replyToken"]: "Count: 1",
        trip_1["replyToken"]: "Count: 1",
    }
    states = {session.id: session.state for session in channel.sessions()}
    assert states == {
        f"line:{ALICE}": {"count": 2},
        f"line:{BOB}": {"count": 1},
        f"line:{FAMILY}": {"count": 1},
        f"line:{TRIP}": {"count": 1},
    }


async def test_a_redelivered_event_runs_once(line):
    channel = line()
    event = text_event("hi", user_source("alice"))
    redelivery = {**event, "deliveryContext": {"isRedelivery": True}}

    assert (await channel.post(line_body(event))).status == 200
    assert (await channel.post(line_body(redelivery))).status == 200

    assert texts_of(channel.replies()) == ["Count: 1"]
    assert channel.session(f"line:{ALICE}").state == {"count": 1}


# ---------------------------------------------------------------------- replies


async def test_a_reply_goes_to_the_reply_endpoint_with_the_events_token_and_access_token(line):
    channel = line()
    event = text_event("hi", user_source("alice"))

    await channel.post(line_body(event))

    [call] = channel.platform.calls
    assert (call.method, call.path) == ("POST", "/v2/bot/message/reply")
    assert header(call, "Authorization") == f"Bearer {LINE_ACCESS_TOKEN}"
    assert header(call, "Content-Type").startswith("application/json")
    assert call.json == {
        "replyToken": event["replyToken"],
        "messages": [{"type": "text", "text": "Count: 1"}],
    }


@pytest.mark.parametrize(
    ("source", "to"),
    [
        pytest.param(user_source("alice"), ALICE, id="user"),
        pytest.param(group_source("family", "alice"), FAMILY, id="group"),
        pytest.param(room_source("trip", "alice"), TRIP, id="room"),
    ],
)
async def test_messages_beyond_the_five_a_reply_carries_are_pushed_to_the_conversation(
    line, source, to
):
    channel = line(app="tests.connectors.bots:seven_texts")
    event = text_event("tell me everything", source)

    assert (await channel.post(line_body(event))).status == 200

    reply, push = channel.platform.calls
    assert reply.path == "/v2/bot/message/reply"
    assert reply.json["replyToken"] == event["replyToken"]
    assert texts_of([reply.json]) == [f"message {n}" for n in range(1, 6)]
    assert push.path == "/v2/bot/message/push"
    assert push.json["to"] == to
    assert texts_of([push.json]) == ["message 6", "message 7"]
    assert header(push, "Authorization") == f"Bearer {LINE_ACCESS_TOKEN}"
    uuid.UUID(header(push, "X-Line-Retry-Key"))  # a retried push is accepted once only


async def test_push_text_pushes_even_when_the_event_could_be_replied_to(line):
    channel = line(app="tests.connectors.bots:line_reply_and_push")
    event = text_event("hi", user_source("alice"))

    await channel.post(line_body(event))

    assert channel.replies() == [
        {"replyToken": event["replyToken"], "messages": [{"type": "text", "text": "replied"}]}
    ]
    assert channel.pushes() == [{"to": ALICE, "messages": [{"type": "text", "text": "pushed"}]}]


@pytest.mark.parametrize(
    ("event", "to"),
    [
        pytest.param(payloads.unfollow_event(user_source("alice")), ALICE, id="unfollow"),
        pytest.param(
            payloads.unsend_event("325708", group_source("family", "alice")), FAMILY, id="unsend"
        ),
    ],
)
async def test_an_event_without_a_reply_token_is_answered_by_push(line, event, to):
    channel = line()

    assert (await channel.post(line_body(event))).status == 200

    assert channel.replies() == []
    assert channel.pushes() == [{"to": to, "messages": [{"type": "text", "text": "Count: 1"}]}]


async def test_pushes_carry_at_most_five_messages_each(line):
    channel = line(app="tests.connectors.bots:seven_texts")

    await channel.post(line_body(payloads.unfollow_event(user_source("alice"))))

    assert channel.replies() == []
    assert [len(push["messages"]) for push in channel.pushes()] == [5, 2]
    assert texts_of(channel.pushes()) == [f"message {n}" for n in range(1, 8)]
    keys = [header(call, "X-Line-Retry-Key") for call in channel.platform.calls]
    assert len(set(keys)) == 2, "each push call has its own retry key"


# -------------------------------------------------------------------- bad input


async def test_an_event_of_an_unknown_type_is_acknowledged_and_ignored(line):
    channel = line()

    answer = await channel.post(line_body(payloads.future_event(user_source("alice"))))

    assert answer.status == 200
    await assert_nothing_ran(channel)


async def test_unknown_events_are_skipped_and_the_known_ones_beside_them_still_run(line):
    channel = line()
    known = text_event("hi", user_source("alice"))

    body = line_body(payloads.future_event(user_source("alice")), known)
    assert (await channel.post(body)).status == 200

    assert channel.replies() == [
        {"replyToken": known["replyToken"], "messages": [{"type": "text", "text": "Count: 1"}]}
    ]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"destination": "U1", "events": [', id="malformed-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf-8"),
        pytest.param(payloads.encode([text_event("hi")]), id="json-array"),
        pytest.param(payloads.encode({"destination": "U1"}), id="no-events"),
        pytest.param(
            payloads.encode({"destination": "U1", "events": {"0": text_event("hi")}}),
            id="events-not-a-list",
        ),
        pytest.param(payloads.encode(line_body("hi")), id="event-not-an-object"),
    ],
)
async def test_a_signed_body_that_is_not_a_line_webhook_is_refused_400(line, data):
    channel = line()

    answer = await channel.post(data)

    assert answer.status == 400
    assert answer.body["ok"] is False and answer.body["error"]
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


async def test_a_body_over_the_configured_size_is_refused_413(line):
    channel = line(server={"max_body_size": 1000})
    big = payloads.encode(line_body(text_event("x" * 2000, user_source("alice"))))

    answer = await channel.post(big)

    assert answer.status == 413
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


async def test_a_streamed_body_over_the_size_limit_is_refused_413(line):
    """Without a Content-Length the limit is enforced while reading."""
    channel = line(server={"max_body_size": 1000})
    big = payloads.encode(line_body(text_event("x" * 2000, user_source("alice"))))

    async def chunks():
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    answer = await channel.post_bytes(
        chunks(), {"X-Line-Signature": payloads.line_signature(big, LINE_SECRET)}
    )

    assert answer.status == 413
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


async def test_a_get_on_the_webhook_is_405(line):
    channel = line()

    answer = await channel.request("GET", channel.url)

    assert answer.status == 405
    await assert_nothing_ran(channel)
    await assert_still_serving(channel)


# ------------------------------------------------------------ LINE API failures


async def test_a_refused_reply_is_logged_answered_200_and_leaves_the_session_unchanged(
    line, caplog
):
    channel = line()
    await channel.post(line_body(text_event("one", user_source("alice"))))
    channel.platform.answer("/v2/bot/message/reply", (400, {"message": "Invalid reply token"}))

    with caplog.at_level(logging.WARNING):
        answer = await channel.post(line_body(text_event("two", user_source("alice"))))

    assert answer.status == 200
    assert "Invalid reply token" in caplog.text
    assert any(r.levelno >= logging.ERROR for r in caplog.records)
    assert channel.session(f"line:{ALICE}").state == {"count": 1}
    assert channel.pushes() == []


async def test_with_reply_fallback_to_push_a_refused_reply_is_pushed_and_the_session_saved(
    line, caplog
):
    channel = line(reply_fallback_to_push=True)
    channel.platform.answer("/v2/bot/message/reply", (400, {"message": "Invalid reply token"}))

    with caplog.at_level(logging.WARNING):
        answer = await channel.post(line_body(text_event("hi", user_source("alice"))))

    assert answer.status == 200
    assert len(channel.replies()) == 1
    assert channel.pushes() == [{"to": ALICE, "messages": [{"type": "text", "text": "Count: 1"}]}]
    assert channel.session(f"line:{ALICE}").state == {"count": 1}
    assert "Invalid reply token" in caplog.text


async def test_reply_fallback_to_push_does_not_hide_other_api_errors(line):
    channel = line(reply_fallback_to_push=True)
    channel.platform.answer(
        "/v2/bot/message/reply", (401, {"message": "Authentication failed. Confirm the token."})
    )

    answer = await channel.post(line_body(text_event("hi", user_source("alice"))))

    assert answer.status == 200
    assert channel.pushes() == []
    assert channel.session(f"line:{ALICE}") is None


async def test_with_reply_fallback_to_push_every_message_of_a_refused_reply_is_pushed(line):
    channel = line(app="tests.connectors.bots:seven_texts", reply_fallback_to_push=True)
    channel.platform.answer("/v2/bot/message/reply", (400, {"message": "Invalid reply token"}))

    await channel.post(line_body(text_event("hi", group_source("family", "alice"))))

    assert [push["to"] for push in channel.pushes()] == [FAMILY, FAMILY]
    assert texts_of(channel.pushes()) == [f"message {n}" for n in range(1, 8)]


async def test_the_logged_error_carries_the_details_line_gives(line, caplog):
    channel = line()
    channel.platform.answer(
        "/v2/bot/message/reply",
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "May not be empty", "property": "messages[0].text"}],
            },
        ),
    )

    with caplog.at_level(logging.ERROR):
        await channel.post(line_body(text_event("hi", user_source("alice"))))

    assert "The request body has 1 error(s)" in caplog.text
    assert "messages[0].text: May not be empty" in caplog.text
