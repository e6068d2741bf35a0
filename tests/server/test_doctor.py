"""``bottender doctor`` against the fake platform and a real store: a table and an exit code."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bottender.server.cli import main
from tests.fixtures.gateway import write_config
from tests.fixtures.servers import free_port

TG = "/bot123:TOKEN"
PUBLIC = "https://bot.example.com"


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The table's rows by check name: (status, detail)."""
    lines = output.strip().splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    found = {}
    for line in lines[1:]:
        check, status, detail = (part.strip() for part in _columns(line, lines[0]))
        found[check] = (status, detail)
    return found


def _columns(line: str, header: str) -> tuple[str, str, str]:
    status_at, detail_at = header.index("STATUS"), header.index("DETAIL")
    return line[:status_at], line[status_at:detail_at], line[detail_at:]


def config(tmp_path: Path, fake_platform: Any, store: dict[str, Any]) -> Path:
    return write_config(
        tmp_path,
        app="tests.bots:counter",
        session=store,
        channels={
            "telegram": {
                "enabled": True,
                "access_token": "123:TOKEN",
                "origin": fake_platform.origin,
            },
            "line": {
                "enabled": True,
                "access_token": "LINE-TOKEN",
                "channel_secret": "secret",
                "origin": fake_platform.origin,
            },
        },
    )


def healthy(fake_platform: Any, **webhook_info: Any) -> None:
    me = {"id": 123, "is_bot": True, "first_name": "Doc", "username": "doc_bot"}
    fake_platform.answer(f"{TG}/getMe", (200, {"ok": True, "result": me}))
    info = {"url": f"{PUBLIC}/webhooks/telegram", "pending_update_count": 0, **webhook_info}
    fake_platform.answer(f"{TG}/getWebhookInfo", (200, {"ok": True, "result": info}))
    bot = {"userId": "U1", "basicId": "@123abcde", "displayName": "Doc", "chatMode": "bot"}
    fake_platform.answer("/v2/bot/info", (200, bot))
    endpoint = {"endpoint": f"{PUBLIC}/webhooks/line", "active": True}
    fake_platform.answer("/v2/bot/channel/webhook/endpoint", (200, endpoint))


def test_a_healthy_gateway_passes_every_check(
    tmp_path, fake_platform, redis_server, capsys
) -> None:
    healthy(fake_platform)
    store = {"driver": "redis", "stores": {"redis": {"url": redis_server}}}
    path = config(tmp_path, fake_platform, store)
    code = main(["doctor", "--config", str(path), "--public-url", PUBLIC])
    table = rows(capsys.readouterr().out)
    assert code == 0, table
    assert table["config"] == ("ok", str(path))
    assert table["store (redis)"][0] == "ok"
    assert table["store (redis)"][1].startswith("round trip ")
    assert table["clock skew vs store"][0] == "ok"
    assert table["telegram token"] == ("ok", "@doc_bot")
    assert table["telegram webhook"] == ("ok", f"{PUBLIC}/webhooks/telegram")
    assert table["telegram pending"] == ("ok", "0")
    assert table["telegram last error"] == ("ok", "none")
    assert table["line token"] == ("ok", "Doc (@123abcde)")
    assert table["line webhook"] == ("ok", f"{PUBLIC}/webhooks/line")


def test_each_problem_is_a_failed_row_and_exit_1(tmp_path, fake_platform, capsys) -> None:
    healthy(fake_platform, pending_update_count=250, last_error_message="Connection refused")
    info = fake_platform.answers[f"{TG}/getWebhookInfo"][0][1]["result"]
    info["last_error_date"] = int(time.time()) - 30
    fake_platform.answer(
        "/v2/bot/info", (401, {"message": "Authentication failed due to the expired token"})
    )
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    store = {"driver": "redis", "stores": {"redis": {"url": dead_redis}}}
    path = config(tmp_path, fake_platform, store)
    code = main(["doctor", "--config", str(path), "--public-url", "https://elsewhere.example"])
    table = rows(capsys.readouterr().out)
    assert code == 1
    assert table["store (redis)"][0] == "FAIL"
    assert "unreachable" in table["store (redis)"][1]
    assert table["telegram token"] == ("ok", "@doc_bot")
    assert table["telegram webhook"] == (
        "FAIL",
        f"{PUBLIC}/webhooks/telegram (configured: https://elsewhere.example/webhooks/telegram)",
    )
    assert table["telegram pending"] == ("warn", "250")
    assert table["telegram last error"][0] == "FAIL"
    assert table["telegram last error"][1].startswith("Connection refused (")
    assert table["line token"][0] == "FAIL"
    assert "401" in table["line token"][1] and "expired token" in table["line token"][1]


def test_without_a_public_url_the_registered_path_is_checked(
    tmp_path, fake_platform, capsys
) -> None:
    healthy(fake_platform)
    fake_platform.answer(
        "/v2/bot/channel/webhook/endpoint",
        (200, {"endpoint": f"{PUBLIC}/old/line", "active": True}),
    )
    path = config(tmp_path, fake_platform, {"driver": "memory"})
    code = main(["doctor", "--config", str(path)])
    table = rows(capsys.readouterr().out)
    assert code == 1
    assert "clock skew vs store" not in table  # the memory store shares this clock
    assert table["telegram webhook"][0] == "ok"
    assert table["line webhook"] == (
        "FAIL",
        f"{PUBLIC}/old/line (configured path: /webhooks/line)",
    )


def test_a_refused_telegram_token_fails(tmp_path, fake_platform, capsys) -> None:
    fake_platform.answer(
        f"{TG}/getMe", (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    )
    path = write_config(
        tmp_path,
        app="tests.bots:counter",
        channels={
            "telegram": {
                "enabled": True,
                "access_token": "123:TOKEN",
                "origin": fake_platform.origin,
            }
        },
    )
    assert main(["doctor", "--config", str(path)]) == 1
    output = capsys.readouterr().out
    table = rows(output)
    assert table["telegram token"][0] == "FAIL"
    assert "Unauthorized" in table["telegram token"][1]
    assert "123:TOKEN" not in output


TG_REFUSAL = {"ok": False, "error_code": 400, "description": "Bad Request: not now"}
LINE_REFUSAL = {"message": "Access to this API is not available for your account"}


@pytest.mark.parametrize(
    ("platform", "webhook_call", "refusal", "words"),
    [
        ("telegram", f"{TG}/getWebhookInfo", (400, TG_REFUSAL), "not now"),
        ("line", "/v2/bot/channel/webhook/endpoint", (403, LINE_REFUSAL), "not available"),
    ],
)
def test_a_refused_webhook_lookup_fails_and_ends_its_channels_rows(
    tmp_path, fake_platform, capsys, platform, webhook_call, refusal, words
) -> None:
    healthy(fake_platform)
    fake_platform.answer(webhook_call, refusal)
    path = config(tmp_path, fake_platform, {"driver": "memory"})
    assert main(["doctor", "--config", str(path)]) == 1
    table = rows(capsys.readouterr().out)
    assert table[f"{platform} token"][0] == "ok"
    assert table[f"{platform} webhook"][0] == "FAIL"
    assert words in table[f"{platform} webhook"][1]
    assert [check for check in table if check.startswith(platform)] == [
        f"{platform} token",
        f"{platform} webhook",
    ]


@pytest.mark.parametrize("bad", [{"session": {"driver": "sql"}}])
def test_a_config_that_does_not_load_is_the_one_failed_row(tmp_path, capsys, bad) -> None:
    path = write_config(tmp_path, app="tests.bots:counter", **bad)
    assert main(["doctor", "--config", str(path)]) == 1
    table = rows(capsys.readouterr().out)
    assert list(table) == ["config"]
    assert table["config"][0] == "FAIL" and "session.driver" in table["config"][1]
