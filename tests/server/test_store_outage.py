"""A store that stops answering costs a 503 and a redelivery, never a session.

The Redis server is frozen (SIGSTOP) rather than killed, so its data survives
and the test can show that the session after the outage is the one before it:
a failed read was not taken for "no session", and nothing was half-written.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.fixtures.gateway import write_config

CHAT_ID = 99


def update(update_id: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": CHAT_ID, "type": "private", "first_name": "Grace"},
            "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Grace"},
            "text": "hi",
        },
    }


async def post(http: aiohttp.ClientSession, url: str, update_id: int) -> int:
    async with http.post(url + "/webhooks/telegram", json=update(update_id)) as response:
        return response.status


async def test_a_frozen_redis_gets_503_and_the_redelivery_continues_the_count(
    make_gateway, fake_platform, redis_process
) -> None:
    live = make_gateway(
        app="tests.bots:counter",
        session={
            "driver": "redis",
            "stores": {"redis": {"url": redis_process.url, "lock_lease": 2}},
        },
        channels={
            "telegram": {"enabled": True, "access_token": "T", "origin": fake_platform.origin}
        },
    )
    async with aiohttp.ClientSession() as http:
        assert await post(http, live.url, 1) == 200
        assert await post(http, live.url, 2) == 200

        redis_process.process.send_signal(signal.SIGSTOP)
        try:
            assert await post(http, live.url, 3) == 503
        finally:
            redis_process.process.send_signal(signal.SIGCONT)
        assert fake_platform.texts() == ["Count: 1", "Count: 2"]

        # Telegram redelivers update 3; a lock the frozen call may have left runs out its lease.
        deadline = time.monotonic() + 30
        status = await post(http, live.url, 3)
        while status == 503 and time.monotonic() < deadline:
            status = await post(http, live.url, 3)
        assert status == 200
        assert await post(http, live.url, 4) == 200

    assert fake_platform.texts() == ["Count: 1", "Count: 2", "Count: 3", "Count: 4"]
    session = live.run(live.gateway.store.read(f"telegram:{CHAT_ID}"))
    assert session.state == {"count": 4}


def test_a_store_down_at_start_up_stops_the_command_with_its_url(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    config = write_config(
        tmp_path,
        app="tests.bots:counter",
        session={"driver": "redis", "stores": {"redis": {"url": url}}},
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bottender.server.cli",
            "start",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "session store unavailable" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
