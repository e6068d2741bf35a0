"""``bottender sessions list [--limit N] | show ID | delete ID``: an operator's view of the store.

For inspecting a user's state or erasing it on request (GDPR and the like)
without writing a script. ``list`` streams (100k sessions never sit in memory
at once); ``delete`` takes the session's lock, so an event in progress
finishes first and nothing writes the session back half-way. The memory store
lives inside the running bot's process, where no other command can reach it:
the command says so and fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from collections.abc import Callable
from contextlib import aclosing

import orjson

from bottender.server.config import Config, load_config
from bottender.server.stores import build_store
from bottender.sessions.base import SessionStore, StoreError
from bottender.sessions.session import Session

#: Characters of a session's state shown per ``list`` line; ``show`` prints it whole.
STATE_PREVIEW = 80
MEMORY_REFUSAL = (
    "bottender: sessions: the memory store lives inside the running bot's process; no other"
    " command can see or change its sessions. Use the console's /state and /session, or a"
    " store that processes share (session.driver = 'file', 'redis' or 'mongo')."
)


def add_sessions_command(
    commands: argparse._SubParsersAction, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add ``sessions list|show|delete`` to the ``bottender`` parser."""
    sessions = commands.add_parser("sessions", help="list, show or delete stored sessions")
    actions = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line per session: id, last activity, state")
    listing.add_argument("--limit", type=_limit, metavar="N", help="stop after N sessions")
    show = actions.add_parser("show", help="the whole session as JSON")
    show.add_argument("id", metavar="ID", help="session id, e.g. line:U1234 or telegram:42")
    delete = actions.add_parser("delete", help="erase a session (under its lock)")
    delete.add_argument("id", metavar="ID", help="session id, e.g. line:U1234 or telegram:42")
    for parser in actions.choices.values():
        add_config(parser)
        parser.set_defaults(handler=cmd_sessions)


def _limit(value: str) -> int:
    limit = int(value)
    if limit < 1:
        raise argparse.ArgumentTypeError(f"--limit must be at least 1, got {value}")
    return limit


def cmd_sessions(args: argparse.Namespace) -> int:
    config = load_config(args.config, need_app=False)
    if config.driver == "memory":
        print(MEMORY_REFUSAL, file=sys.stderr)
        return 1
    return asyncio.run(_run(config, args))


async def _run(config: Config, args: argparse.Namespace) -> int:
    store = build_store(config)
    await store.open()  # StoreUnavailable: main() prints it with the store's URL
    try:
        if args.action == "list":
            return await _list(store, args.limit)
        if args.action == "show":
            return await _show(store, args.id)
        return await _delete(store, args.id)
    except StoreError as error:
        print(f"bottender: session store failed: {error}", file=sys.stderr)
        return 1
    finally:
        await store.close()


async def _list(store: SessionStore, limit: int | None) -> int:
    count = 0
    async with aclosing(store.list_sessions(limit)) as sessions:
        async for session in sessions:
            print(_line(session), flush=count % 100 == 0)
            count += 1
    more = " (--limit reached; there may be more)" if limit is not None and count >= limit else ""
    print(f"{count} session(s){more}", file=sys.stderr)
    return 0


async def _show(store: SessionStore, session_id: str) -> int:
    session = await store.read(session_id)
    if session is None:
        print(f"bottender: no session {session_id!r}", file=sys.stderr)
        return 1
    data = {**session.to_dict(), "last_activity_utc": _when(session.last_activity)}
    print(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    return 0


async def _delete(store: SessionStore, session_id: str) -> int:
    if await store.delete(session_id):
        print(f"deleted session {session_id}")
    else:
        print(f"no session {session_id}: nothing to delete")
    return 0


def _line(session: Session) -> str:
    state = orjson.dumps(session.state, option=orjson.OPT_SORT_KEYS).decode()
    if len(state) > STATE_PREVIEW:
        state = state[: STATE_PREVIEW - 1] + "…"
    return f"{session.id}\t{_when(session.last_activity)}\t{state}"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
