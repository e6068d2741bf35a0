"""Console mode: chat with the bot in the terminal, on the configured store.

The prompt is read in the main thread with ``input()``, so readline gives line
editing and history (the Up arrow recalls a line); Ctrl-C there drops the line
being typed (server/prompt.py says how), and Ctrl-D (end of input) quits.
The bot and the store run on an event loop in a background thread that lives
as long as the console, so a bot's own tasks keep running between lines;
Ctrl-C while the bot works interrupts that event only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from bottender.connectors.base import BadRequest
from bottender.connectors.console import ConsoleConnector
from bottender.server import prompt
from bottender.server.config import Config, ConfigError
from bottender.server.prompt import enable_line_editing
from bottender.server.runtime import Runtime, fill_missing_keys
from bottender.server.stores import build_store
from bottender.sessions.base import SessionStore, StoreError

PROMPT = "You > "
HELP = "Type a message, or /help."
COMMANDS = (
    "/payload DATA      a postback (LINE) / callback query (Telegram) with DATA",
    "/image             an image",
    "/location LAT LNG  a location, e.g. /location 25.0330 121.5654",
    "/state, /session   the conversation's state, the whole session",
    "/exit, /quit       leave (or Ctrl-D); Ctrl-C drops the line being typed",
)


def _say(text: str) -> None:
    print(text, flush=True)


def parse_line(line: str) -> dict[str, Any] | str:
    """A typed line -> a console event body, or a usage message for a malformed command."""
    command, _, rest = line.partition(" ")
    rest = rest.strip()
    if command == "/payload":
        return {"payload": rest} if rest else "usage: /payload DATA"
    if command == "/image":
        return {"image": True}
    if command == "/location":
        usage = "usage: /location LATITUDE LONGITUDE, e.g. /location 25.0330 121.5654"
        try:
            latitude, longitude = (float(part) for part in rest.split())
        except ValueError:
            return usage
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            return usage
        return {"location": [latitude, longitude]}
    return {"text": line}


class _Loop:
    """An event loop in a daemon thread; the main thread hands it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_forever, daemon=True)
        self._thread.start()

    def _run_forever(self) -> None:
        # Ctrl-C is the prompt's: a SIGINT delivered to this thread (or to the executor
        # threads it starts, which inherit the mask) would not wake the main thread's
        # readline, and the interrupt would wait for the next key.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` to its end; Ctrl-C cancels it (and waits for it) and is re-raised.

        The Ctrl-C is taken by a handler that only notes it, never raised where it
        lands: a KeyboardInterrupt inside ``threading.Event.wait`` can leave the
        event's lock held, and the console then hangs for good at the next wait.
        """
        done = threading.Event()
        box: dict[str, asyncio.Task[Any]] = {}
        interrupts: list[int] = []

        def start() -> None:
            box["task"] = task = self.loop.create_task(coro)
            # A callback, not a ``finally`` in the coroutine: a task cancelled before
            # its first step never runs its body.
            task.add_done_callback(lambda _: done.set())

        cancelled = False
        with _noting_interrupts(interrupts):
            self.loop.call_soon_threadsafe(start)
            # Short waits: the handler runs in this thread only between two of them.
            while not done.wait(0.1):
                if interrupts and not cancelled:
                    # Callbacks run in order: the task exists when this one runs.
                    self.loop.call_soon_threadsafe(lambda: box["task"].cancel())
                    cancelled = True
        task = box["task"]
        if task.cancelled():  # by the Ctrl-C (a Ctrl-C after its end changes nothing)
            raise KeyboardInterrupt
        return task.result()  # done: its result or exception is settled

    def close(self) -> None:
        """Cancel what the bot left running (its own tasks), then stop the loop."""
        with contextlib.suppress(KeyboardInterrupt):
            self.run(_cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


@contextlib.contextmanager
def _noting_interrupts(interrupts: list[int]) -> Iterator[None]:
    """SIGINT appends to ``interrupts`` meanwhile (in the main thread; elsewhere, as it was)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupts.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _cancel_leftovers() -> None:
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


async def _show(store: SessionStore, config: Config, key: str, what: str) -> str:
    session = await store.read(key)
    if session and session.is_expired(time.time(), config.expires_in):
        session = None  # what the next message would start from
    if session:
        fill_missing_keys(session, config.initial_state)
    if what == "/state":
        data = session.state if session else dict(config.initial_state)
    else:
        data = session.to_dict() if session else None
    return json.dumps(data, ensure_ascii=False)


def run_console(
    config: Config,
    *,
    platform: str = "console",
    read_line: Callable[[str], str] | None = None,
    write: Callable[[str], None] = _say,
    channel: str | None = None,
) -> None:
    if channel is not None and channel not in config.channels:
        enabled = ", ".join(config.channels) or "none"
        raise ConfigError(
            f"--channel {channel}: channels.{channel} is not enabled (enabled: {enabled})"
        )
    if read_line is None:
        ctrl_c_as_key = enable_line_editing()
        read_line = functools.partial(prompt.read_line, ctrl_c_as_key=ctrl_c_as_key)
    loop = _Loop()
    store = build_store(config)
    try:
        loop.run(store.open())
        connector = ConsoleConnector(
            initial_state=config.initial_state, write=write, platform=platform, channel=channel
        )
        runtime = Runtime(
            config.app,
            store,
            initial_state=config.initial_state,
            expires_in=config.expires_in,
            error_handler=config.error_handler,
            middleware=config.middleware,
        )
        shape = "" if platform == "console" else f" ({platform}-shaped events)"
        speaking = f" as channel {channel!r}" if channel else ""
        write(
            f"Bottender console: {config.app_ref} on the {config.driver} store"
            f"{speaking}{shape}. {HELP}"
        )
        try:
            _chat(loop, store, config, connector, runtime, read_line, write)
        finally:
            loop.run(store.close())
    finally:
        loop.close()


def _chat(
    loop: _Loop,
    store: SessionStore,
    config: Config,
    connector: ConsoleConnector,
    runtime: Runtime,
    read_line: Callable[[str], str],
    write: Callable[[str], None],
) -> None:
    while True:
        try:
            line = read_line(PROMPT).strip()
        except KeyboardInterrupt:  # Ctrl-C: the line is dropped, a fresh prompt
            write("")
            continue
        except EOFError:  # Ctrl-D
            write("")
            return
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return
        if line == "/help":
            write("\n".join(COMMANDS))
            continue
        try:
            if line in ("/state", "/session"):
                write(f"Bot > {loop.run(_show(store, config, connector.session_id, line))}")
                continue
            body = parse_line(line)
            if isinstance(body, str):
                write(f"({body})")
                continue
            loop.run(runtime.handle_events(connector, connector.parse(body)))
        except KeyboardInterrupt:
            write("(interrupted)")
        except StoreError as exc:
            write(f"(session store unavailable: {exc})")
        except BadRequest as exc:
            write(f"({exc})")
