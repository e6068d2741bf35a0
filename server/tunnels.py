"""Public URLs for a bot on a laptop: ngrok and cloudflared quick tunnels.

LINE and Telegram only deliver webhooks to public HTTPS URLs. ``bottender dev``
starts a tunnel program, learns the public URL it got, and stops the program
on the way out, so nothing is left running after the developer's Ctrl-C. How
each program tells its URL is its local interface, the only thing this module
relies on:

- ngrok serves a local agent API (``http://127.0.0.1:4040/api/tunnels``) listing
  its tunnels; ``NGROK_API_URL`` points elsewhere (a second agent on 4041, tests).
- cloudflared prints a ``https://<words>.trycloudflare.com`` banner to stderr.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

logger = logging.getLogger("bottender.tunnel")

NGROK_API_ENV = "NGROK_API_URL"
DEFAULT_NGROK_API_URL = "http://127.0.0.1:4040"
#: Seconds a tunnel program gets to come up with a public URL.
DEFAULT_START_TIMEOUT = 30.0
#: Seconds a tunnel program gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0
#: Lines of a tunnel program's output kept, to show when it fails.
OUTPUT_LINES_KEPT = 20
#: cloudflared's quick-tunnel URL; ``api.trycloudflare.com`` (in its errors) is not one.
TRYCLOUDFLARE_URL = re.compile(r"https://(?!api\.)[a-z0-9-]+\.trycloudflare\.com")


class TunnelError(Exception):
    """The tunnel could not be opened; the message says why and what to do."""


class TunnelNotInstalled(TunnelError):
    """The tunnel program is not on PATH; the message says how to install it."""


def ngrok_api_url() -> str:
    return os.environ.get(NGROK_API_ENV, DEFAULT_NGROK_API_URL).rstrip("/")


def pick_ngrok_url(payload: Any, port: int | None = None) -> str | None:
    """The https public URL in an ``/api/tunnels`` answer, for ``port`` when given.

    Several tunnels may be listed (another project's, an http twin of ours);
    only an https one whose local address ends in ``:port`` is ours.
    """
    tunnels = payload.get("tunnels") if isinstance(payload, dict) else None
    for tunnel in tunnels if isinstance(tunnels, list) else []:
        if not isinstance(tunnel, dict):
            continue
        url = tunnel.get("public_url")
        if not isinstance(url, str) or not url.startswith("https://"):
            continue
        if port is not None:
            addr = str((tunnel.get("config") or {}).get("addr", ""))
            if urlsplit(addr if "://" in addr else f"http://{addr}").port != port:
                continue
        return url
    return None


def find_ngrok_url(port: int | None = None, *, api_url: str | None = None) -> str | None:
    """The public URL of a running ngrok agent, or ``None`` when none answers."""
    try:
        with urllib.request.urlopen(f"{api_url or ngrok_api_url()}/api/tunnels", timeout=2) as r:
            payload = orjson.loads(r.read())
    except (OSError, ValueError):
        return None
    return pick_ngrok_url(payload, port)


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` having the kernel SIGTERM the tunnel if ``bottender dev`` dies.

    Covers the one exit no ``finally`` runs for (SIGKILL, a crash). Everything is
    looked up here, in the parent: between fork and exec the child only makes
    the system call (importing there could deadlock on another thread's lock).
    """
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
        prctl(pr_set_pdeathsig, sigterm)

    return set_parent_death_signal


class Tunnel(ABC):
    """A tunnel program run for the life of ``bottender dev``: ``start()``, then ``stop()``."""

    name: str = ""
    program: str = ""
    #: How to install the program, shown when it is not on PATH.
    install_hint: str = ""

    def __init__(
        self,
        port: int,
        *,
        timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen[str] | None = None
        self.public_url: str | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES_KEPT)
        self._reader: threading.Thread | None = None

    @abstractmethod
    def command(self, executable: str) -> list[str]:
        """The program's argv."""

    @abstractmethod
    def _poll_url(self) -> str | None:
        """The public URL once the program has one, else ``None``."""

    def _on_line(self, line: str) -> None:
        """Called by the output reader for each line the program prints."""

    def start(self) -> str:
        """Run the program and wait for its public URL; stop it again on any failure."""
        executable = shutil.which(self.program, path=(self.env or os.environ).get("PATH"))
        if executable is None:
            raise TunnelNotInstalled(
                f"{self.program} is not installed (not found on PATH). {self.install_hint}"
                " Or pass --public-url URL if this machine is already reachable."
            )
        logger.info("starting %s", " ".join(self.command(self.program)))
        self.process = subprocess.Popen(
            self.command(executable),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=self.env,
            preexec_fn=_parent_death_signal(),
        )
        # Drain the output for the life of the program: a full pipe would block it.
        self._reader = threading.Thread(target=self._read_output, name=self.name, daemon=True)
        self._reader.start()
        try:
            self.public_url = self._wait_for_url()
        except BaseException:
            self.stop()
            raise
        return self.public_url

    def _wait_for_url(self) -> str:
        assert self.process is not None
        deadline = time.monotonic() + self.timeout
        while True:
            url = self._poll_url()
            if url:
                return url
            code = self.process.poll()
            if code is not None:
                raise TunnelError(
                    f"{self.program} exited (status {code}) before opening a tunnel"
                    + self._output_tail()
                )
            if time.monotonic() > deadline:
                raise TunnelError(
                    f"{self.program} gave no public URL within {self.timeout:g} s"
                    + self._output_tail()
                )
            time.sleep(0.1)

    def _output_tail(self) -> str:
        if self._reader is not None:
            self._reader.join(0.5)  # let the last lines of an exited program arrive
        lines = [line for line in self._output if line.strip()]
        return (":\n  " + "\n  ".join(lines)) if lines else ""

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self._output.append(line)
            logger.debug("%s: %s", self.program, line)
            self._on_line(line)

    def stop(self) -> None:
        """Terminate the program, kill it if it lingers, and reap it: nothing is left running."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not exit in %.1f s; killing it", self.program, self.stop_timeout
                )
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(1)
        if process.stdout is not None:
            process.stdout.close()
        logger.info("%s stopped", self.program)

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NgrokTunnel(Tunnel):
    name = "ngrok"
    program = "ngrok"
    install_hint = (
        "Install the ngrok agent (https://ngrok.com/download: `snap install ngrok`,"
        " `brew install ngrok`, or the apt repository ngrok-agent.s3.amazonaws.com),"
        " then `ngrok config add-authtoken <token>`. Or use --tunnel cloudflared."
    )

    def __init__(self, port: int, *, api_url: str | None = None, **options: Any) -> None:
        super().__init__(port, **options)
        self.api_url = api_url

    def command(self, executable: str) -> list[str]:
        # --log stdout: log lines instead of the full-screen console, which needs a terminal.
        return [executable, "http", str(self.port), "--log", "stdout"]

    def _poll_url(self) -> str | None:
        env = self.env if self.env is not None else os.environ
        api = self.api_url or env.get(NGROK_API_ENV, DEFAULT_NGROK_API_URL).rstrip("/")
        return find_ngrok_url(self.port, api_url=api)


class CloudflaredTunnel(Tunnel):
    name = "cloudflared"
    program = "cloudflared"
    install_hint = (
        "Install cloudflared: `brew install cloudflared`; on Debian/Ubuntu"
        " `apt-get install cloudflared` after adding Cloudflare's repository (pkg.cloudflare.com);"
        " or a binary from github.com/cloudflare/cloudflared/releases. Or use --tunnel ngrok."
    )

    def __init__(self, port: int, **options: Any) -> None:
        super().__init__(port, **options)
        self._found: str | None = None

    def command(self, executable: str) -> list[str]:
        return [executable, "tunnel", "--url", f"http://127.0.0.1:{self.port}"]

    def _on_line(self, line: str) -> None:
        if self._found is None:
            match = TRYCLOUDFLARE_URL.search(line)
            if match:
                self._found = match.group(0)

    def _poll_url(self) -> str | None:
        return self._found


TUNNELS: dict[str, type[Tunnel]] = {"ngrok": NgrokTunnel, "cloudflared": CloudflaredTunnel}


def make_tunnel(kind: str, port: int, **options: Any) -> Tunnel:
    try:
        return TUNNELS[kind](port, **options)
    except KeyError:
        raise TunnelError(f"unknown tunnel {kind!r} (choose from {tuple(TUNNELS)})") from None
