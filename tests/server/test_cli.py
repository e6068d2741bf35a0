"""``bottender start`` as a real process, serving the counting bot against the fake platform."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.gateway import write_config
from tests.server.conftest import PROJECT_ENV, ROOT, WEBHOOK, http
from tests.server.updates import text_update

STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bottender_argv() -> list[str]:
    command = Path(sys.executable).with_name("bottender")
    return [str(command)] if command.exists() else [sys.executable, "-m", "bottender.server.cli"]


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if http(self.url + "/healthz", method="GET", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"bottender start did not serve /healthz; its output:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def start_server(tmp_path, fake_platform) -> Iterator[Callable[..., Server]]:
    """Run ``bottender start ARGS`` in ``tmp_path`` with a config for the counting bot."""
    servers: list[Server] = []
    config = write_config(
        tmp_path,
        app="examples.counter:app",
        initial_state={"count": 0},
        channels={
            "telegram": {"enabled": True, "access_token": "123:T", "origin": fake_platform.origin}
        },
    )

    def start(*args: str, port: int, env: dict[str, str] | None = None) -> Server:
        environ = {k: v for k, v in os.environ.items() if k not in (*PROJECT_ENV, "PORT")}
        environ.update(PYTHONPATH=str(ROOT), **(env or {}))
        log = tmp_path / f"server-{len(servers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*bottender_argv(), "start", "--host", "127.0.0.1", "--config", str(config), *args],
                cwd=tmp_path,
                env=environ,
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


def test_start_serves_healthz_and_the_counting_bot(start_server, fake_platform):
    port = free_port()
    server = start_server("--port", str(port), port=port)
    health = http(server.url + "/healthz", method="GET")
    assert health.status == 200 and isinstance(health.json(), dict)
    for update_id in (1, 2, 3):
        reply = http(server.url + WEBHOOK, text_update(update_id, "hi", chat_id=42))
        assert reply.status == 200
    assert fake_platform.texts() == ["Count: 1", "Count: 2", "Count: 3"]
    (call, *_) = fake_platform.calls_to("/sendMessage")
    assert call.path == "/bot123:T/sendMessage"
    assert call.json["chat_id"] == 42
    # SIGTERM ends it promptly, having shut down gracefully.
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in server.output()


def test_start_listens_on_the_port_env_when_no_port_is_given(start_server, fake_platform):
    port = free_port()
    server = start_server(port=port, env={"PORT": str(port)})
    assert http(server.url + WEBHOOK, text_update(1, "hi")).status == 200
    assert fake_platform.texts() == ["Count: 1"]


def test_the_port_option_wins_over_the_port_env(start_server):
    port, other = free_port(), free_port()
    server = start_server("--port", str(port), port=port, env={"PORT": str(other)})
    assert http(server.url + "/healthz", method="GET").status == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", other), timeout=2).close()


def test_start_takes_the_port_from_dotenv(start_server, tmp_path):
    port = free_port()
    (tmp_path / ".env").write_text(f"PORT={port}\n")
    server = start_server(port=port)
    assert http(server.url + "/healthz", method="GET").status == 200


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_bad_port_env_is_a_one_line_error_and_exit_2(tmp_path, value):
    write_config(tmp_path, app="examples.counter:app")
    environ = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    environ.update(PYTHONPATH=str(ROOT), PORT=value)
    done = subprocess.run(
        [*bottender_argv(), "start", "--host", "127.0.0.1"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"bottender: config error: PORT must be a port number (1-65535), got '{value}'" in (
        done.stderr
    )
