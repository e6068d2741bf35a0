"""Several channels per platform on one gateway and one store.

Two LINE channels and two Telegram bots, the same user ids on each: every
channel keeps its own sessions and delivery ids, answers through its own token,
and tells the bot its name (``context.channel``).
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bottender.server.cli import main
from bottender.server.config import ConfigError, load_config
from bottender.server.webhooks import register_all
from tests.connectors.payloads import encode, line_body, line_signature, text_event, user_source
from tests.fixtures.gateway import write_config
from tests.fixtures.waiting import wait_for
from tests.server.conftest import http
from tests.server.updates import text_update

LINE_BOT, SHOP_BOT = "U" + "1" * 32, "U" + "2" * 32
TG_TOKEN, SUPPORT_TOKEN = "111:AAA-main", "222:BBB-support"
BOT = "tests.server.channel_bots:channel_counter"


def four_channels(origin: str) -> dict[str, Any]:
    line = {"access_token": "line-token", "channel_secret": "line-secret", "bot_user_id": LINE_BOT}
    shop = {"access_token": "shop-token", "channel_secret": "shop-secret", "bot_user_id": SHOP_BOT}
    return {
        "line": {"enabled": True, "origin": origin, **line},
        "shop": {"enabled": True, "platform": "line", "origin": origin, **shop},
        "telegram": {"enabled": True, "access_token": TG_TOKEN, "origin": origin},
        "support": {
            "enabled": True,
            "platform": "telegram",
            "path": "/hooks/support",
            "access_token": SUPPORT_TOKEN,
            "origin": origin,
        },
    }


def post_line(url: str, secret: str, body: dict) -> int:
    data = encode(body)
    headers = {"X-Line-Signature": line_signature(data, secret), "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def line_texts(platform, token: str) -> list[str]:
    return [
        message["text"]
        for call in platform.calls_to("/v2/bot/message/reply")
        if call.headers.get("Authorization") == f"Bearer {token}"
        for message in call.json["messages"]
    ]


@pytest.fixture
def gateway(make_gateway, fake_platform):
    return make_gateway(
        app="tests.server.channel_bots:channel_counter",
        channels=four_channels(fake_platform.origin),
    )


def test_two_line_channels_and_two_telegram_bots_keep_apart_on_one_store(gateway, fake_platform):
    for _ in range(2):
        body = line_body(text_event("hi", user_source("alice")), destination=LINE_BOT)
        assert post_line(gateway.url + "/webhooks/line", "line-secret", body) == 200
    body = line_body(text_event("hi", user_source("alice")), destination=SHOP_BOT)
    assert post_line(gateway.url + "/webhooks/shop", "shop-secret", body) == 200
    # The same update id and chat on both bots: the second bot's update is not a redelivery.
    for update_id in (1, 2, 3):
        assert http(gateway.url + "/webhooks/telegram", text_update(update_id, "hi")).status == 200
    assert http(gateway.url + "/hooks/support", text_update(1, "hi")).status == 200

    assert line_texts(fake_platform, "line-token") == ["line 1", "line 2"]
    assert line_texts(fake_platform, "shop-token") == ["shop 1"]
    assert fake_platform.texts(f"/bot{TG_TOKEN}/sendMessage") == [
        f"telegram {n}" for n in (1, 2, 3)
    ]
    assert fake_platform.texts(f"/bot{SUPPORT_TOKEN}/sendMessage") == ["support 1"]

    async def states() -> dict[str, Any]:
        return {s.id: s.state["count"] async for s in gateway.gateway.store.all()}

    alice = user_source("alice")["userId"]
    assert gateway.run(states()) == {
        f"line:{alice}": 2,
        f"shop:{alice}": 1,
        "telegram:7": 3,
        "support:7": 1,
    }


def test_a_line_body_for_another_bot_is_refused_and_runs_nothing(gateway, fake_platform):
    # Signed with shop's secret, but addressed to the other channel's bot.
    body = line_body(text_event("hi", user_source("alice")), destination=LINE_BOT)
    assert post_line(gateway.url + "/webhooks/shop", "shop-secret", body) == 403
    assert fake_platform.calls_to("/v2/bot/message/reply") == []


def test_without_bot_user_id_the_bot_is_asked_who_it_is(make_gateway, fake_platform):
    fake_platform.answer("/v2/bot/info", (200, {"userId": SHOP_BOT, "displayName": "Shop"}))
    channels = four_channels(fake_platform.origin)
    del channels["shop"]["bot_user_id"]
    live = make_gateway(app=BOT, channels=channels)
    shop = next(c for c in live.gateway.connectors if c.channel == "shop")
    # Learned in the background at start-up: wait for it.
    wait_for(lambda: shop.bot_user_id is not None, "the bot's user id")
    assert shop.bot_user_id == SHOP_BOT
    wrong = line_body(text_event("hi", user_source("alice")), destination=LINE_BOT)
    assert post_line(live.url + "/webhooks/shop", "shop-secret", wrong) == 403
    right = line_body(text_event("hi", user_source("alice")), destination=SHOP_BOT)
    assert post_line(live.url + "/webhooks/shop", "shop-secret", right) == 200


def test_an_unreachable_line_does_not_stop_the_gateway_from_starting(make_gateway, tmp_path):
    channels = four_channels("http://127.0.0.1:9")  # nothing listens on the discard port
    del channels["shop"]["bot_user_id"]
    live = make_gateway(app=BOT, channels=channels)
    assert http(live.url + "/healthz", method="GET").status == 200


# --- config --------------------------------------------------------------------------


def config_error(tmp_path: Path, channels: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, app="tests.bots:counter", channels=channels))
    return str(caught.value)


def test_a_channel_gets_its_platform_from_its_name_or_key_and_a_path_from_its_name(tmp_path):
    config = load_config(
        write_config(tmp_path, app="tests.bots:counter", channels=four_channels("http://x"))
    )
    assert {n: c["platform"] for n, c in config.channels.items()} == {
        "line": "line",
        "shop": "line",
        "telegram": "telegram",
        "support": "telegram",
    }
    assert config.channels["shop"]["path"] == "/webhooks/shop"
    assert config.channels["shop"]["deadline"] == 1.0  # LINE's, from its connector
    assert config.channels["support"]["deadline"] == 20.0


def test_config_mistakes_of_extra_channels_name_the_key(tmp_path):
    assert "channels.shop: unknown platform 'shop'" in config_error(
        tmp_path, {"shop": {"enabled": True, "access_token": "t"}}
    )
    assert "channels.shop.secret_token: unknown option" in config_error(
        tmp_path, {"shop": {"platform": "line", "secret_token": "s"}}
    )
    assert "SHOP_CHANNEL_SECRET" in config_error(
        tmp_path, {"shop": {"platform": "line", "enabled": True, "access_token": "t"}}
    )
    both = {"path": "/same", "enabled": True}
    assert "share the path '/same'" in config_error(
        tmp_path,
        {
            "telegram": {**both, "access_token": "1:a"},
            "support": {**both, "platform": "telegram", "access_token": "2:b"},
        },
    )


# --- webhook commands with --channel ----------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch, fake_platform):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, app="tests.bots:counter", channels=four_channels(fake_platform.origin))
    return tmp_path


def test_webhook_commands_take_the_channel(project, fake_platform, capsys):
    url = "https://bot.example.com/hooks/support"
    assert main(["telegram", "webhook", "set", "--channel", "support", "--webhook", url]) == 0
    [call] = fake_platform.calls_to("/setWebhook")
    assert call.path == f"/bot{SUPPORT_TOKEN}/setWebhook" and call.json["url"] == url
    assert main(["telegram", "webhook", "delete"]) == 0  # no --channel: channels.telegram
    assert [c.path for c in fake_platform.calls_to("/deleteWebhook")] == [
        f"/bot{TG_TOKEN}/deleteWebhook"
    ]
    assert main(["line", "webhook", "get", "--channel", "shop"]) == 0
    [get] = fake_platform.calls_to("/v2/bot/channel/webhook/endpoint")
    assert get.headers["Authorization"] == "Bearer shop-token"
    capsys.readouterr()


def test_a_channel_of_another_platform_or_unknown_is_named(project, fake_platform, capsys):
    assert main(["telegram", "webhook", "get", "--channel", "shop"]) == 1
    assert "channels.shop is a line channel, not a telegram one" in capsys.readouterr().err
    assert main(["line", "webhook", "get", "--channel", "nope"]) == 1
    assert "channels.nope is not enabled" in capsys.readouterr().err
    assert fake_platform.calls == []


def test_dev_registers_every_enabled_channel(tmp_path, fake_platform):
    config = load_config(
        write_config(
            tmp_path, app="tests.bots:counter", channels=four_channels(fake_platform.origin)
        )
    )
    urls, _ = asyncio.run(register_all(config, "https://pub.example.com"))
    assert urls == {
        "line": "https://pub.example.com/webhooks/line",
        "shop": "https://pub.example.com/webhooks/shop",
        "telegram": "https://pub.example.com/webhooks/telegram",
        "support": "https://pub.example.com/hooks/support",
    }
    puts = fake_platform.calls_to("/v2/bot/channel/webhook/endpoint")
    assert {
        (c.headers["Authorization"], c.json["endpoint"]) for c in puts if c.method == "PUT"
    } == {
        ("Bearer line-token", urls["line"]),
        ("Bearer shop-token", urls["shop"]),
    }
    assert {c.path: c.json["url"] for c in fake_platform.calls_to("/setWebhook")} == {
        f"/bot{TG_TOKEN}/setWebhook": urls["telegram"],
        f"/bot{SUPPORT_TOKEN}/setWebhook": urls["support"],
    }


def test_two_channels_of_one_bot_are_a_config_error(tmp_path):
    same = {"enabled": True, "access_token": "1:same"}
    message = config_error(
        tmp_path, {"telegram": same, "support": {**same, "platform": "telegram"}}
    )
    assert "access_token is the same as channels." in message
    assert "channels.support" in message and "channels.telegram" in message


# --- the console, speaking as a channel -------------------------------------------------


def test_the_console_speaks_as_a_channel_with_its_own_session(tmp_path, fake_platform):
    from bottender.server.console import run_console

    config = load_config(
        write_config(
            tmp_path,
            app=BOT,
            initial_state={"count": 0},
            channels=four_channels(fake_platform.origin),
        )
    )
    said: list[str] = []

    def lines(typed: list[str]):
        def read(prompt: str) -> str:
            if not typed:
                raise EOFError
            return typed.pop(0)

        return read

    run_console(
        config, read_line=lines(["hi", "hi", "/session"]), write=said.append, channel="shop"
    )
    run_console(config, read_line=lines(["hi"]), write=said.append)
    replies = [line for line in said if line.startswith("Bot > ")]
    assert replies[:2] == ["Bot > shop 1", "Bot > shop 2"]
    assert '"id": "console:shop:1"' in replies[2]
    assert replies[3] == "Bot > console 1"  # the console's own conversation is another one
    assert "as channel 'shop'" in said[0]
    with pytest.raises(ConfigError, match=r"channels\.nope is not enabled"):
        run_console(config, read_line=lines([]), write=said.append, channel="nope")
