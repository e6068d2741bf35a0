"""Console mode: chat with the bot in the terminal, on the configured store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable

from bottender.connectors.console import ConsoleConnector
from bottender.server.config import Config, ConfigError
from bottender.server.runtime import Runtime
from bottender.server.stores import build_store
from bottender.sessions.base import StoreError

PROMPT = "You > "
HELP = "Type a message, or /state, /session, /exit."


def _say(text: str) -> None:
    print(text, flush=True)


async def _read_line_in_daemon_thread(read_line: Callable[[str], str], prompt: str) -> str:
    """``read_line(prompt)`` off the loop, in a daemon thread.

    Ctrl-C cancels the loop's task; ``asyncio.to_thread``'s executor would then
    wait at exit for its thread, blocked on the terminal forever: the console hung.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line or "")

    def read() -> None:
        try:
            line, error = read_line(prompt), None
        except BaseException as exc:
            line, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=read, name="console-input", daemon=True).start()
    return await future


async def run_console(
    config: Config,
    *,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], None] = _say,
    channel: str | None = None,
) -> None:
    if channel is not None and channel not in config.channels:
        enabled = ", ".join(config.channels) or "none"
        raise ConfigError(
            f"--channel {channel}: channels.{channel} is not enabled (enabled: {enabled})"
        )
    store = build_store(config)
    await store.open()
    connector = ConsoleConnector(initial_state=config.initial_state, write=write, channel=channel)
    runtime = Runtime(
        config.app, store, initial_state=config.initial_state, expires_in=config.expires_in
    )
    speaking = f" as channel {channel!r}" if channel else ""
    write(f"Bottender console: {config.app_ref} on the {config.driver} store{speaking}. {HELP}")
    try:
        while True:
            try:
                line = await _read_line_in_daemon_thread(read_line, PROMPT)
            except (EOFError, KeyboardInterrupt):
                write("")
                break
            line = line.strip()
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            try:
                if line in ("/state", "/session"):
                    session = await store.read(connector.session_id)
                    if session and session.is_expired(time.time(), config.expires_in):
                        session = None  # what the next message would start from
                    if line == "/state":
                        data = session.state if session else dict(config.initial_state)
                    else:
                        data = session.to_dict() if session else None
                    write(f"Bot > {json.dumps(data, ensure_ascii=False)}")
                    continue
                await runtime.handle_events(connector, connector.parse({"text": line}))
            except StoreError as exc:
                write(f"(session store unavailable: {exc})")
    finally:
        await store.close()
