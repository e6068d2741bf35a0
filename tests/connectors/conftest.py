"""Live gateways with one channel, wired to a fake platform API, and how to talk to them.

Everything goes through real HTTP: an aiohttp client posts webhooks to the
gateway on 127.0.0.1, whose connector calls the fake platform API.

Stopping uvicorn costs about 0.2 s, so instead of one gateway per test (as
``make_gateway`` does) the gateways here are pooled for the whole run, one per
distinct config, built the same way (a real config file, ``load_config``,
``create_app``, uvicorn). Before each test the fake platform forgets its calls
and canned answers, and the gateway's store forgets every session, so every
test starts from an empty world.
"""

from __future__ import annotations

import asyncio
import pprint
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import uvicorn
from aiohttp import web

from bottender.server.app import create_app
from bottender.server.config import load_config
from bottender.sessions.session import Session
from tests.connectors import payloads
from tests.connectors.bots import RECORDED
from tests.fixtures.contexts import client_session  # noqa: F401 - the ``http`` fixture
from tests.fixtures.gateway import LiveGateway, write_config
from tests.fixtures.platform_api import FakePlatform
from tests.fixtures.schemas import assert_valid_calls

LINE_SECRET = "5b2b0f6c7e9d4a1f8c3e2d1a0b9c8d7e"
LINE_ACCESS_TOKEN = "line-long-lived-channel-access-token"
TELEGRAM_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM_SECRET = "a-secret_token-0123456789"

#: Sign with the channel secret (the default), or send this exact header value.
SIGN = object()


@dataclass
class Answer:
    status: int
    body: Any


@dataclass
class Channel:
    """One enabled channel of a live gateway, and the fake platform behind it."""

    live: LiveGateway
    platform: FakePlatform
    path: str

    @property
    def url(self) -> str:
        return self.live.url + self.path

    async def request(
        self, method: str, url: str, data: bytes | None = None, headers: dict | None = None
    ) -> Answer:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, data=data, headers=headers) as response,
        ):
            body: Any = await response.read()
            if response.content_type == "application/json":
                body = await response.json()
            return Answer(response.status, body)

    async def post_bytes(self, data: bytes, headers: dict[str, str] | None = None) -> Answer:
        return await self.request(
            "POST", self.url, data, {"Content-Type": "application/json", **(headers or {})}
        )

    async def healthz(self) -> Answer:
        return await self.request("GET", self.live.url + "/healthz")

    def session(self, key: str) -> Session | None:
        return self.live.run(self.live.gateway.store.read(key))

    def sessions(self) -> list[Session]:
        async def collect() -> list[Session]:
            return [session async for session in self.live.gateway.store.all()]

        return self.live.run(collect())


class LineChannel(Channel):
    async def post(self, body: Any, *, signature: Any = SIGN) -> Answer:
        data = body if isinstance(body, bytes) else payloads.encode(body)
        headers = {"User-Agent": "LineBotWebhook/2.0"}
        if signature is SIGN:
            headers["X-Line-Signature"] = payloads.line_signature(data, LINE_SECRET)
        elif signature is not None:
            headers["X-Line-Signature"] = signature
        return await self.post_bytes(data, headers)

    def replies(self) -> list[dict[str, Any]]:
        return [call.json for call in self.platform.calls_to("/v2/bot/message/reply")]

    def pushes(self) -> list[dict[str, Any]]:
        return [call.json for call in self.platform.calls_to("/v2/bot/message/push")]


class TelegramChannel(Channel):
    async def post(self, update: Any, *, secret_token: str | None = None) -> Answer:
        data = update if isinstance(update, bytes) else payloads.encode(update)
        headers = {}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        return await self.post_bytes(data, headers)

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [call.json for call in self.platform.calls_to(f"/bot{TELEGRAM_TOKEN}/{method}")]


def _serve_platform() -> tuple[FakePlatform, Callable[[], None]]:
    """Start a :class:`FakePlatform` in its own thread and loop; return it and its stopper."""
    platform = FakePlatform()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", platform._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, platform.host, 0)
        await site.start()
        platform.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-platform-pool", daemon=True)
    thread.start()
    assert ready.wait(10), "fake platform did not start"

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runners[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return platform, stop


class GatewayPool:
    """One running gateway per distinct config, reused by every test that asks for it."""

    def __init__(self, tmp: pytest.TempPathFactory, platform: FakePlatform) -> None:
        self.tmp = tmp
        self.platform = platform
        self.running: dict[str, tuple[LiveGateway, uvicorn.Server, threading.Thread]] = {}

    def get(self, **names: Any) -> LiveGateway:
        names.setdefault("initial_state", {"count": 0})
        key = pprint.pformat(names)
        if key not in self.running:
            self.running[key] = self._start(names)
        live = self.running[key][0]
        live.run(_forget_sessions(live))
        return live

    def _start(self, names: dict[str, Any]) -> tuple[LiveGateway, uvicorn.Server, threading.Thread]:
        config = load_config(write_config(self.tmp.mktemp("gateway"), **names))
        app = create_app(config)
        loops: list[asyncio.AbstractEventLoop] = []
        gateway = app.state.gateway
        start_gateway = gateway.start

        async def start_noting_loop() -> None:
            loops.append(asyncio.get_running_loop())
            await start_gateway()

        gateway.start = start_noting_loop
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="gateway-pool", daemon=True)
        thread.start()
        for _ in range(500):
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("gateway failed to start")
            threading.Event().wait(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        return LiveGateway(f"http://127.0.0.1:{port}", app, config, loops[0]), server, thread

    def stop(self) -> None:
        # Every server is told first, so they all shut down at once.
        for _, server, _ in self.running.values():
            server.should_exit = True
        for _, _, thread in self.running.values():
            thread.join(30)


async def _forget_sessions(live: LiveGateway) -> None:
    store = live.gateway.store
    for session in [session async for session in store.all()]:
        await store.destroy(session.id)


@pytest.fixture(scope="session")
def gateway_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayPool]:
    platform, stop_platform = _serve_platform()
    pool = GatewayPool(tmp_path_factory, platform)
    try:
        yield pool
    finally:
        pool.stop()
        stop_platform()


@pytest.fixture
def platform(gateway_pool: GatewayPool) -> FakePlatform:
    """The pool's fake platform, with no calls recorded and no answers queued."""
    fake = gateway_pool.platform
    with fake._lock:
        fake.calls.clear()
        fake.answers.clear()
        fake.delay = 0.0
    return fake


@pytest.fixture(autouse=True)
def clear_recorded() -> Iterator[None]:
    RECORDED.clear()
    yield
    RECORDED.clear()


@pytest.fixture
def line(gateway_pool: GatewayPool, platform: FakePlatform) -> Callable[..., LineChannel]:
    """``line(app=..., server=..., **channel_options)`` -> a :class:`LineChannel`."""

    def start(app: str = "tests.bots:counter", server: dict | None = None, **options: Any):
        channel = {
            "enabled": True,
            "path": "/webhooks/line",
            "access_token": LINE_ACCESS_TOKEN,
            "channel_secret": LINE_SECRET,
            "origin": platform.origin,
            # Known, so the gateway asks LINE nothing at start-up (GET /v2/bot/info).
            "bot_user_id": payloads.LINE_BOT_USER_ID,
            **options,
        }
        names: dict[str, Any] = {"app": app, "channels": {"line": channel}}
        if server is not None:
            names["server"] = server
        return LineChannel(gateway_pool.get(**names), platform, channel["path"])

    return start


@pytest.fixture
def telegram(gateway_pool: GatewayPool, platform: FakePlatform) -> Callable[..., TelegramChannel]:
    """``telegram(app=..., **channel_options)`` -> a :class:`TelegramChannel`."""

    def start(app: str = "tests.bots:counter", **options: Any):
        channel = {
            "enabled": True,
            "path": "/webhooks/telegram",
            "access_token": TELEGRAM_TOKEN,
            "origin": platform.origin,
            **options,
        }
        live = gateway_pool.get(app=app, channels={"telegram": channel})
        return TelegramChannel(live, platform, channel["path"])

    return start


@pytest.fixture(autouse=True)
def every_call_is_documented(request: pytest.FixtureRequest) -> Iterator[None]:
    """What a test makes the gateway send is checked against the platform's published schema."""
    fake = request.getfixturevalue("platform") if "platform" in request.fixturenames else None
    yield
    if fake is not None:
        assert_valid_calls(fake.calls)
