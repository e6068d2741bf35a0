"""An unexpected exception still gets the JSON error body and exactly one access line.

The faults are injected in a connector (its session key or its context), the
only way to reach code paths that no well-formed or malformed body reaches.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bottender.connectors.base import Event
from bottender.connectors.telegram import TelegramConnector, TelegramContext
from bottender.server.app import create_app
from bottender.server.config import load_config
from bottender.sessions.session import Session
from tests.connectors import payloads
from tests.fixtures.asgi import asgi_post
from tests.fixtures.gateway import write_config

PATH = "/webhooks/telegram"


class FaultyTelegram(TelegramConnector):
    """Telegram, except that some texts make the connector itself raise."""

    def session_key(self, event: Event) -> str | None:
        if event.text == "key-boom":
            raise RuntimeError("session_key blew up")
        return super().session_key(event)

    def create_context(self, event: Event, session: Session | None) -> TelegramContext:
        if event.text == "context-boom":
            raise RuntimeError("create_context blew up")
        return super().create_context(event, session)


@pytest.fixture
async def app(tmp_path: Path, fake_platform) -> Any:
    config = load_config(
        write_config(
            tmp_path,
            app="tests.bots:counter",
            initial_state={"count": 0},
            channels={
                "telegram": {"enabled": True, "access_token": "1:T", "origin": fake_platform.origin}
            },
        )
    )
    connector = FaultyTelegram(
        path=PATH,
        initial_state=config.initial_state,
        access_token="1:T",
        origin=fake_platform.origin,
    )
    app = create_app(config, connectors=[connector])
    await app.state.gateway.start()
    yield app
    await app.state.gateway.stop()


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bottender.access"]


@pytest.mark.parametrize(
    ("text", "sessions"),
    [("context-boom", [f"telegram:{payloads.ALICE['id']}"]), ("key-boom", None)],
)
async def test_an_unexpected_exception_answers_json_500_and_logs_one_access_line(
    app, caplog, fake_platform, text, sessions
):
    body = payloads.encode(payloads.text_update(text))
    with caplog.at_level(logging.INFO):
        answer = await asgi_post(app, PATH, body)
    assert answer.status == 500
    assert answer.json() == {"ok": False, "error": "internal error"}
    (record,) = access_records(caplog)
    assert record.fields["status"] == 500
    assert record.fields["sessions"] == sessions
    assert "status=500" in record.getMessage()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "blew up" in str(tracebacks[0].exc_info[1])

    # The gateway is unharmed: the next update runs.
    answer = await asgi_post(app, PATH, payloads.encode(payloads.text_update("hi")))
    assert answer.status == 200
    assert fake_platform.texts() == ["Count: 1"]


async def test_a_content_length_of_non_ascii_digits_is_no_500(app, fake_platform):
    """``"²".isdigit()`` is true but ``int("²")`` fails: the length is checked as ASCII."""
    body = payloads.encode(payloads.text_update("hi"))
    answer = await asgi_post(app, PATH, body, [("Content-Length", "\u00b2")])
    assert answer.status == 200
    assert fake_platform.texts() == ["Count: 1"]
