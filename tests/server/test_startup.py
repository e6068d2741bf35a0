"""What ``bottender`` says on its first run: the banner, warnings, one-line failures, help.

Every test runs the real command as a process (``bottender ...``), as a newcomer would.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import write_config
from tests.server.conftest import PROJECT_ENV, ROOT, WEBHOOK, http
from tests.server.test_cli import Server, bottender_argv, free_port
from tests.server.updates import text_update

TELEGRAM_TOKEN = "123:T"
UNAUTHORIZED = (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
LINE_UNAUTHORIZED = (
    401,
    {
        "message": "Authentication failed. Confirm that the access token in the authorization"
        " header is valid."
    },
)


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*PROJECT_ENV, "PORT")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def bottender(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*bottender_argv(), *args],
        cwd=cwd,
        env=environ(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def both_channels(origin: str, *, telegram_origin: str | None = None) -> dict[str, Any]:
    return {
        "line": {
            "enabled": True,
            "access_token": "line-token",
            "channel_secret": "line-secret",
            "origin": origin,
        },
        "telegram": {
            "enabled": True,
            "access_token": TELEGRAM_TOKEN,
            "origin": telegram_origin or origin,
        },
    }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``serve(*args, **config_names)``: ``bottender start`` in a project, once healthy."""
    servers: list[Server] = []

    def start(*args: str, **names: Any) -> Server:
        config = write_config(tmp_path, app="tests.bots:counter", **names)
        port = free_port()
        log = tmp_path / f"server-{len(servers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(*bottender_argv(), "start", "--host", "127.0.0.1", "--port", str(port)),
                    *("--config", str(config), *args),
                ],
                cwd=tmp_path,
                env=environ(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, port, log)
        servers.append(server)
        server.wait_until_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


def test_the_banner_names_the_app_the_store_and_each_channel_with_its_path(serve, fake_platform):
    server = serve(channels=both_channels(fake_platform.origin))
    lines = server.output().splitlines()
    assert "Bottender: app tests.bots:counter" in lines
    assert "Session store: memory (sessions never expire)" in lines
    # Each token was accepted: the platform said who the bot is.
    assert "LINE webhook:      POST /webhooks/line (Test Bot @216ru...)" in lines
    assert "Telegram webhook:  POST /webhooks/telegram (@test_bot)" in lines
    assert f"Listening on http://127.0.0.1:{server.port}" in lines
    assert "no channel is enabled" not in server.output()
    assert "refused" not in server.output()


def test_no_channel_enabled_is_a_warning_and_the_server_still_starts(serve, fake_platform):
    server = serve()
    output = server.output()
    assert "no channel is enabled in bottender_config.py: every webhook will get 404" in output
    assert "LINE_ACCESS_TOKEN or TELEGRAM_ACCESS_TOKEN" in output
    assert http(server.url + WEBHOOK, text_update(1, "hi")).status == 404


def test_each_token_is_checked_once_at_start(serve, fake_platform):
    serve(channels=both_channels(fake_platform.origin))
    [get_me] = fake_platform.calls_to("/getMe")
    assert get_me.path == f"/bot{TELEGRAM_TOKEN}/getMe"
    # The start-up check asks first; the serving worker asks again, in the background,
    # who its bot is (the LINE destination check, connectors/line.py).
    info = fake_platform.calls_to("/v2/bot/info")[0]
    assert info.method == "GET" and info.headers["Authorization"] == "Bearer line-token"
    assert len(fake_platform.calls_to("/v2/bot/info")) <= 2


def test_a_refused_token_is_one_warning_naming_the_channel_and_the_server_starts(
    serve, fake_platform
):
    fake_platform.answer(f"/bot{TELEGRAM_TOKEN}/getMe", UNAUTHORIZED)
    server = serve(channels=both_channels(fake_platform.origin))
    warnings = [line for line in server.output().splitlines() if "access token" in line]
    assert len(warnings) == 1, server.output()
    assert (
        "channel 'telegram': Telegram refused the access token (401 Unauthorized)" in (warnings[0])
    )
    assert TELEGRAM_TOKEN not in server.output()
    assert http(server.url + WEBHOOK, text_update(1, "hi")).status == 200  # serving anyway


def test_a_refused_line_token_and_an_unreachable_platform_are_warnings(serve, fake_platform):
    fake_platform.answer("/v2/bot/info", LINE_UNAUTHORIZED)
    closed = f"http://127.0.0.1:{free_port()}"
    server = serve(channels=both_channels(fake_platform.origin, telegram_origin=closed))
    output = server.output()
    assert "channel 'line': LINE refused the access token (401 Authentication failed." in output
    assert "channel 'telegram': could not check the Telegram access token" in output
    assert "Traceback" not in output
    assert http(server.url + "/healthz", method="GET").status == 200


def test_no_check_asks_no_platform(serve, fake_platform):
    channels = both_channels(fake_platform.origin)
    channels["line"]["bot_user_id"] = "U" + "0" * 32  # known: the worker asks LINE nothing either
    server = serve("--no-check", channels=channels)
    assert fake_platform.calls == []
    assert "Telegram webhook:  POST /webhooks/telegram" in server.output().splitlines()


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path, fake_platform):
    write_config(tmp_path, app="tests.bots:counter")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = bottender("start", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"bottender: cannot listen on 127.0.0.1:{port} (Address already in use);"
        " stop what uses it or pass --port"
    ]
    assert "Traceback" not in done.stdout and "Errno" not in done.stdout + done.stderr


def test_version(tmp_path):
    done = bottender("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("bottender ") and done.stdout.split()[1][0].isdigit()


def test_the_command_alone_prints_the_help(tmp_path):
    done = bottender(cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: bottender")
    for command in ("start", "dev", "telegram", "line"):
        assert command in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "--port", "abc"], "argument --port: not a port number: 'abc'"),
        (["start", "--port", "70000"], "argument --port: port out of range (1-65535): 70000"),
        (["dev", "--port", "x1"], "argument --port: not a port number: 'x1'"),
        (["start", "--workers", "two"], "argument --workers: not a number of workers: 'two'"),
    ],
)
def test_bad_options_are_named_as_typed(tmp_path, args, message):
    done = bottender(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "_port" not in done.stderr and "_workers" not in done.stderr


def test_a_mongodb_that_is_down_is_one_short_line(tmp_path):
    port = free_port()
    url = f"mongodb://bot:s3cret@127.0.0.1:{port}/bottender?serverSelectionTimeoutMS=300"
    write_config(
        tmp_path,
        app="tests.bots:counter",
        session={"driver": "mongo", "stores": {"mongo": {"url": url}}},
    )
    done = bottender("start", "--host", "127.0.0.1", "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("bottender: session store unavailable: cannot reach MongoDB at")
    assert "Topology" not in line and "s3cret" not in line
    # The driver's reason, without PyMongo's timeouts and topology description.
    assert line.endswith(f"127.0.0.1:{port}: [Errno 111] Connect call failed ('127.0.0.1', {port})")


@pytest.mark.parametrize("driver", ["redis", "file"])
def test_other_stores_that_are_down_are_one_line_too(tmp_path, driver):
    if driver == "redis":
        options = {"url": f"redis://:s3cret@127.0.0.1:{free_port()}/0"}
        start = "cannot reach Redis at redis://:***@127.0.0.1:"
    else:
        (tmp_path / "taken").write_text("a file where the directory should be")
        options = {"dirname": str(tmp_path / "taken" / "sessions")}
        start = f"cannot use {tmp_path / 'taken' / 'sessions'} as the session directory"
    write_config(
        tmp_path, app="tests.bots:counter", session={"driver": driver, "stores": {driver: options}}
    )
    done = bottender("start", "--host", "127.0.0.1", "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"bottender: session store unavailable: {start}"), line
    assert "s3cret" not in line


def test_the_banner_in_polling_mode_says_which_channels_poll(tmp_path, monkeypatch) -> None:
    from bottender.server.config import load_config
    from bottender.server.startup import banner

    monkeypatch.chdir(tmp_path)
    channels = both_channels("http://127.0.0.1:9")
    channels["shop"] = {**channels["telegram"], "platform": "telegram", "access_token": "9:SHOP"}
    config = load_config(write_config(tmp_path, app="tests.bots:counter", channels=channels))
    lines = banner(config, host="127.0.0.1", port=5000, polling=True)
    assert any(line.startswith("Telegram:") and "polling for updates" in line for line in lines)
    assert any(line.startswith("Telegram (shop):") and "polling" in line for line in lines)
    assert any(line.startswith("LINE:") and "skipped" in line for line in lines)
    webhooks = banner(config, host="127.0.0.1", port=5000)
    assert any(line.startswith("Telegram (shop) webhook:") for line in webhooks)
