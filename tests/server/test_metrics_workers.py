"""``bottender start --workers 2``: one scrape sums every worker, before and after a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.gateway import write_config
from tests.fixtures.waiting import wait_for
from tests.server.conftest import PROJECT_ENV
from tests.server.observability_bots import RELEASE_FILE_ENV
from tests.server.test_metrics import (
    assert_known_counts,
    config_names,
    drive_known_traffic,
    samples,
    scrape,
)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workers_of(pid: int) -> set[int]:
    """uvicorn's worker processes (spawned), not multiprocessing's resource tracker."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = set()
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(int(child))
        except FileNotFoundError:
            continue
    return workers


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start(tmp_path: Path, started: list, *options: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path / "tmp"))
    env[RELEASE_FILE_ENV] = str(tmp_path / "release")
    log = (tmp_path / "gateway.log").open("wb")
    command = [sys.executable, "-m", "bottender.server.cli", "start", "--config"]
    command += [str(tmp_path / "bottender_config.py"), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", *options],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started.append(process)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, (tmp_path / "gateway.log").read_text()
        try:
            return scrape(url + "/healthz").status == 200
        except OSError:
            return False

    wait_for(up, "the gateway to answer", timeout=60)
    return url, process


def release(tmp_path: Path):
    return lambda: (tmp_path / "release").touch()


def test_two_workers_are_summed_in_one_scrape_and_survive_a_restart(
    tmp_path, fake_platform, started
) -> None:
    write_config(tmp_path, **config_names(tmp_path, fake_platform))
    url, process = start(tmp_path, started, "--workers", "2")
    wait_for(lambda: len(workers_of(process.pid)) == 2, "two workers")
    drive_known_traffic(url, tmp_path / "s", url + "/metrics", release(tmp_path))
    scraped = samples(scrape(url + "/metrics").body.decode())
    assert_known_counts(scraped)

    before = workers_of(process.pid)
    os.kill(min(before), signal.SIGKILL)
    wait_for(lambda: len(workers_of(process.pid) - before) == 1, "a restarted worker")
    for _ in range(4):  # whichever worker answers, the dead one's counts are still there
        assert_known_counts(samples(scrape(url + "/metrics").body.decode()))


def test_the_metrics_port_serves_every_worker_on_loopback_only(
    tmp_path, fake_platform, started
) -> None:
    names = config_names(tmp_path, fake_platform)
    del names["server"]
    write_config(tmp_path, **names)
    metrics_port = free_port()
    url, process = start(tmp_path, started, "--workers", "2", "--metrics-port", str(metrics_port))
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    assert scrape(url + "/metrics").status == 404  # not on the webhook port
    drive_known_traffic(url, tmp_path / "s", metrics_url, release(tmp_path))
    assert_known_counts(samples(scrape(metrics_url).body.decode()))
    with socket.socket() as sock:  # bound to 127.0.0.1, not to every address
        assert sock.connect_ex(("127.0.0.2", metrics_port)) != 0
    assert [path.name[:18] for path in (tmp_path / "tmp").iterdir()] == ["bottender-metrics-"]
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    assert list((tmp_path / "tmp").iterdir()) == []  # this run's samples go with it


def test_a_crashed_workers_background_events_stop_counting(tmp_path) -> None:
    """Counters of a dead worker stay; its live gauge goes when the next worker starts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    crash = (
        "import os; from bottender.server.metrics import Metrics; m = Metrics();"
        "m.background(1); m.webhook('telegram', 200); os._exit(9)"
    )
    scrape_code = (
        "from bottender.server.metrics import Metrics, exposition; Metrics();"
        "print(exposition().decode())"
    )
    assert subprocess.run([sys.executable, "-c", crash], env=env).returncode == 9
    assert list(tmp_path.glob("gauge_livesum_*.db"))
    output = subprocess.run(
        [sys.executable, "-c", scrape_code], env=env, capture_output=True, text=True, check=True
    ).stdout
    scraped = samples(output)
    assert scraped[("bottender_background_events", frozenset())] == 0
    labels = frozenset({"channel": "telegram", "status": "200"}.items())
    assert scraped[("bottender_webhooks_total", labels)] == 1
