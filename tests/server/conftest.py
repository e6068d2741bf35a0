"""A Telegram bot on the live gateway, talked to over real HTTP as Telegram would."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bottender.sessions.session import Session
from tests.bots import PROBE, Probe
from tests.fixtures.gateway import LiveGateway
from tests.fixtures.platform_api import FakePlatform
from tests.server.updates import text_update

#: The project's root, for subprocesses that must import examples/ and tests/.
ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "/webhooks/telegram"
#: Variables the project's bottender_config.py reads; kept out of subprocesses and tests.
PROJECT_ENV = (
    "BOTTENDER_APP",
    "BOTTENDER_ENV",
    "SESSION_DRIVER",
    "SESSION_EXPIRES_IN",
    "REDIS_URL",
    "MONGO_URL",
    "LINE_ACCESS_TOKEN",
    "LINE_CHANNEL_SECRET",
    "TELEGRAM_ACCESS_TOKEN",
    "TELEGRAM_SECRET_TOKEN",
    "LINE_API_ORIGIN",
    "TELEGRAM_API_ORIGIN",
    "SHOP_ACCESS_TOKEN",
    "SHOP_CHANNEL_SECRET",
    "SUPPORT_ACCESS_TOKEN",
)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str, body: bytes | dict | list | None = None, *, method: str = "POST", timeout: float = 30
) -> Reply:
    """One plain HTTP request; 4xx/5xx are returned, not raised."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), dict(error.headers))


@dataclass
class TelegramBot:
    live: LiveGateway
    platform: FakePlatform
    update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def webhook(self) -> str:
        return self.live.url + WEBHOOK

    def post(self, body: bytes | dict | list | None, *, method: str = "POST") -> Reply:
        return http(self.webhook, body, method=method)

    def say(self, text: str, *, chat_id: int = 7) -> list[str]:
        """Send a text message; the texts the bot sent back for it."""
        before = len(self.replies())
        reply = self.post(text_update(next(self.update_ids), text, chat_id=chat_id))
        assert reply.status == 200, reply
        return self.replies()[before:]

    def ask(self, text: str, *, chat_id: int = 7) -> Any:
        """Send a text message to a bot answering with one JSON reply; that reply, parsed."""
        (answer,) = self.say(text, chat_id=chat_id)
        return json.loads(answer)

    def replies(self) -> list[str]:
        return self.platform.texts()

    def session(self, chat_id: int = 7) -> Session | None:
        return self.live.run(self.live.gateway.store.read(f"telegram:{chat_id}"))

    def state(self, chat_id: int = 7) -> dict[str, Any] | None:
        session = self.session(chat_id)
        return None if session is None else session.state

    def sessions(self) -> list[Session]:
        async def collect() -> list[Session]:
            return [session async for session in self.live.gateway.store.all()]

        return self.live.run(collect())


@pytest.fixture(autouse=True)
def probe() -> Iterator[Probe]:
    PROBE.reset()
    yield PROBE
    PROBE.reset()


@pytest.fixture
def telegram_bot(make_gateway, fake_platform) -> Callable[..., TelegramBot]:
    """``telegram_bot("tests.bots:counter", initial_state=..., session=...)`` -> a live bot."""

    def start(app: str, **names: Any) -> TelegramBot:
        telegram = {"enabled": True, "access_token": "123:TEST", "origin": fake_platform.origin}
        names.setdefault("channels", {"telegram": telegram})
        return TelegramBot(make_gateway(app=app, **names), fake_platform)

    return start
