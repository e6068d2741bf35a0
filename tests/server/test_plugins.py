"""A platform is a plugin: a module in connectors/ (here, tests/server/echo_platform.py)
and one registry line, and the config, the gateway, several channels, the webhook
commands and ``bottender dev``'s registration all work for it."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from bottender.connectors import registry
from bottender.server.cli import main
from bottender.server.config import ConfigError, load_config
from bottender.server.webhooks import register_all
from tests.fixtures.gateway import write_config
from tests.server import echo_platform


@pytest.fixture(autouse=True)
def echo_registered(monkeypatch):
    monkeypatch.setitem(registry.PLATFORMS, "echo", "tests.server.echo_platform:EchoConnector")
    echo_platform.SENT.clear()
    echo_platform.ADMIN_CALLS.clear()


CHANNELS = {
    "echo": {"enabled": True, "key": "k1"},
    "loudspeaker": {"enabled": True, "platform": "echo", "key": "k2"},
}


def post(url: str, key: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"X-Echo-Key": key}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_registered_platform_is_served_with_several_channels(make_gateway):
    live = make_gateway(app="tests.server.channel_bots:channel_counter", channels=CHANNELS)
    assert post(live.url + "/webhooks/echo", "k1", {"id": "1", "user": "ann"}) == 200
    assert post(live.url + "/webhooks/echo", "k1", {"id": "1", "user": "ann"}) == 200  # redelivered
    assert post(live.url + "/webhooks/loudspeaker", "k2", {"id": "1", "user": "ann"}) == 200
    assert post(live.url + "/webhooks/loudspeaker", "k1", {"id": "2", "user": "ann"}) == 401
    assert echo_platform.SENT == [
        ("echo", "ann", "echo 1"),
        ("loudspeaker", "ann", "loudspeaker 1"),
    ]

    async def ids() -> set[str]:
        return {session.id async for session in live.gateway.store.all()}

    assert live.run(ids()) == {"echo:ann", "loudspeaker:ann"}
    assert live.config.channels["echo"]["deadline"] == 5.0  # the connector's default


def test_its_options_and_env_names_come_from_its_connector(tmp_path):
    with pytest.raises(ConfigError, match=r"channels\.echo\.key is required .*ECHO_KEY"):
        load_config(
            write_config(tmp_path, app="tests.bots:counter", channels={"echo": {"enabled": True}})
        )
    with pytest.raises(ConfigError, match=r"channels\.echo\.volume: unknown option .*shout"):
        load_config(
            write_config(tmp_path, app="tests.bots:counter", channels={"echo": {"volume": 1}})
        )


def test_its_webhook_commands_and_dev_registration_are_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, app="tests.bots:counter", channels=CHANNELS)
    code = main(
        ["echo", "webhook", "set", "--channel", "loudspeaker", "--webhook", "https://h/x", "--loud"]
    )
    assert code == 0
    assert "Echo webhook set: https://h/x (loud)" in capsys.readouterr().out
    config = load_config(tmp_path / "bottender_config.py")
    asyncio.run(register_all(config, "https://pub"))
    assert echo_platform.ADMIN_CALLS == [
        ("loudspeaker", "set", "https://h/x", "k2"),
        ("echo", "register", "https://pub/webhooks/echo", "k1"),
        ("loudspeaker", "register", "https://pub/webhooks/loudspeaker", "k2"),
    ]
