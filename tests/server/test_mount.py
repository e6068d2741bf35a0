"""create_app(config_path): the gateway mounted under a prefix in FastAPI or Starlette,
its store and HTTP client opened by the outer app's lifespan, plus the config's own routes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from bottender import create_app
from bottender.server.testing import asgi_post
from tests.server.conftest import http

SECRET = "line-secret"
CONFIG = """
from starlette.responses import JSONResponse
from starlette.routing import Route

app = "examples.counter:app"
initial_state = {{"count": 0}}
channels = {{
    "line": {{"enabled": True, "access_token": "T", "channel_secret": "{secret}",
              "origin": "{origin}"}},
    "telegram": {{"enabled": True, "access_token": "1:T", "origin": "{origin}"}},
}}


async def paid(request):
    # A payment provider's callback: the bot tells the user, under the session's lock.
    body = await request.json()
    async with request.app.state.bot.conversation(body["session"]) as context:
        context.set_state({{"paid": True}})
        await context.send_text("Payment received")
    return JSONResponse({{"ok": True}})

routes = [Route("/payments", paid, methods=["POST"])]
"""


def line_body(text: str, event_id: str = "01HTEST") -> bytes:
    event = {
        "type": "message",
        "message": {"type": "text", "id": "1", "quoteToken": "q", "text": text},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": "U1"},
        "replyToken": "r" * 32,
        "mode": "active",
    }
    return json.dumps({"destination": "Ubot", "events": [event]}).encode()


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def post_line(url: str, body: bytes) -> int:
    """POST a body signed as LINE signs it; the status."""
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    request = urllib.request.Request(url, body, headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


@pytest.fixture
def config_path(tmp_path: Path, fake_platform) -> Path:
    path = tmp_path / "bottender_config.py"
    path.write_text(CONFIG.format(secret=SECRET, origin=fake_platform.origin))
    return path


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "server failed to start"
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def fastapi_app(config_path: Path) -> FastAPI:
    """The documented way (README, "Mounting the gateway"): enter its lifespan from yours."""
    bot_app = create_app(config_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bot_app.router.lifespan_context(bot_app):
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def home() -> dict:
        return {"site": "shop"}

    app.mount("/bot", bot_app)
    return app


def test_fastapi_serves_the_gateway_under_a_prefix(config_path, fake_platform):
    app = fastapi_app(config_path)
    (gateway,) = [m.app.state.gateway for m in app.routes if isinstance(m, Mount)]
    assert not gateway.started
    with serve(app) as url:
        assert gateway.started and gateway.http is not None
        assert http(url + "/", method="GET").json() == {"site": "shop"}
        assert http(url + "/bot/healthz", method="GET").status == 200

        assert post_line(url + "/bot/webhooks/line", line_body("hi")) == 200
        (reply,) = fake_platform.calls_to("/v2/bot/message/reply")
        assert reply.json["messages"] == [{"type": "text", "text": "Count: 1"}]

        update = {
            "update_id": 1,
            "message": {"message_id": 1, "date": 0, "text": "hi",
                        "chat": {"id": 42, "type": "private"},
                        "from": {"id": 42, "is_bot": False, "first_name": "A"}},
        }  # fmt: skip
        assert http(url + "/bot/webhooks/telegram", update).status == 200
        assert fake_platform.texts("/sendMessage") == ["Count: 1"]

        unsigned = http(url + "/bot/webhooks/line", line_body("hi"))
        assert unsigned.status == 401

        assert http(url + "/bot/payments", {"session": "line:U1"}).json() == {"ok": True}
        (push,) = fake_platform.calls_to("/v2/bot/message/push")
        assert push.json == {"to": "U1", "messages": [{"type": "text", "text": "Payment received"}]}
        assert post_line(url + "/bot/webhooks/line", line_body("again", "01HTEST2")) == 200
        assert fake_platform.texts("/reply")[-1] == "Count: 2"  # the state kept "paid" and count
    # The outer app's shutdown ran the gateway's: store and HTTP client closed.
    assert not gateway.started and gateway.http is None


async def test_mounted_without_its_lifespan_the_gateway_says_so_with_503(config_path, caplog):
    outer = Starlette(routes=[Mount("/bot", create_app(config_path))])
    body = line_body("hi")
    status, answer = await asgi_post(
        outer, "/bot/webhooks/line", body, {"x-line-signature": sign(body)}
    )
    assert status == 503
    assert json.loads(answer) == {
        "ok": False,
        "error": "gateway not started (its lifespan has not run)",
    }
    assert "lifespan_context(bot_app)" in caplog.text


def test_routes_must_be_starlette_routes(tmp_path):
    from bottender.server.config import ConfigError, load_config

    path = tmp_path / "bottender_config.py"
    path.write_text('app = "examples.counter:app"\nroutes = ["/payments"]\n')
    with pytest.raises(ConfigError, match=r"routes\[0\] must be a Starlette Route or Mount"):
        load_config(path)
