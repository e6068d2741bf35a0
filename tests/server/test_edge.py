"""The HTTP edge: what an unauthenticated client can hold, and for how long, is bounded.

The gateway is served exactly as ``bottender start`` serves it (uvicorn with the
options of ``server/edge.py``), with short limits, and attacked over raw sockets.
Timeouts are asserted as "the connection was dropped", waited for with generous
upper bounds, never as speeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from aiohttp import web

from bottender.connectors.base import Context
from bottender.server.app import create_app
from bottender.server.config import ConfigError, load_config
from bottender.server.edge import uvicorn_options
from tests.connectors import payloads
from tests.fixtures.gateway import LiveGateway, write_config
from tests.fixtures.tunnels import Bottender, free_port, standin_env
from tests.fixtures.waiting import until, wait_for
from tests.server.conftest import PROJECT_ENV

PATH = "/webhooks/telegram"
#: Upper bound for anything the server should do "quickly" or "after its timeout".
GENEROUS = 20.0

#: Lets the gated bot go on; set by the test.
GATE = threading.Event()


async def gated(context: Context) -> None:
    """The counting bot, held until the test opens ``GATE``."""
    await asyncio.to_thread(GATE.wait, GENEROUS)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


class Edge:
    def __init__(self, live: LiveGateway, server: uvicorn.Server) -> None:
        self.live = live
        self.server = server
        self.port = int(live.url.rsplit(":", 1)[1])

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=GENEROUS)
        return sock

    def connections(self) -> int:
        return len(self.server.server_state.connections)

    def webhook(self, update: dict | None = None) -> bytes:
        """A valid Telegram webhook request, as raw HTTP/1.1 bytes."""
        body = payloads.encode(update or payloads.text_update("hi"))
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


@pytest.fixture
def edge(tmp_path: Path, fake_platform) -> Iterator[Callable[..., Edge]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: str = "tests.bots:counter", origin: str | None = None, **server: Any) -> Edge:
        config = load_config(
            write_config(
                tmp_path,
                app=app,
                initial_state={"count": 0},
                server=server,
                channels={
                    "telegram": {
                        "enabled": True,
                        "access_token": "1:T",
                        "origin": origin or fake_platform.origin,
                    }
                },
            )
        )
        asgi = create_app(config)
        loops: list[asyncio.AbstractEventLoop] = []
        gateway = asgi.state.gateway
        start_gateway = gateway.start

        async def start_noting_loop() -> None:
            loops.append(asyncio.get_running_loop())
            await start_gateway()

        gateway.start = start_noting_loop
        uv = uvicorn.Server(
            uvicorn.Config(
                asgi,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                **uvicorn_options(config.limits),
            )
        )
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        wait_for(
            lambda: uv.started or not thread.is_alive(), "the server to start", timeout=GENEROUS
        )
        assert uv.started, "gateway failed to start"
        servers.append((uv, thread))
        port = uv.servers[0].sockets[0].getsockname()[1]
        return Edge(LiveGateway(f"http://127.0.0.1:{port}", asgi, config, loops[0]), uv)

    GATE.clear()
    yield start
    GATE.set()
    for uv, thread in servers:
        uv.should_exit = True
        thread.join(30)


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or an empty answer if it reset)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def read_status(sock: socket.socket) -> int:
    """The status of the next response on a kept-alive connection."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_header_larger_than_the_limit_gets_431_and_the_connection_closed(edge):
    server = edge(max_header_size=8 * 1024)
    with server.connect() as sock:
        head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * 64 * 1024}\r\n\r\n"
        try:
            sock.sendall(head.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: also a refusal
        answer = read_response(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    # A header under the limit is still served.
    with server.connect() as sock:
        sock.sendall(server.webhook())
        assert read_status(sock) == 200


def serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return read_response(sock).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


@pytest.mark.parametrize(
    "command",
    [["start", "--host", "127.0.0.1"], ["dev", "--public-url", "https://bot.example.com"]],
    ids=["start", "dev"],
)
def test_start_and_dev_both_serve_behind_the_configured_limits(tmp_path, command):
    """``bottender dev`` is served the way ``bottender start`` is: the same edge, same limits."""
    write_config(tmp_path, app="tests.bots:counter", server={"max_header_size": 8 * 1024})
    port = free_port()
    env = {k: v for k, v in standin_env().items() if k not in PROJECT_ENV}
    process = Bottender([*command, "--port", str(port)], cwd=tmp_path, env=env)
    try:
        wait_for(lambda: serving(port), f"bottender {command[0]} to serve", timeout=GENEROUS)
        # 12 KiB: over the config's limit, under any bound of uvicorn's own (h11 16 KiB).
        with socket.create_connection(("127.0.0.1", port), timeout=GENEROUS) as sock:
            padding = "a" * 12 * 1024
            head = f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Padding: {padding}"
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(f"{head}\r\n\r\n".encode())
            answer = read_response(sock)
        # Without the edge's limits this would be the health check's 200.
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:80]
        assert serving(port)  # refused, not fallen over
    finally:
        process.stop()
        assert process.wait(GENEROUS) in (0, -signal.SIGTERM), process.stderr


def test_an_oversized_header_sent_in_small_pieces_is_refused_too(edge):
    server = edge(max_header_size=8 * 1024)
    with server.connect() as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Padding: ".encode())
        try:
            for _ in range(64):
                sock.sendall(b"a" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_response(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")


def test_pipelined_and_kept_alive_requests_are_all_answered(edge, fake_platform):
    server = edge(max_header_size=8 * 1024, header_timeout=5)
    first = server.webhook(payloads.text_update("one"))
    second = server.webhook(payloads.text_update("two"))
    with server.connect() as sock:
        sock.sendall(first + second)
        assert read_status(sock) == 200
        wait_for(lambda: len(fake_platform.texts()) == 2, "two replies", timeout=GENEROUS)
        sock.sendall(server.webhook(payloads.text_update("three")))
        wait_for(lambda: len(fake_platform.texts()) == 3, "three replies", timeout=GENEROUS)
    assert fake_platform.texts() == ["Count: 1", "Count: 2", "Count: 3"]


def test_a_client_stalled_in_its_headers_is_dropped_after_the_header_timeout(edge):
    server = edge(header_timeout=0.5)
    with server.connect() as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\n".encode())
        assert read_response(sock) == b""  # closed by the server, no answer
    with server.connect() as sock:  # a client that connects and sends nothing
        assert read_response(sock) == b""


def test_a_client_stalled_in_its_body_is_dropped_after_the_body_timeout(edge, fake_platform):
    server = edge(body_timeout=0.5)
    request = server.webhook()
    with server.connect() as sock:
        sock.sendall(request[:-10])
        assert read_response(sock) == b""
    assert fake_platform.texts() == []


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(edge):
    server = edge(keep_alive_timeout=0.5, header_timeout=60)
    with server.connect() as sock:
        sock.sendall(server.webhook())
        assert read_status(sock) == 200
        wait_for(lambda: not sock.recv(65536), "the server to close it", timeout=GENEROUS)


def test_past_the_connection_cap_a_valid_webhook_gets_503_at_once(edge, fake_platform):
    server = edge(max_connections=3, header_timeout=60)
    idle = [server.connect() for _ in range(3)]
    try:
        wait_for(lambda: server.connections() >= 3, "three connections", timeout=GENEROUS)
        with server.connect() as sock:
            sock.sendall(server.webhook())
            answer = read_response(sock)  # to the end: the server closes the connection
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert answer.endswith(b'{"ok":false,"error":"too many connections; retry later"}')
        assert fake_platform.texts() == []
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: server.connections() == 0, "no connection", timeout=GENEROUS)
    with server.connect() as sock:
        sock.sendall(server.webhook())
        assert read_status(sock) == 200
    assert fake_platform.texts() == ["Count: 1"]


def test_connections_beyond_twice_the_cap_are_closed_when_accepted(edge):
    server = edge(max_connections=2, header_timeout=60)
    idle = [server.connect() for _ in range(4)]
    try:
        wait_for(lambda: server.connections() >= 4, "four connections", timeout=GENEROUS)
        with server.connect() as sock:
            assert read_response(sock) == b""
    finally:
        for sock in idle:
            sock.close()


async def test_past_the_requests_in_flight_cap_a_webhook_gets_503(edge, fake_platform):
    server = edge(app="tests.server.test_edge:gated", max_requests_in_flight=1)
    url = server.live.url + PATH
    gateway = server.live.gateway
    async with aiohttp.ClientSession() as http:
        first = asyncio.create_task(http.post(url, json=payloads.text_update("one")))
        await until(lambda: gateway.in_flight == 1, "the first request in flight", timeout=GENEROUS)
        async with http.post(url, json=payloads.text_update("two")) as refused:
            assert refused.status == 503
            assert refused.headers["Retry-After"] == "1"
            assert (await refused.json())["ok"] is False
        GATE.set()
        async with await first as answered:
            assert answered.status == 200
    assert fake_platform.texts() == ["Count: 1"]


async def test_platform_api_calls_queue_for_a_bounded_number_of_connections(edge):
    """A burst of events opens at most ``max_api_connections`` sockets to the platform."""
    inside = 0
    most = 0

    async def send_message(request: web.Request) -> web.Response:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.1)
        inside -= 1
        return web.json_response({"ok": True, "result": {"message_id": 1}})

    api = web.Application()
    api.router.add_post("/bot1:T/sendMessage", send_message)
    runner = web.AppRunner(api, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        server = edge(max_api_connections=2, origin=origin)
        url = server.live.url + PATH
        users = [payloads.tg_user(1000 + i, f"user{i}") for i in range(8)]
        async with aiohttp.ClientSession() as http:

            async def post(user: dict) -> int:
                update = payloads.text_update("hi", sender=user)
                async with http.post(url, json=update) as response:
                    return response.status

            statuses = await asyncio.gather(*(post(user) for user in users))
        assert statuses == [200] * 8
        assert most == 2
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("header_timeout", 0),
        ("body_timeout", "10"),
        ("max_connections", 1.5),
        ("max_header_size", True),
        ("max_events_per_body", -1),
        ("max_api_connections", 0),
    ],
)
def test_a_bad_limit_in_the_config_is_one_line_naming_its_key(tmp_path, key, value):
    path = write_config(tmp_path, app="tests.bots:counter", server={key: value})
    with pytest.raises(ConfigError, match=rf"^server\.{key} must be a positive"):
        load_config(path)


def test_every_limit_has_a_safe_default(tmp_path):
    limits = load_config(write_config(tmp_path, app="tests.bots:counter")).limits
    assert limits.max_header_size == 32 * 1024
    assert 0 < limits.header_timeout <= 30 and 0 < limits.body_timeout <= 60
    assert limits.keep_alive_timeout <= 30
    assert limits.max_connections >= limits.max_requests_in_flight
    assert limits.max_events_per_body >= 100  # what LINE sends in one body
    assert 0 < limits.max_api_connections <= 1000


def test_the_descriptor_limit_is_raised_to_what_the_connection_cap_needs():
    """Run in a child process: the test must not change pytest's own limit."""
    script = (
        "import resource\n"
        "from bottender.server.edge import descriptors_needed, raise_descriptor_limit\n"
        "from bottender.server.limits import ServerLimits\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "limits = ServerLimits(max_connections=300)\n"
        "raise_descriptor_limit(limits)\n"
        "now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n"
        "print(now, descriptors_needed(limits), hard)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    now, needed, hard = (int(value) for value in out)
    assert now == (needed if hard < 0 else min(needed, hard))
