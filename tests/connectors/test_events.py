"""The event vocabulary of API.md, read off documented webhook bodies (no API call).

Each body goes through the connector's own ``parse``, as it would from the webhook.
"""

from __future__ import annotations

from typing import Any

import pytest

from bottender.connectors.console import ConsoleConnector, ConsoleEvent
from bottender.connectors.line import LineConnector, LineEvent
from bottender.connectors.telegram import TelegramConnector, TelegramEvent
from tests.connectors import payloads

CROSS_PLATFORM = (
    "is_message",
    "is_text",
    "is_payload",
    "is_image",
    "is_video",
    "is_audio",
    "is_file",
    "is_sticker",
    "is_location",
)


def line_event(raw: dict[str, Any]) -> LineEvent:
    connector = LineConnector(
        path="/webhooks/line", initial_state={}, access_token="t", channel_secret="s"
    )
    (event,) = connector.parse(payloads.line_body(raw))
    assert isinstance(event, LineEvent)
    return event


def telegram_event(body: dict[str, Any]) -> TelegramEvent:
    (event,) = TelegramConnector(path="/t", initial_state={}, access_token="1:x").parse(body)
    assert isinstance(event, TelegramEvent)
    return event


def true_flags(event: Any, names: tuple[str, ...]) -> set[str]:
    return {name for name in names if getattr(event, name)}


# ------------------------------------------------------------------------------------ LINE


def test_a_line_text_message():
    event = line_event(payloads.text_event("hi there"))
    assert true_flags(event, CROSS_PLATFORM) == {"is_message", "is_text"}
    assert event.text == "hi there"
    assert event.type == "message" and event.message["type"] == "text"
    assert event.payload is None and event.location is None
    assert event.reply_token == event.raw["replyToken"]
    assert event.source == payloads.user_source()
    assert event.destination == payloads.LINE_BOT_USER_ID


@pytest.mark.parametrize(
    ("kind", "flag"),
    [
        ("image", "is_image"),
        ("video", "is_video"),
        ("audio", "is_audio"),
        ("file", "is_file"),
        ("location", "is_location"),
    ],
)
def test_line_media_messages_are_recognised_by_their_type(kind, flag):
    event = line_event(payloads.message_event(payloads.LINE_MESSAGES[kind]))
    assert true_flags(event, CROSS_PLATFORM) == {"is_message", flag}
    assert event.text is None


def test_a_line_sticker_and_a_location():
    assert true_flags(line_event(payloads.sticker_event()), CROSS_PLATFORM) == {
        "is_message",
        "is_sticker",
    }
    location = line_event(payloads.message_event(payloads.LINE_MESSAGES["location"])).location
    assert location == {
        "latitude": 35.67966,
        "longitude": 139.73669,
        "title": "my location",
        "address": "1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan",
    }


def test_a_line_postback_is_a_payload_with_its_picker_params():
    event = line_event(payloads.datetime_postback_event("PICK_DATE", {"date": "2026-12-24"}))
    assert true_flags(event, CROSS_PLATFORM) == {"is_payload"}
    assert event.is_postback
    assert event.payload == event.postback_data == "PICK_DATE"
    assert event.postback_params == {"date": "2026-12-24"}
    assert event.message is None and event.text is None
    plain = line_event(payloads.postback_event("BUY:1"))
    assert plain.payload == "BUY:1" and plain.postback_params is None


LINE_KINDS = {
    "follow": "is_follow",
    "unfollow": "is_unfollow",
    "join": "is_join",
    "leave": "is_leave",
    "memberJoined": "is_member_joined",
    "memberLeft": "is_member_left",
    "beacon": "is_beacon",
    "accountLink": "is_account_link",
    "unsend": "is_unsend",
    "videoPlayComplete": "is_video_play_complete",
    "postback": "is_postback",
}


def _line_kind(event_type: str) -> dict[str, Any]:
    builders = {
        "follow": payloads.follow_event,
        "unfollow": payloads.unfollow_event,
        "unsend": lambda: payloads.unsend_event("325708"),
        "postback": lambda: payloads.postback_event("x"),
    }
    builder = builders.get(event_type)
    return builder() if builder else payloads.line_kind_event(event_type)


@pytest.mark.parametrize("event_type", sorted(LINE_KINDS))
def test_each_line_event_type_has_exactly_its_own_flag(event_type):
    event = line_event(_line_kind(event_type))
    assert event.type == event_type
    assert true_flags(event, tuple(LINE_KINDS.values())) == {LINE_KINDS[event_type]}
    assert not event.is_message and event.text is None


# -------------------------------------------------------------------------------- Telegram


def test_a_telegram_text_message():
    event = telegram_event(payloads.text_update("hello bot"))
    assert true_flags(event, CROSS_PLATFORM) == {"is_message", "is_text"}
    assert event.kind == "message" and event.update is event.raw["message"]
    assert event.text == "hello bot"
    assert not event.is_command and event.command is None and event.command_args is None
    assert event.chat == payloads.private_chat(payloads.ALICE)
    assert event.sender == payloads.ALICE
    assert event.message_id == event.raw["message"]["message_id"]


@pytest.mark.parametrize(
    ("text", "command", "args"),
    [
        ("/start", "start", ""),
        ("/start@counter_bot", "start", ""),
        ("/start ref42", "start", "ref42"),
        ("/start@counter_bot  ref42 more ", "start", "ref42 more"),
        ("/help", "help", ""),
    ],
)
def test_a_telegram_command_with_or_without_the_bot_name(text, command, args):
    head, _, rest = text.partition(" ")
    event = telegram_event(payloads.command_update(head, rest))
    assert event.is_command and event.is_text
    assert (event.command, event.command_args) == (command, args)


@pytest.mark.parametrize("text", ["/", "/@bot", "start", "hi /start"])
def test_text_that_is_no_command(text):
    event = telegram_event(payloads.text_update(text))
    assert not event.is_command and event.command is None


def test_a_telegram_callback_query_is_a_payload():
    event = telegram_event(payloads.callback_update("BUY:7"))
    assert true_flags(event, CROSS_PLATFORM) == {"is_payload"}
    assert event.is_callback_query and event.kind == "callback_query"
    assert event.payload == event.callback_data == "BUY:7"
    assert event.update["id"] == "4382bfdwdsb323b2d9"
    # message is the one with the button: its chat and id, for edits and replies.
    assert event.message["text"] == "Pick one"
    assert event.message_id == event.raw["callback_query"]["message"]["message_id"]
    assert event.chat == payloads.private_chat(payloads.ALICE)
    assert event.sender == payloads.ALICE


TELEGRAM_MEDIA_FLAGS = {
    "photo": {"is_image", "is_photo"},
    "video": {"is_video"},
    "audio": {"is_audio"},
    "voice": {"is_voice"},
    "document": {"is_file", "is_document"},
    "sticker": {"is_sticker"},
    "location": {"is_location"},
    "contact": {"is_contact"},
}
ALL_TELEGRAM_FLAGS = (*CROSS_PLATFORM, "is_photo", "is_voice", "is_document", "is_contact")


@pytest.mark.parametrize("field", sorted(TELEGRAM_MEDIA_FLAGS))
def test_telegram_media_messages(field):
    event = telegram_event(payloads.media_update(field, payloads.TELEGRAM_MEDIA[field]))
    assert true_flags(event, ALL_TELEGRAM_FLAGS) == {"is_message", *TELEGRAM_MEDIA_FLAGS[field]}
    assert event.text is None


def test_a_telegram_location():
    event = telegram_event(payloads.media_update("location", payloads.TELEGRAM_MEDIA["location"]))
    assert event.location == payloads.TELEGRAM_MEDIA["location"]
    event.location["latitude"] = 0  # a copy: the raw update stays as Telegram sent it
    assert event.raw["message"]["location"]["latitude"] == 48.858844


@pytest.mark.parametrize("name", sorted(payloads.all_update_payloads()))
def test_every_update_kind_has_its_update_object_and_no_false_vocabulary(name):
    kind = name.partition(":")[0]
    event = telegram_event(payloads.update(kind, payloads.all_update_payloads()[name]))
    assert event.kind == kind and event.update == event.raw[kind]
    assert event.is_callback_query == (kind == "callback_query")
    assert event.is_inline_query == (kind == "inline_query")
    if kind != "callback_query":
        assert event.payload is None
    if not event.is_message:
        assert true_flags(event, ALL_TELEGRAM_FLAGS) <= {"is_payload"}


# --------------------------------------------------------------------------------- console


def test_console_events_speak_the_same_vocabulary():
    connector = ConsoleConnector(initial_state={}, write=lambda line: None)
    (typed,) = connector.parse({"text": "hi"})
    assert isinstance(typed, ConsoleEvent)
    assert true_flags(typed, CROSS_PLATFORM) == {"is_message", "is_text"}
    tapped = ConsoleEvent({"payload": "BUY:1"})
    assert true_flags(tapped, CROSS_PLATFORM) == {"is_payload"} and tapped.payload == "BUY:1"
    located = ConsoleEvent({"message": {"type": "location", "latitude": 1.5, "longitude": 2.5}})
    assert located.is_location and located.location == {"latitude": 1.5, "longitude": 2.5}
    assert ConsoleEvent({"message": {"type": "image"}}).is_image
