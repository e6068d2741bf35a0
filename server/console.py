"""Console mode: chat with the bot in the terminal, on the configured store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from connectors.console import SESSION_KEY, ConsoleConnector
from server.config import Config
from server.runtime import Runtime
from server.stores import build_store
from sessions.base import StoreError

PROMPT = "You > "
HELP = "Type a message, or /state, /session, /exit."


def _say(text: str) -> None:
    print(text, flush=True)


async def run_console(
    config: Config,
    *,
    read_line: Callable[[str], str] = input,
    write: Callable[[str], None] = _say,
) -> None:
    store = build_store(config)
    await store.open()
    connector = ConsoleConnector(initial_state=config.initial_state, write=write)
    runtime = Runtime(
        config.app, store, initial_state=config.initial_state, expires_in=config.expires_in
    )
    write(f"Bottender console: {config.app_ref} on the {config.driver} store. {HELP}")
    try:
        while True:
            try:
                line = await asyncio.to_thread(read_line, PROMPT)
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
                    session = await store.read(SESSION_KEY)
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
