"""Nothing acknowledged is lost when a process dies: the durable inbox, under SIGKILL.

Several real processes share one store (file, Redis or MongoDB). A LINE bot slower
than its channel's deadline gets 300 events of one chat plus 300 spread over 100
chats; the test plays LINE (every non-2xx answer or broken connection is resent,
same ``webhookEventId``, until it gets a 200) and kills one process with SIGKILL
halfway through. Afterwards every event ran exactly once: each chat's count is
the number of its events, and each event's push was accepted exactly once (a
replay's push carries the same ``X-Line-Retry-Key``, which the fake LINE drops
with 409, as LINE does). The dead process's entries are picked up by the
survivors within ``lock_lease`` + 10 s of the kill.

Two deployments: ``ack: "deadline"`` with three ``bottender start`` processes, one
killed; ``ack: "immediate"`` with three ``bottender start --ingest-only`` gateways
and two ``bottender worker`` processes, one worker killed.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import hmac
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fixtures.gateway import write_config
from tests.fixtures.platform_api import FakePlatform, Recorded
from tests.server.test_multiprocess import free_port, store_options, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SECRET = "chaos-secret"
#: Short leases, so a dead process's entries come back quickly; the MongoDB-compatible
#: test server is slow enough under this load that 2 s leases would lapse while held.
LOCK_LEASES = {"file": 2.0, "redis": 2.0, "mongo": 5.0}
#: Seconds after its lease within which a dead process's entries must be recovered.
RECOVERY_SLACK = 10.0
#: Events of the busy chat, and chats the others are spread over (three each), per driver.
#: The MongoDB-compatible test server is a single-threaded Python program, several times
#: slower than mongod: it gets a third of the load, so its test stays within a minute.
SIZES = {"file": (300, 100), "redis": (300, 100), "mongo": (120, 40)}
EVENTS_PER_SPREAD_CHAT = 3
CONCURRENCY = 64
#: How long LINE's deliveries, and then the pushes and counts they lead to, may each
#: take before the test gives up and names what is missing (a bound, not a measure).
PATIENCE = 120.0
WEBHOOK = "/webhooks/line"
PUSH = "/v2/bot/message/push"
OWNER = re.compile(r"(?:inbox owner|worker) ([0-9a-f]{32})")


def line_body(number: int, user: str) -> bytes:
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": 1_700_000_000_000 + number,
        "source": {"type": "user", "userId": user},
        "webhookEventId": f"01CHAOS{number:019d}",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": f"reply-{number}",
        "message": {"type": "text", "id": str(number), "quoteToken": "q", "text": f"m{number}"},
    }
    return orjson.dumps({"destination": "Ubot", "events": [event]})


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "X-Line-Signature": base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


def the_events(busy: int, chats: int) -> list[tuple[str, bytes]]:
    """(text, body) of every event: one busy chat interleaved with quieter ones."""
    events = [(f"m{n}", line_body(n, "Ubusy")) for n in range(busy)]
    spread = [
        (f"m{n}", line_body(n, f"Uchat{n % chats}"))
        for n in range(busy, busy + chats * EVENTS_PER_SPREAD_CHAT)
    ]
    mixed = []
    for index in range(max(len(events), len(spread))):
        mixed += events[index : index + 1] + spread[index : index + 1]
    return mixed


class Line:
    """The fake LINE API's push endpoint, keeping each retry key's first push only."""

    def __init__(self, platform: FakePlatform) -> None:
        self.accepted: list[str] = []
        self.dropped: list[str] = []
        self._keys: set[str] = set()
        platform.answer(PUSH, self._push)

    def _push(self, call: Recorded) -> tuple[int, Any]:
        headers = {k.lower(): v for k, v in call.headers.items()}
        key = headers.get("x-line-retry-key", "")
        if key in self._keys:
            self.dropped += [m["text"] for m in call.json["messages"]]
            return 409, {"message": "The retry key is already accepted"}
        self._keys.add(key)
        self.accepted += [m["text"] for m in call.json["messages"]]
        return 200, {"sentMessages": [{"id": "1", "quoteToken": "q"}]}


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def spawn(self, config: Path, *command: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp_path / f"process-{len(self.started)}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(
            [sys.executable, "-m", "bottender.server.cli", *command, "--config", str(config)],
            cwd=self.tmp_path,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.started.append((process, log))
        return process, log

    def gateway(self, config: Path, *options: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        process, _ = self.spawn(
            config, "start", "--host", "127.0.0.1", "--port", str(port), *options
        )
        return f"http://127.0.0.1:{port}", process

    def logs(self, but: subprocess.Popen[bytes] | None = None) -> str:
        return "".join(
            log.read_text(errors="replace") for process, log in self.started if process is not but
        )

    def stop(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.terminate()
        for process, _ in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    made = Processes(tmp_path)
    yield made
    made.stop()


async def play_line(
    urls: list[str],
    events: list[tuple[str, bytes]],
    kill_when: Callable[[int], bool],
    kill: Callable[[], None],
) -> None:
    """Deliver every event until a gateway answers 2xx; ``kill`` once ``kill_when``
    (given the number of events acknowledged so far) holds.

    A load balancer in front of the gateways stops sending to a host that refuses
    connections (the killed one). A host that is only slow, or that closes a kept-alive
    connection as the request goes out, stays in the rotation: retiring those too once
    left the dead host as the only one on a loaded machine, and the resends never ended.
    Fails, naming what is missing, if the run is not over within ``PATIENCE``.
    """
    live = list(urls)
    unanswered = {text for text, _ in events}
    acknowledged = 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async def deliver(index: int, text: str, body: bytes, http: aiohttp.ClientSession) -> None:
        nonlocal acknowledged
        attempt = 0
        async with gate:
            while True:
                url = live[(index + attempt) % len(live)]
                try:
                    async with http.post(url + WEBHOOK, data=body, headers=signed(body)) as reply:
                        if 200 <= reply.status < 300:
                            break
                except aiohttp.ClientConnectorError:
                    if url in live and len(live) > 1:
                        live.remove(url)  # refused: nothing listens there any more
                except (aiohttp.ClientError, OSError):
                    pass  # no answer this time: LINE resends, maybe to another host
                attempt += 1
                await asyncio.sleep(0.05)  # LINE's pause before a redelivery
        unanswered.discard(text)
        acknowledged += 1

    async def killer() -> None:
        # Polled: the pushes are counted by the fake LINE in its own thread.
        while not kill_when(acknowledged):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        kill()

    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with asyncio.timeout(PATIENCE), aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(
                killer(),
                *(deliver(i, text, body, http) for i, (text, body) in enumerate(events)),
            )
    except TimeoutError:
        missing = f"{len(unanswered)} events never answered 2xx (e.g. {sorted(unanswered)[:5]})"
        pytest.fail(
            f"LINE's deliveries were not over within {PATIENCE:.0f} s: "
            + (missing if unanswered else "the process was never killed"),
            pytrace=False,
        )


def read_counts(driver: str, options: dict[str, Any]) -> dict[str, int]:
    from bottender.server.stores import DRIVER_CLASSES

    module, _, name = DRIVER_CLASSES[driver].partition(":")
    store = getattr(__import__(module, fromlist=[name]), name)(**options)

    async def read() -> dict[str, int]:
        await store.open()
        try:
            return {s.id: s.state["count"] async for s in store.all()}
        finally:
            await store.close()

    return asyncio.run(read())


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, *, fail: bool = True
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                pytest.fail(f"timed out waiting for {what}", pytrace=False)
            return
        time.sleep(0.1)


def settle(
    line: Line, pushes: int, expected: dict[str, int], read: Callable[[], dict[str, int]]
) -> dict[str, int]:
    """The chats' counts once every push is in and every chat has counted its events.

    A bot's messages are sent before its session is written, so the last push
    reaching LINE does not mean the last count is stored: read at that moment, a
    chat can be one short for a few milliseconds. Waits up to ``PATIENCE``, then
    returns what it last read, for the assertions to name what is missing.
    """
    counts: dict[str, int] = {}

    def caught_up() -> bool:
        nonlocal counts
        if len(line.accepted) < pushes:
            return False
        counts = read()
        return all(counts.get(chat, 0) >= number for chat, number in expected.items())

    wait_until(caught_up, PATIENCE, "every push and every count", fail=False)
    return counts or read()


def failed_sends(log: str) -> str:
    """What the gateways said of pushes the fake LINE did not take, for a failure message.

    A send that fails leaves its event's session unchanged and is not retried (the
    runtime's rule for a bot's failure), so such an event looks lost; the log tells
    a platform that could not be reached (a starved test machine) from a lost entry.
    """
    failures = [entry for entry in log.splitlines() if "buffered line messages failed" in entry]
    if not failures:
        return ""
    return f" ({len(failures)} sends failed in the gateways, e.g. {failures[0]!r})"


def recovery_times(log: str, owner: str) -> list[float]:
    """When the survivors logged taking over an entry of ``owner``."""
    pattern = re.compile(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
        rf".*recovered inbox entry .*by process {owner}",
        re.M,
    )
    return [
        datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for stamp in pattern.findall(log)
    ]


def chaos_config(
    tmp_path: Path, driver: str, options: dict, origin: str, ack: str, lease: float
) -> Path:
    return write_config(
        tmp_path,
        app="tests.bots:slow_pusher",
        initial_state={"count": 0},
        session={"driver": driver, "stores": {driver: {**options, "lock_lease": lease}}},
        channels={
            "line": {
                "enabled": True,
                "access_token": "chaos-token",
                "channel_secret": SECRET,
                "origin": origin,
                "deadline": 0.005,
                # "deadline" is the default: left out, the config also runs on older code.
                **({"ack": ack} if ack != "deadline" else {}),
            }
        },
    )


@pytest.mark.parametrize("driver", ["file", "redis", "mongo"])
@pytest.mark.parametrize("ack", ["deadline", "immediate"])
def test_a_killed_process_loses_no_acknowledged_event(
    driver: str,
    ack: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    fake_platform: FakePlatform,
    processes: Processes,
) -> None:
    options = store_options(driver, tmp_path, request)
    lease = LOCK_LEASES[driver]
    config = chaos_config(tmp_path, driver, options, fake_platform.origin, ack, lease)
    line = Line(fake_platform)
    if ack == "deadline":
        gateways = [processes.gateway(config) for _ in range(3)]
        victim = gateways[0][1]
    else:
        gateways = [processes.gateway(config, "--ingest-only") for _ in range(3)]
        workers = [processes.spawn(config, "worker")[0] for _ in range(2)]
        victim = workers[0]
    for url, process in gateways:
        wait_healthy(url, process)
    if ack == "immediate":
        wait_until(lambda: processes.logs().count("running inbox entries") == 2, 30, "the workers")
    busy, chats = SIZES[driver]
    events = the_events(busy, chats)
    killed_at: list[float] = []

    def kill() -> None:
        victim.kill()
        killed_at.append(time.time())

    half = len(events) // 2
    if ack == "deadline":  # a gateway dies with half the events acknowledged
        kill_when: Callable[[int], bool] = lambda acknowledged: acknowledged >= half  # noqa: E731
    else:  # gateways acknowledge at once: a worker dies with half the events run
        kill_when = lambda acknowledged: len(line.accepted) >= half  # noqa: E731
    asyncio.run(play_line([url for url, _ in gateways], events, kill_when, kill))
    expected = {"line:Ubusy": busy} | {
        f"line:Uchat{n}": EVENTS_PER_SPREAD_CHAT for n in range(chats)
    }
    counts = settle(line, len(events), expected, lambda: read_counts(driver, options))
    finished = time.time()

    # Each event's push was accepted once: none lost, none doubled.
    pushed = Counter(text.split(" -> ")[0] for text in line.accepted)
    lost = sorted({text for text, _ in events} - set(pushed))
    why = failed_sends(processes.logs()) if lost else ""
    assert not lost, f"{len(lost)} acknowledged events never ran: {lost[:10]}...{why}"
    assert [text for text, times in pushed.items() if times > 1] == []
    # Each chat's state counted each of its events once.
    wrong = {
        chat: counts.get(chat) for chat, number in expected.items() if counts.get(chat) != number
    }
    assert not wrong, (
        f"chats whose count is not their number of events ({PATIENCE:.0f} s on): {wrong}"
    )
    # The killed process held acknowledged events; the survivors recovered them in time.
    victim_log = next(log for process, log in processes.started if process is victim)
    owner = OWNER.search(victim_log.read_text()).group(1)  # type: ignore[union-attr]
    recovered = recovery_times(processes.logs(but=victim), owner)
    assert recovered, "the killed process held no inbox entry: the test proved nothing"
    assert max(recovered) - killed_at[0] <= lease + RECOVERY_SLACK, "recovered too late"
    print(
        f"{driver}/{ack}: {len(recovered)} entries recovered, last"
        f" {max(recovered) - killed_at[0]:.1f} s after the kill; all done"
        f" {finished - killed_at[0]:.1f} s after it; {len(line.dropped)} replayed pushes dropped"
    )
