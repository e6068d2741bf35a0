"""``bottender telegram webhook set|get|delete`` and ``bottender line webhook set|get|test``.

The commands run in-process against the fake platform (each channel's
``origin`` points at it); one test runs the installed command as a process,
reading its token from ``.env`` as a bot project would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bottender.connectors.telegram import UPDATE_KINDS
from bottender.server.cli import main
from tests.fixtures.gateway import write_config
from tests.fixtures.tunnels import REPO, free_port

TOKEN = "123456:AAH-secret_bot_token"
LINE_TOKEN = "line-access-token-secret"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_platform) -> Path:
    """A bot project with both channels pointed at the fake platform; the cwd is the project."""
    monkeypatch.chdir(tmp_path)
    # No ngrok agent answers unless a test says so.
    monkeypatch.setenv("NGROK_API_URL", f"http://127.0.0.1:{free_port()}")
    write_config(tmp_path, **channels(fake_platform.origin))
    return tmp_path


def channels(origin: str, **overrides: Any) -> dict[str, Any]:
    line = {
        "enabled": True,
        "access_token": LINE_TOKEN,
        "channel_secret": "line-secret",
        "origin": origin,
    }
    telegram = {
        "enabled": True,
        "access_token": TOKEN,
        "secret_token": "configured-secret",
        "origin": origin,
    }
    line.update(overrides.get("line", {}))
    telegram.update(overrides.get("telegram", {}))
    return {"app": "tests.bots:counter", "channels": {"line": line, "telegram": telegram}}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- Telegram ----------------------------------------------------------------


def test_telegram_set_registers_url_secret_and_every_update_kind(project, fake_platform, capsys):
    url = "https://bot.example.com/webhooks/telegram"
    code, out, err = run(capsys, "telegram", "webhook", "set", "--webhook", url)
    assert (code, err) == (0, "")
    [call] = fake_platform.calls_to("/setWebhook")
    assert call.path == f"/bot{TOKEN}/setWebhook"
    assert call.json == {
        "url": url,
        "secret_token": "configured-secret",
        "allowed_updates": list(UPDATE_KINDS),
    }
    assert f"Telegram webhook set: {url}" in out
    assert "configured-secret" not in out and TOKEN not in out


def test_telegram_set_secret_token_option_and_drop_pending(project, fake_platform, capsys):
    code, out, _ = run(
        capsys,
        "telegram",
        "webhook",
        "set",
        "--webhook",
        "https://bot.example.com/tg",
        "--secret-token",
        "other-secret",
        "--drop-pending-updates",
    )
    assert code == 0
    [call] = fake_platform.calls_to("/setWebhook")
    assert call.json["secret_token"] == "other-secret"
    assert call.json["drop_pending_updates"] is True
    assert "differs from channels.telegram.secret_token" in out
    assert "Pending updates dropped" in out


def test_telegram_set_without_secret_token_sends_none(tmp_path, fake_platform, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, **channels(fake_platform.origin, telegram={"secret_token": None}))
    assert run(capsys, "telegram", "webhook", "set", "--webhook", "https://h/tg")[0] == 0
    [call] = fake_platform.calls_to("/setWebhook")
    assert "secret_token" not in call.json


def test_set_without_webhook_uses_the_running_ngrok_tunnel(
    project, fake_platform, capsys, monkeypatch
):
    # The fake platform stands in for ngrok's local agent API too.
    fake_platform.answer(
        "/api/tunnels",
        (
            200,
            {
                "tunnels": [
                    {
                        "proto": "http",
                        "public_url": "http://ab12.ngrok-free.app",
                        "config": {"addr": "http://localhost:5000"},
                    },
                    {
                        "proto": "https",
                        "public_url": "https://ab12.ngrok-free.app",
                        "config": {"addr": "http://localhost:5000"},
                    },
                ]
            },
        ),
    )
    monkeypatch.setenv("NGROK_API_URL", fake_platform.origin)
    assert run(capsys, "telegram", "webhook", "set")[0] == 0
    assert run(capsys, "line", "webhook", "set")[0] == 0
    [telegram] = fake_platform.calls_to("/setWebhook")
    assert telegram.json["url"] == "https://ab12.ngrok-free.app/webhooks/telegram"
    [line] = fake_platform.calls_to("/v2/bot/channel/webhook/endpoint")[:1]
    assert line.json == {"endpoint": "https://ab12.ngrok-free.app/webhooks/line"}


@pytest.mark.parametrize("platform", ["telegram", "line"])
def test_set_without_webhook_or_tunnel_says_what_to_do(project, fake_platform, capsys, platform):
    code, _, err = run(capsys, platform, "webhook", "set")
    assert code == 1
    assert "--webhook" in err and "bottender dev" in err
    assert f"/webhooks/{platform}" in err
    assert fake_platform.calls == []


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, "Unauthorized"),
        (
            400,
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook",
            },
            "HTTPS url must be provided for webhook",
        ),
    ],
)
def test_telegram_refusal_prints_the_reason_and_fails(
    project, fake_platform, capsys, status, body, reason
):
    fake_platform.answer(f"/bot{TOKEN}/setWebhook", (status, body))
    code, out, err = run(capsys, "telegram", "webhook", "set", "--webhook", "http://h/tg")
    assert code == 1
    assert reason in err and f"Telegram API error {status}" in err
    assert TOKEN not in err + out


def test_telegram_get_prints_the_webhook_readably(project, fake_platform, capsys):
    fake_platform.answer(
        f"/bot{TOKEN}/getWebhookInfo",
        (
            200,
            {
                "ok": True,
                "result": {
                    "url": "https://bot.example.com/webhooks/telegram",
                    "has_custom_certificate": False,
                    "pending_update_count": 3,
                    "last_error_date": 1_700_000_000,
                    "last_error_message": "Wrong response from the webhook: 502 Bad Gateway",
                    "max_connections": 40,
                    "ip_address": "203.0.113.5",
                    "allowed_updates": ["message", "callback_query"],
                },
            },
        ),
    )
    code, out, _ = run(capsys, "telegram", "webhook", "get")
    assert code == 0
    assert out.splitlines() == [
        "Telegram webhook: https://bot.example.com/webhooks/telegram",
        "Pending updates: 3",
        "Last error: Wrong response from the webhook: 502 Bad Gateway (at 2023-11-14 22:13:20 UTC)",
        "Allowed updates: message, callback_query",
        "Max connections: 40",
        "IP address: 203.0.113.5",
    ]


def test_telegram_get_without_webhook(project, fake_platform, capsys):
    fake_platform.answer(
        f"/bot{TOKEN}/getWebhookInfo",
        (200, {"ok": True, "result": {"url": "", "pending_update_count": 0}}),
    )
    code, out, _ = run(capsys, "telegram", "webhook", "get")
    assert code == 0
    assert "Telegram webhook: none set" in out


@pytest.mark.parametrize("drop", [False, True])
def test_telegram_delete(project, fake_platform, capsys, drop):
    args = ["telegram", "webhook", "delete"] + (["--drop-pending-updates"] if drop else [])
    code, out, _ = run(capsys, *args)
    assert code == 0 and "Telegram webhook deleted" in out
    [call] = fake_platform.calls_to("/deleteWebhook")
    assert call.json == ({"drop_pending_updates": True} if drop else {})


# --- LINE ----------------------------------------------------------------------


def test_line_set_puts_the_endpoint(project, fake_platform, capsys):
    fake_platform.answer(
        "/v2/bot/channel/webhook/endpoint",
        lambda call: (
            (200, {})
            if call.method == "PUT"
            else (200, {"endpoint": "https://bot.example.com/webhooks/line", "active": True})
        ),
    )
    url = "https://bot.example.com/webhooks/line"
    code, out, _ = run(capsys, "line", "webhook", "set", "--webhook", url)
    assert code == 0
    put = fake_platform.calls[0]
    assert (put.method, put.path, put.json) == (
        "PUT",
        "/v2/bot/channel/webhook/endpoint",
        {"endpoint": url},
    )
    assert put.headers["Authorization"] == f"Bearer {LINE_TOKEN}"
    assert out.splitlines() == [f"LINE webhook set: {url}"]


def test_line_set_says_when_use_webhook_is_off(project, fake_platform, capsys):
    fake_platform.answer(
        "/v2/bot/channel/webhook/endpoint",
        lambda call: (
            (200, {})
            if call.method == "PUT"
            else (200, {"endpoint": "https://h/webhooks/line", "active": False})
        ),
    )
    code, out, _ = run(capsys, "line", "webhook", "set", "--webhook", "https://h/webhooks/line")
    assert code == 0 and "Use webhook" in out


def test_line_get(project, fake_platform, capsys):
    fake_platform.answer(
        "/v2/bot/channel/webhook/endpoint",
        (200, {"endpoint": "https://bot.example.com/webhooks/line", "active": True}),
    )
    code, out, _ = run(capsys, "line", "webhook", "get")
    assert code == 0
    assert out.splitlines() == [
        "LINE webhook: https://bot.example.com/webhooks/line",
        "Active: yes",
    ]


def test_line_test_success_and_failure(project, fake_platform, capsys):
    fake_platform.answer(
        "/v2/bot/channel/webhook/test",
        (
            200,
            {
                "success": True,
                "timestamp": "2025-01-01T00:00:00.000Z",
                "statusCode": 200,
                "reason": "OK",
                "detail": "200",
            },
        ),
        (
            200,
            {
                "success": False,
                "timestamp": "2025-01-01T00:00:01.000Z",
                "statusCode": 401,
                "reason": "ERROR_STATUS_CODE",
                "detail": "401 Unauthorized",
            },
        ),
    )
    code, out, _ = run(capsys, "line", "webhook", "test")
    assert code == 0
    assert out.splitlines()[:4] == [
        "LINE webhook test: success",
        "Status code: 200",
        "Reason: OK",
        "Detail: 200",
    ]
    code, out, _ = run(capsys, "line", "webhook", "test", "--webhook", "https://h/x")
    assert code == 1
    assert "FAILED" in out and "ERROR_STATUS_CODE" in out and "401 Unauthorized" in out
    assert fake_platform.calls[-1].json == {"endpoint": "https://h/x"}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {"message": "Authentication failed. Confirm that the access token is valid."},
            "LINE API error 401 in PUT /v2/bot/channel/webhook/endpoint: Authentication failed",
        ),
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "must be a valid HTTPS URL", "property": "endpoint"}],
            },
            "endpoint: must be a valid HTTPS URL",
        ),
    ],
)
def test_line_refusal_prints_the_reason_and_fails(
    project, fake_platform, capsys, status, body, expected
):
    fake_platform.answer("/v2/bot/channel/webhook/endpoint", (status, body))
    code, out, err = run(capsys, "line", "webhook", "set", "--webhook", "http://h/line")
    assert code == 1
    assert expected in err
    assert LINE_TOKEN not in err + out


# --- config and transport problems ------------------------------------------------


@pytest.mark.parametrize("platform", ["telegram", "line"])
def test_disabled_channel_is_named(tmp_path, fake_platform, capsys, monkeypatch, platform):
    monkeypatch.chdir(tmp_path)
    names = channels(fake_platform.origin, **{platform: {"enabled": False}})
    write_config(tmp_path, **names)
    code, _, err = run(capsys, platform, "webhook", "get")
    assert code == 1
    assert f"channels.{platform} is not enabled" in err
    assert fake_platform.calls == []


def test_missing_token_is_a_config_error(tmp_path, fake_platform, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, **channels(fake_platform.origin, telegram={"access_token": None}))
    code, _, err = run(capsys, "telegram", "webhook", "get")
    assert code == 2
    assert "channels.telegram.access_token" in err and "TELEGRAM_ACCESS_TOKEN" in err


def test_unreachable_platform_fails_without_showing_the_token(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, **channels(f"http://127.0.0.1:{free_port()}"))
    code, out, err = run(capsys, "telegram", "webhook", "set", "--webhook", "https://h/tg")
    assert code == 1
    assert "Telegram API unreachable: cannot connect to 127.0.0.1" in err
    assert TOKEN not in out + err


def test_installed_command_reads_the_token_from_dotenv(tmp_path, fake_platform):
    """As a bot project uses it: the console script, bottender_config.py reading .env."""
    (tmp_path / "bottender_config.py").write_text(
        textwrap.dedent(
            f"""
            import os
            app = "tests.bots:counter"
            channels = {{
                "telegram": {{
                    "enabled": bool(os.getenv("TELEGRAM_ACCESS_TOKEN")),
                    "access_token": os.getenv("TELEGRAM_ACCESS_TOKEN"),
                    "origin": {fake_platform.origin!r},
                }},
            }}
            """
        )
    )
    (tmp_path / ".env").write_text("TELEGRAM_ACCESS_TOKEN=42:from-dotenv\n")
    script = Path(sys.executable).parent / "bottender"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bottender.server.cli"]
    result = subprocess.run(
        [*command, "telegram", "webhook", "delete"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Telegram webhook deleted"
    assert [c.path for c in fake_platform.calls] == ["/bot42:from-dotenv/deleteWebhook"]
