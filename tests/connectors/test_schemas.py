"""The schema check itself can fail: it rejects what LINE or Telegram would not accept.

The message tests rely on ``assert_valid_calls`` to prove every request is
documented; these tests prove it is not a rubber stamp.
"""

from __future__ import annotations

from typing import Any

import pytest

from bottender.connectors.line import LineConnector
from tests.connectors.payloads import line_body, text_event
from tests.fixtures.contexts import started_context
from tests.fixtures.platform_api import Recorded, Upload
from tests.fixtures.schemas import SchemaError, assert_valid_calls, validate_call

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
KEYBOARD = {"inline_keyboard": [[{"text": "Buy", "callback_data": "BUY:1"}]]}


def line_reply(*messages: dict[str, Any]) -> Recorded:
    body = {"replyToken": "b60d432864f44d079f6d8efe86cf404b", "messages": list(messages)}
    return Recorded("POST", "/v2/bot/message/reply", {}, body)


def telegram(method: str, params: dict[str, Any] | None = None, form=None) -> Recorded:
    return Recorded("POST", f"/bot{TOKEN}/{method}", {}, params, form)


VALID = [
    line_reply({"type": "text", "text": "hi"}),
    Recorded(
        "POST",
        "/v2/bot/message/push",
        {},
        {"to": "U1", "messages": [{"type": "text", "text": "hi"}]},
    ),
    Recorded("GET", "/v2/bot/profile/U1", {}, None),
    Recorded("GET", "/v2/bot/message/1/content", {}, None),
    telegram("sendMessage", {"chat_id": 1, "text": "hi", "reply_markup": KEYBOARD}),
    telegram(
        "sendPhoto",
        form={
            "chat_id": "1",
            "photo": Upload("p.png", "application/octet-stream", b"png"),
            "reply_markup": '{"inline_keyboard":[[{"text":"Buy","callback_data":"BUY:1"}]]}',
        },
    ),
]


def test_documented_requests_pass():
    assert assert_valid_calls(VALID) == len(VALID)


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (line_reply({"type": "text", "txt": "hi"}), "ReplyMessageRequest refuses"),
        (
            line_reply({"type": "text", "text": "hi", "quickreply": {}}),
            "unknown field 'quickreply'",
        ),
        (line_reply({"type": "image", "originalContentUrl": "https://x/a.jpg"}), "refuses"),
        (line_reply({"type": "picture", "url": "https://x/a.jpg"}), "refuses"),
        (
            line_reply(
                {
                    "type": "template",
                    "altText": "m",
                    "template": {
                        "type": "buttons",
                        "text": "t",
                        "actions": [{"type": "message", "label": "a", "txt": "a"}],
                    },
                }
            ),
            "actions\\[0\\]: unknown field 'txt'",
        ),
        (Recorded("POST", "/v2/bot/message/replies", {}, {}), "no LINE endpoint"),
        (Recorded("GET", "/v2/bot/profile/U1", {}, {"x": 1}), "takes no body"),
        (telegram("sendMessage", {"chat_idd": 1, "text": "hi"}), "SendMessage refuses"),
        (telegram("sendMessage", {"chat_id": 1, "text": "hi", "parse_mod": "HTML"}), "parse_mod"),
        (
            telegram(
                "sendMessage",
                {
                    "chat_id": 1,
                    "text": "hi",
                    "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_dat": "A"}]]},
                },
            ),
            "callback_dat",
        ),
        (telegram("sendPhoto", form={"chat_id": "1", "foto": Upload("p", "x", b"")}), "refuses"),
        (telegram("sendFoto", {"chat_id": 1}), "no Bot API method 'sendFoto'"),
    ],
)
def test_a_missing_or_misspelled_field_is_rejected(call, complaint):
    with pytest.raises(SchemaError, match=complaint):
        validate_call(call)


async def test_a_misspelled_message_sent_through_the_context_is_caught(http, fake_platform):
    """What a bot can build wrongly through ``send`` is what the check catches."""
    connector = LineConnector(
        path="/l",
        initial_state={},
        access_token="t",
        channel_secret="s",
        origin=fake_platform.origin,
    )
    context = await started_context(connector, http, line_body(text_event("hi")))
    await context.send({"type": "sticker", "packageId": "446", "stickrId": "1988"})
    await context.flush()
    with pytest.raises(SchemaError, match="refuses"):
        assert_valid_calls(fake_platform.calls)
