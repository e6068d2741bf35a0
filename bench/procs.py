"""Child processes of the bench: started pinned to a core, stopped by their own pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Proc:
    """One server process; ``core`` pins it with taskset (which execs, keeping the pid)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        core: int | None = None,
        taskset: str | None = None,
    ) -> None:
        self.name = name
        prefix = [taskset, "-c", str(core)] if core is not None and taskset else []
        self.argv = prefix + argv
        self.log = log
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Until the server answers ``url`` with any HTTP status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.log_tail()}")
            try:
                http_get(url, timeout=1.0)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError(
            f"{self.name} did not answer {url} in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        if not wait_port(port, timeout) or not self.alive():
            raise RuntimeError(f"{self.name} did not listen on {port}:\n{self.log_tail()}")

    def _status(self, field: str) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def rss_mb(self) -> float | None:
        return self._status("VmRSS")

    def peak_rss_mb(self) -> float | None:
        """VmHWM: the peak resident set size of the process so far."""
        return self._status("VmHWM")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _system_busy() -> int:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, _irq, _softirq = fields
    # irq/softirq time (loopback TCP is mostly softirq) belongs to no process: left out
    return user + nice + system


def _proc_cpu(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


class CpuMeter:
    """CPU used by processes that are not the bench's, in cores, over an interval.

    The machine may be shared (other people's test suites); a run during which
    foreign processes took a noticeable share of the CPU is noted (and retried).
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def _ours(self) -> float:
        times = os.times()
        own = (times.user + times.system + times.children_user + times.children_system) * CLK_TCK
        return own + sum(_proc_cpu(pid) for pid in self.pids)

    def __enter__(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.busy0 = _system_busy()
        self.ours0 = self._ours()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        busy = _system_busy() - self.busy0
        ours = self._ours() - self.ours0
        self.foreign = max(0.0, (busy - ours) / CLK_TCK / wall) if wall > 0 else 0.0
        self.ours = ours / CLK_TCK / wall if wall > 0 else 0.0

    @classmethod
    def sample(cls, pids: list[int], seconds: float = 1.0) -> float:
        with cls(pids) as meter:
            time.sleep(seconds)
        return meter.foreign
