"""Production serving: ``bottender start`` settings, access lines, answer deadline, SIGTERM.

The slow bot (tests.bots:slow) takes 5 s, far past LINE's 1 s answer deadline:
LINE must get its answer in time, and the reply and the session must still
follow, even when the server is told to stop meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bottender.server import serve as serve_module
from bottender.server.asgi import APP_ENV, CONFIG_ENV
from bottender.server.cli import main
from bottender.server.logs import JsonFormatter, key_values
from tests.fixtures.gateway import write_config
from tests.fixtures.tunnels import Bottender, free_port, standin_env
from tests.fixtures.waiting import until, wait_for

LINE_SECRET = "line-channel-secret"
LINE_TOKEN = "line-access-token"
TELEGRAM_TOKEN = "4242:telegram-bot-token"
TELEGRAM_SECRET = "telegram-secret-token"
MESSAGE_TEXT = "my private words"


def channels(origin: str) -> dict[str, Any]:
    return {
        "line": {
            "enabled": True,
            "access_token": LINE_TOKEN,
            "channel_secret": LINE_SECRET,
            "origin": origin,
            "bot_user_id": "Ubot",
        },
        "telegram": {
            "enabled": True,
            "access_token": TELEGRAM_TOKEN,
            "secret_token": TELEGRAM_SECRET,
            "origin": origin,
        },
    }


def line_body(user: str = "U1", event_id: str = "01LINEEVENT") -> bytes:
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"reply-token-{user}",
        "message": {"type": "text", "id": "1", "text": MESSAGE_TEXT},
    }
    return json.dumps({"destination": "Ubot", "events": [event]}).encode()


def line_headers(body: bytes) -> dict[str, str]:
    digest = hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Line-Signature": base64.b64encode(digest).decode(),
    }


def telegram_body(chat: int = 7, update_id: int = 1) -> bytes:
    message = {"message_id": 1, "date": 1, "chat": {"id": chat, "type": "private"}}
    return json.dumps(
        {"update_id": update_id, "message": {**message, "text": MESSAGE_TEXT}}
    ).encode()


TELEGRAM_HEADERS = {
    "Content-Type": "application/json",
    "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
}


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def start_server(tmp_path: Path):
    """``start_server(*args)`` -> (process, base URL): ``bottender start`` on 127.0.0.1."""
    started: list[Bottender] = []

    def start(*args: str) -> tuple[Bottender, str]:
        port = free_port()
        process = Bottender(
            ["start", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=tmp_path,
            env=standin_env(),
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: healthy(url) or process.process.poll() is not None, "the server", timeout=20
        )
        assert process.process.poll() is None, process.stderr
        return process, url

    yield start
    for process in started:
        process.stop()


# --- bottender start's settings ------------------------------------------------------


@pytest.fixture
def captured_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Run ``main(["start", ...])`` up to uvicorn, capturing what it is given."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda app, **kw: captured.update(kw))
    # Nothing is served, so nothing is bound: port 5000 may be taken on this machine.
    monkeypatch.setattr(serve_module.startup, "check_port_free", lambda host, port: None)
    monkeypatch.chdir(tmp_path)
    for name in (CONFIG_ENV, APP_ENV, "PORT", "FORWARDED_ALLOW_IPS"):
        monkeypatch.setenv(name, "placeholder")  # restored after the test
        monkeypatch.delenv(name)
    write_config(tmp_path, app="tests.bots:counter")
    return captured


def test_start_defaults_trust_only_local_proxy(captured_uvicorn):
    assert main(["start"]) == 0
    assert captured_uvicorn["proxy_headers"] is True
    assert captured_uvicorn["forwarded_allow_ips"] == "127.0.0.1"
    assert captured_uvicorn["host"] == "0.0.0.0" and captured_uvicorn["port"] == 5000
    assert captured_uvicorn["workers"] == 1
    assert captured_uvicorn["timeout_graceful_shutdown"] == serve_module.GRACEFUL_SHUTDOWN_SECONDS
    assert captured_uvicorn["access_log"] is False  # our own line per webhook instead
    assert captured_uvicorn["log_config"]["root"]["handlers"] == ["bottender"]


def test_start_port_env_and_forwarded_env(captured_uvicorn, monkeypatch):
    monkeypatch.setenv("PORT", "6123")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1,10.0.0.2")
    assert main(["start"]) == 0
    assert captured_uvicorn["port"] == 6123
    assert captured_uvicorn["forwarded_allow_ips"] == "10.0.0.1,10.0.0.2"
    assert main(["start", "--port", "7000", "--forwarded-allow-ips", "192.0.2.1"]) == 0
    assert captured_uvicorn["port"] == 7000
    assert captured_uvicorn["forwarded_allow_ips"] == "192.0.2.1"


def test_workers_on_memory_store_warn(captured_uvicorn, caplog):
    assert main(["start", "--workers", "3"]) == 0
    assert captured_uvicorn["workers"] == 3
    assert "3 workers on the memory store" in caplog.text
    caplog.clear()
    assert main(["start", "--workers", "1"]) == 0
    assert "memory store" not in caplog.text


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_a_workers_count_below_one_is_refused_before_serving(captured_uvicorn, capsys, workers):
    with pytest.raises(SystemExit) as exited:
        main(["start", "--workers", workers])
    assert exited.value.code == 2
    assert "--workers" in capsys.readouterr().err
    assert captured_uvicorn == {}


# --- the access line ---------------------------------------------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bottender.access"]


async def test_access_line_per_webhook_without_secrets(make_gateway, fake_platform, caplog):
    caplog.set_level(logging.INFO)
    live = make_gateway(app="tests.bots:counter", channels=channels(fake_platform.origin))
    async with aiohttp.ClientSession() as http:
        url = live.url + "/webhooks/telegram"
        async with http.post(url, data=telegram_body(), headers=TELEGRAM_HEADERS) as r:
            assert r.status == 200
        bad = {**TELEGRAM_HEADERS, "X-Telegram-Bot-Api-Secret-Token": "wrong"}
        async with http.post(url, data=telegram_body(update_id=2), headers=bad) as r:
            assert r.status == 401
        body = line_body()
        async with http.post(live.url + "/webhooks/line", data=body, headers=line_headers(body)):
            pass
    ok, refused, line = access_lines(caplog)
    assert ok.getMessage().startswith(
        "webhook platform=telegram status=200 events=1 sessions=telegram:7"
        " answered=done latency_ms="
    )
    assert ok.fields["client"] == "127.0.0.1"
    assert refused.getMessage().startswith("webhook platform=telegram status=401 events=0")
    assert "error=" in refused.getMessage()
    assert "platform=line status=200 events=1 sessions=line:U1" in line.getMessage()
    everything = caplog.text
    for secret in (TELEGRAM_TOKEN, TELEGRAM_SECRET, LINE_TOKEN, LINE_SECRET, MESSAGE_TEXT):
        assert secret not in everything

    entry = json.loads(JsonFormatter().format(ok))
    assert entry["event"] == "webhook"
    assert (entry["platform"], entry["status"], entry["events"]) == ("telegram", 200, 1)
    assert entry["sessions"] == ["telegram:7"]
    assert isinstance(entry["latency_ms"], float)


def test_key_values_quote_what_needs_it():
    assert key_values({"a": "x y", "b": None, "c": [], "d": 1.25, "e": ["s:1", "s:2"]}) == (
        'a="x y" b=- c=- d=1.2 e=s:1,s:2'
    )


# --- answering in time ---------------------------------------------------------------


async def test_slow_line_bot_is_answered_in_time_and_still_replies(
    make_gateway, fake_platform, caplog
):
    caplog.set_level(logging.INFO)
    live = make_gateway(app="tests.bots:slow", channels=channels(fake_platform.origin))
    body = line_body()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            live.url + "/webhooks/line", data=body, headers=line_headers(body)
        ) as response:
            assert response.status == 200
    # Answered at the deadline (the access line below says so), not when the bot is done:
    # the bot is still working.
    assert fake_platform.calls_to("/reply") == []

    # The slow bot takes 5 s; up to 30 s on a loaded machine.
    await until(lambda: fake_platform.calls_to("/v2/bot/message/reply"), "the slow bot's reply")
    [reply] = fake_platform.calls_to("/v2/bot/message/reply")
    assert reply.json == {
        "replyToken": "reply-token-U1",
        "messages": [{"type": "text", "text": "Count: 1"}],
    }
    session = live.run(live.gateway.store.read("line:U1"))
    assert session is not None and session.state == {"count": 1}
    messages = [r.getMessage() for r in access_lines(caplog)]
    assert any("platform=line status=200" in m and "answered=deadline" in m for m in messages)
    assert any(
        m.startswith("background_done platform=line") and "outcome=ok" in m for m in messages
    )


# --- SIGTERM with slow handlers in flight ----------------------------------------------------


def start_slow_bot(tmp_path: Path, fake_platform, start_server) -> tuple[Bottender, str]:
    """``bottender start`` with the 5 s bot on both channels, sessions in a file store."""
    write_config(
        tmp_path,
        app="tests.bots:slow",
        initial_state={"count": 0},
        session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "sessions")}}},
        channels=channels(fake_platform.origin),
    )
    return start_server()


def read_back(tmp_path: Path, *keys: str) -> dict[str, Any]:
    """The states a stopped server left in its file store."""
    from bottender.sessions.file import FileStore

    async def read() -> dict[str, Any]:
        store = FileStore(str(tmp_path / "sessions"))
        await store.open()
        try:
            sessions = {key: await store.read(key) for key in keys}
        finally:
            await store.close()
        return {key: s.state if s else None for key, s in sessions.items()}

    return asyncio.run(read())


def test_sigterm_finishes_events_in_flight_and_writes_sessions(
    tmp_path, fake_platform, start_server
):
    server, url = start_slow_bot(tmp_path, fake_platform, start_server)

    # Telegram's deadline is 20 s: this request is still open when SIGTERM comes.
    telegram_status: list[int] = []
    in_flight = threading.Thread(
        target=lambda: telegram_status.append(
            post(url + "/webhooks/telegram", telegram_body(), TELEGRAM_HEADERS)
        )
    )
    in_flight.start()
    # LINE's deadline is 1 s: answered, its event goes on in the background.
    body = line_body()
    assert post(url + "/webhooks/line", body, line_headers(body)) == 200
    # Answered at the deadline: neither bot has replied yet.
    assert fake_platform.calls_to("/sendMessage") == fake_platform.calls_to("/reply") == []

    server.signal(signal.SIGTERM)
    code = server.wait(30)
    in_flight.join(5)
    assert code in (0, -signal.SIGTERM), server.stderr
    assert telegram_status == [200]  # the open request was finished, not cut
    assert sorted(fake_platform.texts("/sendMessage") + fake_platform.texts("/reply")) == [
        "Count: 1",
        "Count: 1",
    ]
    log = server.stderr
    assert "background_done platform=line" in log and "outcome=ok" in log
    assert "webhook platform=telegram status=200 events=1 sessions=telegram:7" in log
    for secret in (TELEGRAM_TOKEN, TELEGRAM_SECRET, LINE_TOKEN, MESSAGE_TEXT):
        assert secret not in log
    assert read_back(tmp_path, "line:U1", "telegram:7") == {
        "line:U1": {"count": 1},
        "telegram:7": {"count": 1},
    }


def test_sigterm_with_only_a_background_event_left_waits_for_it(
    tmp_path, fake_platform, start_server
):
    """No request is open, so the HTTP server stops at once: the gateway itself must wait."""
    server, url = start_slow_bot(tmp_path, fake_platform, start_server)
    body = line_body()
    assert post(url + "/webhooks/line", body, line_headers(body)) == 200

    signalled = time.monotonic()
    server.signal(signal.SIGTERM)
    code = server.wait(30)

    assert code in (0, -signal.SIGTERM), server.stderr
    assert "waiting for 1 event(s) still running" in server.stderr
    assert time.monotonic() - signalled > 2.0  # the slow bot's 5 s were waited for
    assert fake_platform.texts("/reply") == ["Count: 1"]
    assert read_back(tmp_path, "line:U1") == {"line:U1": {"count": 1}}


# --- forwarded headers, JSON logs, several workers (live) -----------------------------


def test_forwarded_for_trusted_from_local_proxy_json_logs(tmp_path, fake_platform, start_server):
    write_config(
        tmp_path,
        app="tests.bots:counter",
        initial_state={"count": 0},
        channels=channels(fake_platform.origin),
    )
    server, url = start_server("--log-format", "json")
    headers = {**TELEGRAM_HEADERS, "X-Forwarded-For": "203.0.113.7"}
    assert post(url + "/webhooks/telegram", telegram_body(), headers) == 200
    wait_for(lambda: '"event": "webhook"' in server.stderr, "the access line", timeout=10)
    server.signal(signal.SIGTERM)
    server.wait(20)
    entries = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    [access] = [e for e in entries if e.get("event") == "webhook"]
    assert access["client"] == "203.0.113.7"  # 127.0.0.1 is a trusted proxy by default
    assert (access["platform"], access["status"], access["sessions"]) == (
        "telegram",
        200,
        ["telegram:7"],
    )


def test_forwarded_for_ignored_from_untrusted_clients_with_two_workers(
    tmp_path, fake_platform, start_server
):
    write_config(
        tmp_path,
        app="tests.bots:counter",
        initial_state={"count": 0},
        channels=channels(fake_platform.origin),
    )
    server, url = start_server("--workers", "2", "--forwarded-allow-ips", "10.9.9.9")
    headers = {**TELEGRAM_HEADERS, "X-Forwarded-For": "203.0.113.7"}
    assert post(url + "/webhooks/telegram", telegram_body(), headers) == 200
    wait_for(lambda: "webhook platform=telegram" in server.stderr, "the access line", timeout=10)
    server.signal(signal.SIGTERM)
    assert server.wait(20) in (0, -signal.SIGTERM)
    assert "2 workers on the memory store" in server.stderr
    assert "client=127.0.0.1" in server.stderr
    assert "203.0.113.7" not in server.stderr
