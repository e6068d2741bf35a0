"""``bottender dev``: tunnel up, webhooks registered, reload on change, nothing left running.

``bottender dev`` runs as a real process with the stand-in ``ngrok`` /
``cloudflared`` first on PATH (tests/fixtures/tunnels); the platforms are the
fake platform. Each test ends by signalling ``bottender dev`` and checking the
tunnel program's pid (which the stand-in recorded) is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bottender.connectors.telegram import UPDATE_KINDS
from bottender.server.cli import main
from bottender.server.config import load_config
from bottender.server.dev import check_port_free, reload_settings
from bottender.server.tunnels import (
    CloudflaredTunnel,
    NgrokTunnel,
    TunnelError,
    TunnelNotInstalled,
    pick_ngrok_url,
)
from tests.fixtures.gateway import write_config
from tests.fixtures.tunnels import Bottender, free_port, pid_gone, standin_env
from tests.fixtures.waiting import wait_for

TELEGRAM_TOKEN = "42:dev-token"


@pytest.fixture
def project(tmp_path: Path, fake_platform) -> Path:
    write_config(
        tmp_path,
        app="tests.bots:counter",
        initial_state={"count": 0},
        channels={
            "line": {
                "enabled": True,
                "access_token": "line-token",
                "channel_secret": "line-secret",
                "origin": fake_platform.origin,
            },
            "telegram": {
                "enabled": True,
                "access_token": TELEGRAM_TOKEN,
                "secret_token": "dev-secret",
                "origin": fake_platform.origin,
            },
        },
    )
    return tmp_path


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[Callable[..., tuple[Bottender, int, dict[str, Any]]]]:
    """``start_dev(*args, **env)`` -> (process, port, env); every process is stopped at the end."""
    started: list[Bottender] = []

    def start(*args: str, **env: str) -> tuple[Bottender, int, dict[str, Any]]:
        port = free_port()
        environment = standin_env(
            NGROK_API_URL=f"http://127.0.0.1:{free_port()}",
            TUNNEL_RECORD=str(tmp_path / "tunnel.json"),
            **env,
        )
        process = Bottender(["dev", "--port", str(port), *args], cwd=tmp_path, env=environment)
        started.append(process)
        return process, port, environment

    yield start
    for process in started:
        process.stop()


def tunnel_record(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "tunnel.json"
    wait_for(path.exists, "the stand-in's record", timeout=10)
    return json.loads(path.read_text())


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def assert_registered(fake_platform, public_url: str) -> None:
    [telegram] = fake_platform.calls_to("/setWebhook")
    assert telegram.path == f"/bot{TELEGRAM_TOKEN}/setWebhook"
    assert telegram.json == {
        "url": f"{public_url}/webhooks/telegram",
        "secret_token": "dev-secret",
        "allowed_updates": list(UPDATE_KINDS),
    }
    [line] = [c for c in fake_platform.calls_to("/webhook/endpoint") if c.method == "PUT"]
    assert line.json == {"endpoint": f"{public_url}/webhooks/line"}


@pytest.mark.parametrize(
    ("tunnel", "sig", "argv", "url_pattern"),
    [
        ("ngrok", signal.SIGINT, lambda port: ["http", str(port), "--log", "stdout"], "ngrok-free"),
        (
            "cloudflared",
            signal.SIGTERM,
            lambda port: ["tunnel", "--url", f"http://127.0.0.1:{port}"],
            "trycloudflare.com",
        ),
    ],
)
def test_dev_registers_the_tunnel_and_stops_it_on_exit(
    project, fake_platform, start_dev, tunnel, sig, argv, url_pattern
):
    dev, port, _ = start_dev("--tunnel", tunnel)
    dev.wait_output("Telegram webhook:")
    dev.wait_output("LINE webhook:")
    record = tunnel_record(project)
    assert record["argv"] == argv(port)
    public_url = next(
        word for word in dev.stdout.split() if word.startswith("https://") and url_pattern in word
    )
    assert f"LINE webhook:     {public_url}/webhooks/line" in dev.stdout
    assert f"Telegram webhook: {public_url}/webhooks/telegram" in dev.stdout
    assert_registered(fake_platform, public_url)
    wait_for(lambda: healthy(port), "the dev server", timeout=20)

    dev.signal(sig)
    assert dev.wait(20) == 0, dev.stderr
    assert pid_gone(record["pid"]), f"{tunnel} stand-in still running"
    assert not listening(port)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_tunnel_dies_with_a_killed_dev(project, fake_platform, start_dev):
    """SIGKILL runs no cleanup; the kernel's parent-death signal still stops the tunnel."""
    dev, port, _ = start_dev("--tunnel", "cloudflared")
    dev.wait_output("LINE webhook:")
    tunnel_pid = tunnel_record(project)["pid"]
    wait_for(lambda: healthy(port), "the dev server", timeout=20)
    server_pids = [pid for pid in children(dev.process.pid) if pid != tunnel_pid]
    dev.signal(signal.SIGKILL)
    dev.wait(10)
    try:
        wait_for(lambda: pid_gone(tunnel_pid), "the tunnel to die with its parent", timeout=5)
    finally:
        # uvicorn's reloaded server has no such link (nor the tunnel, if this failed).
        for pid in [*server_pids, tunnel_pid]:
            with contextlib.suppress(ProcessLookupError):
                if pid_gone(pid):
                    continue
                os.kill(pid, signal.SIGTERM)
        for pid in server_pids:
            wait_for(lambda pid=pid: pid_gone(pid), "the orphaned dev server", timeout=10)


def test_dev_with_public_url_opens_no_tunnel(project, fake_platform, start_dev):
    dev, port, _ = start_dev("--public-url", "https://bot.example.com/")
    dev.wait_output("LINE webhook:")
    assert_registered(fake_platform, "https://bot.example.com")
    assert not (project / "tunnel.json").exists()
    wait_for(lambda: healthy(port), "the dev server", timeout=20)
    dev.signal(signal.SIGTERM)
    assert dev.wait(20) == 0


def test_dev_reloads_on_dotenv_change_with_the_new_values(tmp_path, fake_platform, start_dev):
    """An edited .env restarts the server, and the restarted server sees the new values."""
    (tmp_path / "bottender_config.py").write_text(
        textwrap.dedent(
            f"""
            import os
            app = "tests.bots:counter"
            initial_state = {{"count": 0}}
            channels = {{"telegram": {{
                "enabled": True,
                "access_token": os.getenv("TELEGRAM_ACCESS_TOKEN"),
                "path": os.getenv("TELEGRAM_PATH"),
                "origin": {fake_platform.origin!r},
            }}}}
            """
        )
    )
    (tmp_path / ".env").write_text("TELEGRAM_ACCESS_TOKEN=42:dev-token\nTELEGRAM_PATH=/hooks/one\n")
    # watchfiles prints "watcher: ..." once its watches are in place (WATCHFILES_DEBUG);
    # an edit made before that would go unseen.
    dev, port, _ = start_dev("--tunnel", "ngrok", WATCHFILES_DEBUG="1")
    dev.wait_output("Telegram webhook:")
    [registered] = fake_platform.calls_to("/setWebhook")
    assert registered.json["url"].endswith("/hooks/one")

    def answers(path: str) -> bool:
        update = json.dumps({"update_id": 1, "message": {"chat": {"id": 1}, "text": "hi"}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=update.encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except (urllib.error.HTTPError, OSError):
            return False

    wait_for(lambda: answers("/hooks/one"), "the first server", timeout=20)
    dev.wait_output("watcher: ", stream="stderr")
    (tmp_path / ".env").write_text("TELEGRAM_ACCESS_TOKEN=42:dev-token\nTELEGRAM_PATH=/hooks/two\n")
    wait_for(lambda: answers("/hooks/two"), "the reloaded server on the new path", timeout=20)
    assert "Reloading" in dev.stderr
    dev.signal(signal.SIGINT)
    assert dev.wait(20) == 0
    assert pid_gone(tunnel_record(tmp_path)["pid"])


def test_dev_reload_follows_bottender_app_in_dotenv(tmp_path, fake_platform, start_dev):
    """BOTTENDER_APP is read by the config like any variable: the reloaded server obeys .env."""
    (tmp_path / "bottender_config.py").write_text(
        textwrap.dedent(
            f"""
            import os
            app = os.getenv("BOTTENDER_APP", "tests.bots:counter")
            initial_state = {{"count": 0}}
            channels = {{"telegram": {{
                "enabled": True,
                "access_token": "42:dev-token",
                "origin": {fake_platform.origin!r},
            }}}}
            """
        )
    )
    (tmp_path / ".env").write_text("BOTTENDER_APP=tests.bots:counter\n")
    dev, port, _ = start_dev("--public-url", "https://bot.example.com", WATCHFILES_DEBUG="1")
    dev.wait_output("Telegram webhook:")
    update_ids = iter(range(1, 1000))

    def reply_to(text: str) -> str | None:
        update = {"update_id": next(update_ids), "message": {"chat": {"id": 1}, "text": text}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/telegram",
            data=json.dumps(update).encode(),
            headers={"Content-Type": "application/json"},
        )
        sent = len(fake_platform.calls_to("/sendMessage"))
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except OSError:
            return None
        replies = fake_platform.calls_to("/sendMessage")[sent:]
        return replies[0].json["text"] if replies else None

    wait_for(lambda: (reply_to("show") or "").startswith("Count: "), "the counting bot", timeout=20)
    dev.wait_output("watcher: ", stream="stderr")
    (tmp_path / ".env").write_text("BOTTENDER_APP=tests.bots:state_probe\n")
    wait_for(lambda: reply_to("show") == '{"count": 0}', "the state probe after reload", timeout=20)
    dev.signal(signal.SIGTERM)
    assert dev.wait(20) == 0


def test_failing_registration_stops_the_tunnel(project, fake_platform, start_dev):
    fake_platform.answer(
        f"/bot{TELEGRAM_TOKEN}/setWebhook",
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
    )
    dev, _, _ = start_dev("--tunnel", "cloudflared")
    assert dev.wait(20) == 1
    assert "could not register the Telegram webhook" in dev.stderr
    assert "Unauthorized" in dev.stderr and TELEGRAM_TOKEN not in dev.stderr
    assert pid_gone(tunnel_record(project)["pid"])


@pytest.mark.parametrize("tunnel", ["ngrok", "cloudflared"])
def test_tunnel_program_failing_at_start_is_reported(project, fake_platform, start_dev, tunnel):
    dev, _, _ = start_dev("--tunnel", tunnel, TUNNEL_STANDIN_MODE="fail")
    assert dev.wait(20) == 1
    assert f"{tunnel} exited (status 1) before opening a tunnel" in dev.stderr
    # Its own words are shown: they say what to fix.
    assert ("authtoken" if tunnel == "ngrok" else "failed to request quick Tunnel") in dev.stderr
    assert fake_platform.calls == []


@pytest.mark.parametrize(
    ("tunnel", "hints"),
    [
        ("ngrok", ["ngrok is not installed", "ngrok.com/download", "--tunnel cloudflared"]),
        ("cloudflared", ["cloudflared is not installed", "apt-get install cloudflared"]),
    ],
)
def test_missing_tunnel_program_says_how_to_install_it(
    project, fake_platform, capsys, monkeypatch, tunnel, hints
):
    monkeypatch.chdir(project)
    monkeypatch.setenv("PATH", str(project))  # nothing to run there
    code = main(["dev", "--port", str(free_port()), "--tunnel", tunnel])
    err = capsys.readouterr().err
    assert code == 1
    for hint in [*hints, "--public-url"]:
        assert hint in err
    assert fake_platform.calls == []


def test_port_in_use_fails_before_anything_is_registered(
    project, fake_platform, capsys, monkeypatch
):
    monkeypatch.chdir(project)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["dev", "--port", str(port), "--public-url", "https://h"])
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert fake_platform.calls == []
    check_port_free("127.0.0.1", port)  # free again once released


# --- the tunnel classes on their own ---------------------------------------------


def test_ngrok_url_is_the_https_tunnel_to_our_port():
    payload = {
        "tunnels": [
            {"public_url": "https://other.ngrok.app", "config": {"addr": "http://localhost:8000"}},
            {"public_url": "http://ours.ngrok.app", "config": {"addr": "http://localhost:5000"}},
            {"public_url": "https://ours.ngrok.app", "config": {"addr": "localhost:5000"}},
        ]
    }
    assert pick_ngrok_url(payload, 5000) == "https://ours.ngrok.app"
    assert pick_ngrok_url(payload) == "https://other.ngrok.app"
    assert pick_ngrok_url(payload, 7000) is None
    assert pick_ngrok_url({"tunnels": "junk"}) is None


def test_cloudflared_banner_url_not_its_api_host(monkeypatch):
    tunnel = CloudflaredTunnel(5000)
    tunnel._on_line('ERR failed: Post "https://api.trycloudflare.com/tunnel": timeout')
    assert tunnel._poll_url() is None
    tunnel._on_line("INF |  https://calm-river-5b2e.trycloudflare.com        |")
    assert tunnel._poll_url() == "https://calm-river-5b2e.trycloudflare.com"


def test_tunnel_without_url_times_out_and_is_stopped(tmp_path):
    env = standin_env(TUNNEL_STANDIN_MODE="silent", TUNNEL_RECORD=str(tmp_path / "tunnel.json"))
    tunnel = CloudflaredTunnel(free_port(), timeout=1.0, env=env)
    with pytest.raises(TunnelError, match="gave no public URL within 1 s"):
        tunnel.start()
    assert pid_gone(tunnel_record(tmp_path)["pid"])


def test_tunnel_ignoring_sigterm_is_killed(tmp_path):
    env = standin_env(
        TUNNEL_STANDIN_MODE="stubborn",
        TUNNEL_RECORD=str(tmp_path / "tunnel.json"),
        NGROK_API_URL=f"http://127.0.0.1:{free_port()}",
    )
    with NgrokTunnel(free_port(), env=env, stop_timeout=0.5) as tunnel:
        assert tunnel.start().startswith("https://")
        pid = tunnel_record(tmp_path)["pid"]
    assert pid_gone(pid)


def test_missing_program_is_not_installed_error(tmp_path):
    with pytest.raises(TunnelNotInstalled, match="ngrok is not installed"):
        NgrokTunnel(5000, env={"PATH": str(tmp_path)}).start()


def test_reload_watches_code_config_and_dotenv_not_the_venv(project):
    (project / ".venv").mkdir()
    config = load_config(project / "bottender_config.py", need_app=False)
    settings = reload_settings(config, project)
    assert settings["reload_dirs"] == [str(project)]
    assert set(settings["reload_includes"]) == {"*.py", ".env", "bottender_config.py"}
    assert settings["reload_excludes"] == [str(project / ".venv")]
