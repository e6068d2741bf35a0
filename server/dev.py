"""``bottender dev``: serve the bot on a laptop, reachable by LINE and Telegram.

In order: check the port is free (before anything is registered), open the
tunnel (or take ``--public-url``), point every enabled channel's webhook at
it, then serve with uvicorn's reloader watching the project (code,
``bottender_config.py`` and ``.env``). On the way out, however it comes (Ctrl-C,
SIGTERM, an error), the tunnel program is stopped: nothing is left running.

The reloader starts each server as a fresh process. Those processes must read
``.env`` themselves, so an edited ``.env`` takes effect on reload; the caller
therefore hands this module an environment without ``.env``'s values
(``dotenv_environ`` holds them, for the tunnel program: ngrok reads
``NGROK_AUTHTOKEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from bottender.connectors.api import PlatformApiError
from bottender.server.channels import display_name
from bottender.server.config import Config
from bottender.server.serve import announce_polling, export_config, run_gateway
from bottender.server.startup import StartupError, check_port_free
from bottender.server.tunnels import Tunnel, make_tunnel
from bottender.server.webhooks import register_all

logger = logging.getLogger("bottender.dev")

DEFAULT_HOST = "127.0.0.1"
#: Files whose change restarts the server, besides the config file itself.
RELOAD_INCLUDES = ("*.py", ".env")
#: Directories under the project never worth a restart (and often large).
RELOAD_EXCLUDED_DIRS = (".venv", "venv", ".git", "node_modules", "__pycache__", ".session")
#: Seconds the dev server gives requests in flight when it restarts or stops.
DEV_GRACEFUL_SHUTDOWN_SECONDS = 5


class DevError(StartupError):
    """``bottender dev`` cannot go on; the message says why."""


def reload_settings(config: Config, project_dir: Path) -> dict[str, list[str]]:
    """What uvicorn's reloader watches: the project, its config file and ``.env``."""
    dirs = [str(project_dir)]
    if config.path.parent != project_dir:
        dirs.append(str(config.path.parent))
    excludes = [
        str(path)
        for base in dict.fromkeys(Path(d) for d in dirs)
        for name in RELOAD_EXCLUDED_DIRS
        if (path := base / name).is_dir()
    ]
    return {
        "reload_dirs": dirs,
        "reload_includes": [*RELOAD_INCLUDES, config.path.name],
        "reload_excludes": excludes,
    }


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Until uvicorn installs its own handlers, SIGTERM unwinds like Ctrl-C, through cleanup."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Let cleanup finish: a second Ctrl-C must not orphan the tunnel half-way through."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(line: str) -> None:
    print(line, flush=True)


def run_dev(
    config: Config,
    *,
    port: int,
    host: str = DEFAULT_HOST,
    tunnel: str = "ngrok",
    public_url: str | None = None,
    log_level: str = "info",
    dotenv_environ: Mapping[str, str] | None = None,
    project_dir: Path | None = None,
    app_override: str | None = None,
    polling: bool = False,
) -> int:
    project = (project_dir or Path.cwd()).resolve()
    opened: Tunnel | None = None
    with _sigterm_as_interrupt():
        try:
            check_port_free(host, port)
            if polling:
                # No tunnel: the pollers (in the server process) fetch the updates.
                announce_polling(config)
                _say(
                    f"Polling for updates (no tunnel); health check at http://{host}:{port}/healthz"
                )
            elif public_url is None:
                opened = make_tunnel(tunnel, port, env=dotenv_environ)
                public_url = opened.start()
                _say(f"Tunnel ({tunnel}): {public_url} -> http://{host}:{port}")
            else:
                _say(f"Public URL: {public_url} -> http://{host}:{port}")
            if not polling:
                assert public_url is not None
                _register(config, public_url)
            export_config(config, app_override, polling=polling)
            run_gateway(
                config,
                host=host,
                port=port,
                log_level=log_level,
                reload=True,
                **reload_settings(config, project),
                timeout_graceful_shutdown=DEV_GRACEFUL_SHUTDOWN_SECONDS,
            )
        finally:
            if opened is not None:
                with _signals_ignored():
                    opened.stop()
    return 0


def _register(config: Config, public_url: str) -> None:
    if not config.channels:
        _say("No channel is enabled in the config: no webhook registered")
        return
    try:
        urls, notes = asyncio.run(register_all(config, public_url))
    except PlatformApiError as exc:
        raise DevError(f"could not register the {exc.platform} webhook: {exc}") from None
    labels = {name: _label(config, name) for name in urls}
    width = max(len(label) for label in labels.values())
    for name, url in urls.items():
        _say(f"{labels[name] + ' webhook:':<{width + 9}} {url}")
    for note in notes:
        if " webhook set: " not in note:
            _say(note)


def _label(config: Config, name: str) -> str:
    """``LINE`` for the channel named after its platform, ``LINE (shop)`` for another."""
    shown = display_name(config, name)
    return shown if name == config.channels[name]["platform"] else f"{shown} ({name})"
