"""Telegram's sends, edits and answers, against the fake Bot API, each call checked by aiogram.

The context is the real one a started connector hands the bot; every request
it makes (JSON or multipart) is validated against aiogram's method models
(``tests/fixtures/schemas.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiogram.types import (
    BufferedInputFile,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    ReplyParameters,
)

from bottender.connectors.telegram import TelegramConnector, TelegramContext
from bottender.connectors.telegram_api import TelegramApiError
from tests.connectors.bots import RECORDED
from tests.connectors.payloads import (
    ALICE,
    THE_BOT,
    private_chat,
    text_update,
    tg_message,
    topic_message,
    update,
)
from tests.fixtures.contexts import started_context
from tests.fixtures.platform_api import Upload
from tests.fixtures.schemas import assert_valid_calls

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = ALICE["id"]
KEYBOARD = {"inline_keyboard": [[{"text": "Buy", "callback_data": "BUY:1"}]]}
PICTURE = "https://example.com/cat.jpg"


@pytest.fixture
def context_of(http, fake_platform):
    """``await context_of(update)``: the context a started Telegram connector gives the bot."""

    async def make(body: dict[str, Any]) -> TelegramContext:
        connector = TelegramConnector(
            path="/webhooks/telegram",
            initial_state={},
            access_token=TOKEN,
            origin=fake_platform.origin,
        )
        return await started_context(connector, http, body)

    return make


def called(fake_platform) -> list[tuple[str, dict[str, Any]]]:
    """(method, parameters) of every call, in order."""
    return [(c.path.rsplit("/", 1)[-1], c.params) for c in fake_platform.calls]


def callback_update(data: str = "BUY:1", *, inline: bool = False) -> dict[str, Any]:
    query: dict[str, Any] = {"id": "4382bfdwdsb323b2d9", "from": ALICE, "data": data}
    if inline:
        query.update(inline_message_id="AgAAAbc", chat_instance="-1")
    else:
        query["message"] = tg_message(private_chat(ALICE), THE_BOT, "Pick one", message_id=77)
        query["chat_instance"] = "-1"
    return update("callback_query", query)


# --- sends ------------------------------------------------------------------------------------


async def test_every_send_method_calls_its_bot_api_method_on_the_chat(context_of, fake_platform):
    context = await context_of(text_update("hi"))
    result = await context.send_text("Menu", reply_markup=KEYBOARD, parse_mode="HTML")
    await context.send_photo(PICTURE, caption="A cat")
    await context.send_document("BQACAgIAAxkBAAIBY2")
    await context.send_audio("https://example.com/a.mp3", title="Song")
    await context.send_video("https://example.com/a.mp4", supports_streaming=True)
    await context.send_voice("https://example.com/a.ogg")
    await context.send_animation("https://example.com/a.gif")
    await context.send_sticker("CAACAgIAAxkBAAIBZ2")
    await context.send_location(35.68, 139.76)
    await context.send_contact("+81300000000", "Alice")
    await context.send_poll("Tea or cake?", ["Tea", "Cake"], is_anonymous=False)
    await context.send_dice(emoji="🎲")
    await context.send_chat_action()
    assert result == {
        "message_id": 1,
        "date": 0,
        "chat": {"id": CHAT, "type": "private"},
        "text": "Menu",
    }
    calls = called(fake_platform)
    assert [method for method, _ in calls] == [
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendAudio",
        "sendVideo",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
        "sendLocation",
        "sendContact",
        "sendPoll",
        "sendDice",
        "sendChatAction",
    ]
    assert all(params["chat_id"] == CHAT for _, params in calls)
    assert calls[0][1]["reply_markup"] == KEYBOARD
    assert calls[1][1] == {"chat_id": CHAT, "photo": PICTURE, "caption": "A cat"}
    assert calls[10][1]["options"] == [{"text": "Tea"}, {"text": "Cake"}]
    assert calls[12][1] == {"chat_id": CHAT, "action": "typing"}
    assert assert_valid_calls(fake_platform.calls) == 13


async def test_send_image_is_the_cross_platform_photo(context_of, fake_platform):
    context = await context_of(text_update("hi"))
    await context.send_image(PICTURE, preview_url="https://example.com/small.jpg")
    assert called(fake_platform) == [("sendPhoto", {"chat_id": CHAT, "photo": PICTURE})]
    assert_valid_calls(fake_platform.calls)


async def test_sends_in_a_forum_topic_stay_in_the_topic(context_of, fake_platform):
    context = await context_of(update("message", topic_message(thread_id=12)))
    await context.send_photo(PICTURE)
    [(_, params)] = called(fake_platform)
    assert params["message_thread_id"] == 12
    assert_valid_calls(fake_platform.calls)


# --- uploads ----------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


async def test_bytes_are_uploaded_as_multipart_with_json_encoded_objects(context_of, fake_platform):
    context = await context_of(text_update("hi"))
    await context.send_photo(PNG, caption="Tea", reply_markup=KEYBOARD, has_spoiler=True)
    [call] = fake_platform.calls
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert call.json is None
    assert call.form == {
        "photo": Upload("photo", "application/octet-stream", PNG),
        "caption": "Tea",
        "reply_markup": json.dumps(KEYBOARD, separators=(",", ":")),
        "has_spoiler": "true",
        "chat_id": str(CHAT),
    }
    assert_valid_calls(fake_platform.calls)


async def test_a_path_is_uploaded_under_its_file_name(context_of, fake_platform, tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 " + PNG)
    context = await context_of(text_update("hi"))
    await context.send_document(report, caption="Your report")
    [call] = fake_platform.calls
    assert call.form["document"] == Upload(
        "report.pdf", "application/octet-stream", report.read_bytes()
    )
    assert_valid_calls(fake_platform.calls)


async def test_a_binary_file_object_is_uploaded_and_left_open(context_of, fake_platform, tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3" + PNG)
    context = await context_of(text_update("hi"))
    with song.open("rb") as file:
        await context.send_audio(file, title="Song")
        assert not file.closed
    [call] = fake_platform.calls
    assert call.form["audio"] == Upload("song.mp3", "application/octet-stream", song.read_bytes())
    assert call.form["title"] == "Song"
    assert_valid_calls(fake_platform.calls)


async def test_aiogram_input_files_are_uploaded(context_of, fake_platform, tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3" + PNG)
    context = await context_of(text_update("hi"))
    await context.send_photo(BufferedInputFile(PNG, filename="tea.png"))
    await context.send_audio(FSInputFile(song))
    photo, audio = fake_platform.calls
    assert photo.form["photo"] == Upload("tea.png", "application/octet-stream", PNG)
    assert audio.form["audio"] == Upload("song.mp3", "application/octet-stream", b"ID3" + PNG)
    assert_valid_calls(fake_platform.calls)


async def test_a_new_thumbnail_is_attached_by_name(context_of, fake_platform, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(PNG)
    context = await context_of(text_update("hi"))
    await context.send_video(clip, thumbnail=b"jpeg thumb", caption="Clip")
    [call] = fake_platform.calls
    assert call.form["video"].data == PNG
    assert call.form["thumbnail"] == "attach://thumbnail_file"
    assert call.form["thumbnail_file"] == Upload(
        "thumbnail", "application/octet-stream", b"jpeg thumb"
    )
    assert_valid_calls(fake_platform.calls)


async def test_a_retried_upload_sends_the_whole_file_again(context_of, fake_platform, tmp_path):
    too_many = (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 0",
            "parameters": {"retry_after": 0},
        },
    )
    fake_platform.answer(
        f"/bot{TOKEN}/sendVideo", too_many, (200, {"ok": True, "result": {"message_id": 5}})
    )
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(PNG)
    context = await context_of(text_update("hi"))
    assert await context.send_video(clip) == {"message_id": 5}
    assert [c.form["video"].data for c in fake_platform.calls] == [PNG, PNG]


async def test_aiogram_objects_are_sent_as_aiogram_serialises_them(context_of, fake_platform):
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Buy", callback_data="BUY:1")]]
    )
    context = await context_of(text_update("hi"))
    await context.send_text("Menu", reply_markup=markup)
    await context.send_photo(PNG, reply_markup=markup)
    json_call, form_call = fake_platform.calls
    assert json_call.json["reply_markup"] == KEYBOARD
    assert json.loads(form_call.form["reply_markup"]) == KEYBOARD
    assert_valid_calls(fake_platform.calls)


async def test_aiogram_defaults_are_left_out_as_aiogram_leaves_them(context_of, fake_platform):
    """aiogram fills some fields with bot-wide ``Default`` placeholders; unset, none is sent."""
    context = await context_of(text_update("hi"))
    await context.send_text(
        "See",
        link_preview_options=LinkPreviewOptions(url="https://example.com"),
        reply_parameters=ReplyParameters(message_id=3),
    )
    [call] = fake_platform.calls
    assert call.json["link_preview_options"] == {"url": "https://example.com"}
    assert call.json["reply_parameters"] == {"message_id": 3}
    assert_valid_calls(fake_platform.calls)


async def test_an_inline_query_is_answered_with_aiogram_results(context_of, fake_platform):
    query = {"id": "iq-2", "from": ALICE, "query": "tea", "offset": ""}
    context = await context_of(update("inline_query", query))
    result = InlineQueryResultArticle(
        id="1", title="Tea", input_message_content=InputTextMessageContent(message_text="Tea!")
    )
    await context.answer_inline_query([result])
    [call] = fake_platform.calls
    assert call.json["results"] == [
        {
            "type": "article",
            "id": "1",
            "title": "Tea",
            "input_message_content": {"message_text": "Tea!"},
        }
    ]
    assert_valid_calls(fake_platform.calls)


# --- edits and answers ------------------------------------------------------------------------


async def test_a_pressed_button_edits_its_message_and_is_answered(context_of, fake_platform):
    context = await context_of(callback_update())
    await context.edit_message_text("Bought!", reply_markup={"inline_keyboard": []})
    await context.edit_message_reply_markup(KEYBOARD)
    await context.answer_callback_query("Thanks", show_alert=True)
    assert called(fake_platform) == [
        (
            "editMessageText",
            {
                "text": "Bought!",
                "reply_markup": {"inline_keyboard": []},
                "message_id": 77,
                "chat_id": CHAT,
            },
        ),
        ("editMessageReplyMarkup", {"reply_markup": KEYBOARD, "message_id": 77, "chat_id": CHAT}),
        (
            "answerCallbackQuery",
            {"callback_query_id": "4382bfdwdsb323b2d9", "show_alert": True, "text": "Thanks"},
        ),
    ]
    assert_valid_calls(fake_platform.calls)


async def test_an_inline_messages_button_edits_by_inline_message_id(context_of, fake_platform):
    context = await context_of(callback_update(inline=True))
    await context.edit_message_text("Done")
    assert called(fake_platform) == [
        ("editMessageText", {"text": "Done", "inline_message_id": "AgAAAbc"})
    ]
    assert_valid_calls(fake_platform.calls)


async def test_an_edit_without_a_pressed_button_names_its_message(context_of, fake_platform):
    context = await context_of(text_update("hi"))
    with pytest.raises(RuntimeError, match="message_id="):
        await context.edit_message_text("?")
    await context.edit_message_text("fixed", message_id=5)
    assert called(fake_platform) == [
        ("editMessageText", {"text": "fixed", "message_id": 5, "chat_id": CHAT})
    ]
    assert_valid_calls(fake_platform.calls)


async def test_delete_message_defaults_to_the_events_message(context_of, fake_platform):
    body = text_update("oops")
    context = await context_of(body)
    await context.delete_message()
    await context.delete_message(12)
    assert called(fake_platform) == [
        ("deleteMessage", {"message_id": body["message"]["message_id"], "chat_id": CHAT}),
        ("deleteMessage", {"message_id": 12, "chat_id": CHAT}),
    ]
    assert_valid_calls(fake_platform.calls)


async def test_answer_inline_query(context_of, fake_platform):
    query = {"id": "iq-1", "from": ALICE, "query": "tea", "offset": ""}
    context = await context_of(update("inline_query", query))
    article = {
        "type": "article",
        "id": "1",
        "title": "Tea",
        "input_message_content": {"message_text": "Tea, please"},
    }
    assert await context.answer_inline_query([article], cache_time=0) is True
    assert called(fake_platform) == [
        ("answerInlineQuery", {"inline_query_id": "iq-1", "results": [article], "cache_time": 0})
    ]
    assert_valid_calls(fake_platform.calls)


async def test_answering_the_wrong_kind_of_update_is_an_error(context_of, fake_platform):
    context = await context_of(text_update("hi"))
    with pytest.raises(RuntimeError, match="message update, not a callback_query"):
        await context.answer_callback_query()
    assert fake_platform.calls == []


async def test_call_reaches_any_method_and_returns_its_result(context_of, fake_platform):
    fake_platform.answer(f"/bot{TOKEN}/getChatMemberCount", (200, {"ok": True, "result": 3}))
    context = await context_of(text_update("hi"))
    assert await context.call("getChatMemberCount", chat_id=CHAT) == 3
    assert_valid_calls(fake_platform.calls)


# --- refusals ---------------------------------------------------------------------------------


async def test_a_refusal_names_the_method_the_status_and_telegrams_reason(
    context_of, fake_platform
):
    description = "Bad Request: wrong file identifier/HTTP URL specified"
    fake_platform.answer(
        f"/bot{TOKEN}/sendPhoto",
        (400, {"ok": False, "error_code": 400, "description": description}),
    )
    context = await context_of(text_update("hi"))
    with pytest.raises(TelegramApiError) as caught:
        await context.send_photo("not-a-file-id")
    assert str(caught.value) == f"Telegram API error 400 in sendPhoto: {description}"
    assert (caught.value.method, caught.value.status, caught.value.reason) == (
        "sendPhoto",
        400,
        description,
    )
    assert TOKEN not in str(caught.value)


# --- through the gateway ----------------------------------------------------------------------


async def test_a_bot_uploads_a_photo_and_edits_it_when_the_button_is_pressed(telegram):
    channel = telegram(app="tests.connectors.bots:rich_telegram")
    assert (await channel.post(text_update("menu"))).status == 200
    [photo] = channel.platform.calls_to("/sendPhoto")
    assert photo.form["photo"].data == b"\x89PNG fake"
    assert json.loads(photo.form["reply_markup"]) == KEYBOARD
    assert RECORDED[0]["sent"]["chat"]["id"] == CHAT

    assert (await channel.post(callback_update())).status == 200
    assert [(c.path.rsplit("/", 1)[-1]) for c in channel.platform.calls[1:]] == [
        "editMessageText",
        "answerCallbackQuery",
    ]
    assert RECORDED[1] == {
        "edited": {
            "message_id": 77,
            "date": 0,
            "chat": {"id": CHAT, "type": "private"},
            "text": "Thanks!",
        },
        "answered": True,
    }
    assert_valid_calls(channel.platform.calls)
