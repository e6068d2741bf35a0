"""LINE's rich messages and calls, against the fake LINE API, each call checked by line-bot-sdk.

The context is the real one a started connector hands the bot; every request
it makes is validated against line-bot-sdk v3's request models
(``tests/fixtures/schemas.py``), so a field LINE does not document fails here.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from linebot.v3.messaging import (
    ButtonsTemplate,
    FlexBox,
    FlexBubble,
    FlexText,
    ImageMessage,
    MessageAction,
    PostbackAction,
    QuickReply,
    QuickReplyItem,
    TemplateMessage,
    TextMessage,
)

from bottender.connectors.api import PlatformUnreachable
from bottender.connectors.line import LineConnector, LineContext
from bottender.connectors.line_api import DEFAULT_DATA_ORIGIN, LineApiError, LineClient
from tests.connectors.bots import RECORDED
from tests.connectors.payloads import (
    group_source,
    line_body,
    room_source,
    sticker_event,
    text_event,
    user_source,
)
from tests.fixtures.contexts import started_context
from tests.fixtures.schemas import assert_valid_calls
from tests.fixtures.tunnels import free_port

TOKEN = "line-access-token"
PICTURE = "https://example.com/cat.jpg"
YES = {"type": "message", "label": "Yes", "text": "yes"}
NO = {"type": "postback", "label": "No", "data": "ANSWER:no", "displayText": "No"}


@pytest.fixture
def context_of(http, fake_platform):
    """``await context_of(event)``: the context a started LINE connector gives the bot."""

    async def make(event: dict[str, Any]) -> LineContext:
        connector = LineConnector(
            path="/webhooks/line",
            initial_state={},
            access_token=TOKEN,
            channel_secret="secret",
            origin=fake_platform.origin,
        )
        return await started_context(connector, http, line_body(event))

    return make


def messages_sent(fake_platform) -> list[dict[str, Any]]:
    return [m for call in fake_platform.calls for m in (call.json or {}).get("messages", [])]


# --- every message kind -----------------------------------------------------------------------


async def test_every_message_kind_is_buffered_then_replied_and_pushed(context_of, fake_platform):
    event = text_event("menu")
    context = await context_of(event)
    await context.send_text("Pick one", quick_reply=[YES, NO])
    await context.send_image(PICTURE)
    await context.send_video("https://example.com/a.mp4", preview_url=PICTURE)
    await context.send_audio("https://example.com/a.m4a", duration_ms=60000)
    await context.send_location(
        title="Shop", address="1-1 Chiyoda", latitude=35.68, longitude=139.76
    )
    await context.send_sticker(446, 1988)
    await context.send_flex(
        "A bubble",
        {
            "type": "bubble",
            "body": {
                "type": "box",
                "layout": "vertical",
                "contents": [{"type": "text", "text": "Hello"}],
            },
        },
    )
    await context.send_buttons_template(
        "Menu", text="What now?", actions=[YES, NO], title="Menu", thumbnail_url=PICTURE
    )
    await context.send_confirm_template("Sure?", text="Sure?", actions=[YES, NO])
    await context.send_carousel_template(
        "Products",
        [
            {"title": "Tea", "text": "Green", "actions": [YES]},
            {"title": "Cake", "text": "Cheese", "actions": [NO]},
        ],
        imageAspectRatio="square",
    )
    assert fake_platform.calls == [], "LINE messages wait for the action chain to return"

    await context.flush()

    [reply] = fake_platform.calls_to("/v2/bot/message/reply")
    [push] = fake_platform.calls_to("/v2/bot/message/push")
    assert reply.json["replyToken"] == event["replyToken"]
    assert push.json["to"] == event["source"]["userId"]
    assert [m["type"] for m in reply.json["messages"]] == [
        "text",
        "image",
        "video",
        "audio",
        "location",
    ]
    assert [m["type"] for m in push.json["messages"]] == ["sticker", "flex", *["template"] * 3]
    sent = messages_sent(fake_platform)
    assert sent[0]["quickReply"] == {
        "items": [{"type": "action", "action": YES}, {"type": "action", "action": NO}]
    }
    assert sent[1] == {"type": "image", "originalContentUrl": PICTURE, "previewImageUrl": PICTURE}
    assert sent[3]["duration"] == 60000
    assert sent[5] == {"type": "sticker", "packageId": "446", "stickerId": "1988"}
    assert sent[7]["template"] == {
        "type": "buttons",
        "text": "What now?",
        "actions": [YES, NO],
        "title": "Menu",
        "thumbnailImageUrl": PICTURE,
    }
    assert [c["title"] for c in sent[9]["template"]["columns"]] == ["Tea", "Cake"]
    assert assert_valid_calls(fake_platform.calls) == 2


async def test_quick_reply_rides_on_the_message_it_is_given_to(context_of, fake_platform):
    context = await context_of(text_event("hi"))
    camera = {"type": "action", "imageUrl": PICTURE, "action": {"type": "camera", "label": "Snap"}}
    await context.send_text("no buttons")
    await context.send_image(PICTURE, quick_reply=[camera, {"type": "location", "label": "Where"}])
    await context.flush()
    plain, image = messages_sent(fake_platform)
    assert "quickReply" not in plain
    assert image["quickReply"]["items"] == [
        camera,
        {"type": "action", "action": {"type": "location", "label": "Where"}},
    ]
    assert_valid_calls(fake_platform.calls)


async def test_send_and_push_are_awaitable_and_take_any_message(context_of, fake_platform):
    event = text_event("hi")
    context = await context_of(event)
    await context.send({"type": "text", "text": "one"}, {"type": "text", "text": "two"})
    await context.push({"type": "text", "text": "pushed"})
    await context.reply_text("replied", quick_reply=[YES])
    await context.push_text("pushed too")
    await context.flush()
    [reply] = fake_platform.calls_to("/reply")
    [push] = fake_platform.calls_to("/push")
    assert [m["text"] for m in reply.json["messages"]] == ["one", "two", "replied"]
    assert [m["text"] for m in push.json["messages"]] == ["pushed", "pushed too"]
    assert_valid_calls(fake_platform.calls)


async def test_without_a_reply_token_every_send_is_pushed(context_of, fake_platform):
    event = text_event("hi", group_source())
    del event["replyToken"]
    context = await context_of(event)
    await context.send_image(PICTURE)
    await context.send_text("hi")
    await context.flush()
    [push] = fake_platform.calls
    assert push.path == "/v2/bot/message/push"
    assert push.json["to"] == event["source"]["groupId"]
    assert_valid_calls(fake_platform.calls)


async def test_line_bot_sdk_objects_are_sent_as_their_json(context_of, fake_platform):
    context = await context_of(text_event("hi"))
    quick = QuickReply(items=[QuickReplyItem(action=MessageAction(label="Again", text="again"))])
    await context.send(
        TextMessage(text="from the SDK", quick_reply=quick),
        ImageMessage(original_content_url=PICTURE, preview_image_url=PICTURE),
    )
    await context.send_text("Pick", quick_reply=[PostbackAction(label="Buy", data="BUY:1")])
    await context.flush()
    text, image, pick = messages_sent(fake_platform)
    assert text == {
        "type": "text",
        "text": "from the SDK",
        "quickReply": {
            "items": [
                {"type": "action", "action": {"type": "message", "label": "Again", "text": "again"}}
            ]
        },
    }
    assert image["originalContentUrl"] == PICTURE
    assert pick["quickReply"]["items"][0]["action"] == {
        "type": "postback",
        "label": "Buy",
        "data": "BUY:1",
    }
    assert_valid_calls(fake_platform.calls)


async def test_sdk_flex_templates_and_actions_at_any_depth(context_of, fake_platform):
    context = await context_of(text_event("hi"))
    bubble = FlexBubble(body=FlexBox(layout="vertical", contents=[FlexText(text="Hello")]))
    await context.send_flex("A bubble", bubble)
    buy = PostbackAction(label="Buy", data="BUY:1")
    await context.send_buttons_template("Menu", text="Tea?", actions=[buy])
    await context.send(
        TemplateMessage(alt_text="Menu", template=ButtonsTemplate(text="Cake?", actions=[buy]))
    )
    await context.flush()
    flex, buttons, template = messages_sent(fake_platform)
    assert flex["contents"]["body"]["contents"] == [{"type": "text", "text": "Hello"}]
    expected = {"type": "postback", "label": "Buy", "data": "BUY:1"}
    assert buttons["template"]["actions"] == [expected]
    assert template["template"]["actions"] == [expected]
    assert_valid_calls(fake_platform.calls)


async def test_a_message_is_copied_when_sent_and_must_be_json(context_of, fake_platform):
    context = await context_of(text_event("hi"))
    message = {"type": "text", "text": "before"}
    await context.send(message)
    message["text"] = "after"
    with pytest.raises(TypeError, match="a LINE message must be JSON or an SDK object"):
        await context.send({"type": "text", "text": object()})
    await context.flush()
    assert messages_sent(fake_platform) == [{"type": "text", "text": "before"}]


async def test_a_refusal_names_the_call_the_status_and_lines_reason(context_of, fake_platform):
    fake_platform.answer(
        "/v2/bot/message/reply",
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "must be specified", "property": "messages[0].text"}],
            },
        ),
    )
    context = await context_of(text_event("hi"))
    await context.send({"type": "text"})
    with pytest.raises(LineApiError) as caught:
        await context.flush()
    assert str(caught.value) == (
        "LINE API error 400 in POST /v2/bot/message/reply:"
        " The request body has 1 error(s) (messages[0].text: must be specified)"
    )
    assert (caught.value.status, caught.value.method) == (400, "POST /v2/bot/message/reply")


# --- calls made at once -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "path"),
    [
        (user_source("alice"), "/v2/bot/profile/{user}"),
        (group_source("family", "alice"), "/v2/bot/group/{group}/member/{user}"),
        (room_source("trip", "alice"), "/v2/bot/room/{room}/member/{user}"),
    ],
)
async def test_get_user_profile_asks_for_the_sender_where_they_wrote(
    context_of, fake_platform, source, path
):
    context = await context_of(text_event("who am I?", source))
    profile = await context.get_user_profile()
    user = source["userId"]
    assert profile == {"userId": user, "displayName": f"user {user}", "language": "en"}
    [call] = fake_platform.calls
    assert call.method == "GET"
    assert call.path == path.format(
        user=user, group=source.get("groupId"), room=source.get("roomId")
    )
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert_valid_calls(fake_platform.calls)


CONTENT = bytes(range(256)) * 1200  # 300 KiB: several chunks


def image_event(source: dict[str, Any] | None = None) -> dict[str, Any]:
    event = sticker_event(source)
    event["message"] = {
        "id": "325708",
        "type": "image",
        "contentProvider": {"type": "line"},
        "quoteToken": "q1",
    }
    return event


async def test_get_message_content_returns_the_bytes(context_of, fake_platform):
    fake_platform.answer("/v2/bot/message/325708/content", (200, CONTENT))
    context = await context_of(image_event())
    assert await context.get_message_content() == CONTENT
    [call] = fake_platform.calls
    assert (call.method, call.path) == ("GET", "/v2/bot/message/325708/content")
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert_valid_calls(fake_platform.calls)


async def test_get_message_content_streams_into_a_path_or_a_file(
    context_of, fake_platform, tmp_path
):
    fake_platform.answer("/v2/bot/message/325708/content", (200, CONTENT))
    context = await context_of(image_event())
    target = tmp_path / "picture.jpg"
    assert await context.get_message_content(to=target) == len(CONTENT)
    assert target.read_bytes() == CONTENT
    named = tmp_path / "by-name.jpg"
    assert await context.get_message_content(to=str(named)) == len(CONTENT)
    assert named.read_bytes() == CONTENT
    buffer = io.BytesIO()
    assert await context.get_message_content(to=buffer) == len(CONTENT)
    assert buffer.getvalue() == CONTENT


async def test_message_content_comes_in_chunks(http, fake_platform):
    fake_platform.answer("/v2/bot/message/325708/content", (200, CONTENT))
    client = LineClient(http, TOKEN, fake_platform.origin)
    chunks = [chunk async for chunk in client.iter_message_content("325708", chunk_size=4096)]
    assert len(chunks) > 1 and max(map(len, chunks)) <= 4096
    assert b"".join(chunks) == CONTENT


async def test_message_content_refused_names_the_call(context_of, fake_platform):
    fake_platform.answer("/v2/bot/message/325708/content", (404, {"message": "Not found"}))
    context = await context_of(image_event())
    with pytest.raises(LineApiError) as caught:
        await context.get_message_content()
    assert (
        str(caught.value) == "LINE API error 404 in GET /v2/bot/message/325708/content: Not found"
    )


def test_message_content_is_fetched_from_lines_data_host(http):
    assert LineClient(http, TOKEN)._data_origin == DEFAULT_DATA_ORIGIN == "https://api-data.line.me"
    assert LineClient(http, TOKEN, "http://127.0.0.1:9")._data_origin == "http://127.0.0.1:9"


async def test_get_message_content_of_a_text_only_event_is_an_error(context_of):
    context = await context_of(text_event("hi"))
    context.event.raw["message"] = None
    with pytest.raises(RuntimeError, match="no message"):
        await context.get_message_content()


@pytest.mark.parametrize(
    ("source", "path"),
    [
        (group_source("family"), "/v2/bot/group/{group}/leave"),
        (room_source("trip"), "/v2/bot/room/{room}/leave"),
    ],
)
async def test_leave_leaves_the_group_or_room(context_of, fake_platform, source, path):
    context = await context_of(text_event("bye", source))
    await context.leave()
    [call] = fake_platform.calls
    assert (call.method, call.path) == (
        "POST",
        path.format(group=source.get("groupId"), room=source.get("roomId")),
    )
    assert_valid_calls(fake_platform.calls)


async def test_a_one_to_one_chat_cannot_be_left(context_of, fake_platform):
    context = await context_of(text_event("bye", user_source()))
    with pytest.raises(RuntimeError, match="group or a room"):
        await context.leave()
    assert fake_platform.calls == []


async def test_show_loading_animation_in_a_one_to_one_chat(context_of, fake_platform):
    event = text_event("think", user_source())
    context = await context_of(event)
    await context.show_loading_animation()
    await context.show_loading_animation(seconds=20)
    assert [c.json for c in fake_platform.calls_to("/v2/bot/chat/loading/start")] == [
        {"chatId": event["source"]["userId"], "loadingSeconds": 5},
        {"chatId": event["source"]["userId"], "loadingSeconds": 20},
    ]
    assert_valid_calls(fake_platform.calls)


async def test_show_loading_animation_in_a_group_does_nothing(context_of, fake_platform):
    context = await context_of(text_event("think", group_source()))
    assert await context.show_loading_animation() is None
    assert fake_platform.calls == []


@pytest.mark.parametrize("seconds", [0, 7, 65, 5.0])
async def test_show_loading_animation_takes_lines_durations_only(
    context_of, fake_platform, seconds
):
    context = await context_of(text_event("think"))
    with pytest.raises(ValueError, match=r"5, 10, \.\.\. 60"):
        await context.show_loading_animation(seconds=seconds)
    assert fake_platform.calls == []


# --- through the gateway ----------------------------------------------------------------------


async def test_a_bot_awaits_rich_sends_and_the_runtime_flushes_them(line):
    channel = line(app="tests.connectors.bots:rich_line")
    event = text_event("menu")
    assert (await channel.post(line_body(event))).status == 200
    [reply] = channel.replies()
    assert [m["type"] for m in reply["messages"]] == ["template", "image", "text"]
    assert reply["messages"][2]["quickReply"]["items"][0]["action"]["text"] == "again"
    assert RECORDED == [{"sent": None}]
    assert_valid_calls(channel.platform.calls)


async def test_message_content_is_retried_while_line_is_busy(http, fake_platform):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    fake_platform.answer(
        "/v2/bot/message/325708/content",
        (429, {"message": "Too many requests"}),
        (503, {"message": "Service unavailable"}),
        (200, CONTENT),
    )
    client = LineClient(http, TOKEN, fake_platform.origin, sleep=sleep)
    assert await client.get_message_content("325708") == CONTENT
    assert len(waits) == 2 and len(fake_platform.calls) == 3


async def test_message_content_from_nowhere_is_platform_unreachable(http):
    client = LineClient(http, TOKEN, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PlatformUnreachable, match="LINE API unreachable: cannot connect"):
        await client.get_message_content("325708")
