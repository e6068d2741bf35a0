"""A second process on a shared store, driven by the cross-process tests.

    python -m tests.sessions.worker "<store config dict>" count KEY N   increment state n, N times
    python -m tests.sessions.worker "<store config dict>" hold KEY      take the lock, then hang
    python -m tests.sessions.worker "<store config dict>" write-loop KEY SIZE   rewrite forever
    python -m tests.sessions.worker "<store config dict>" put-entries KEY N   hold N new entries
    python -m tests.sessions.worker "<store config dict>" claim-entries KEY N   claim N, hold them

``count`` says "ready" and waits for a line on stdin, so every worker starts
incrementing at once and they really contend.
"""

from __future__ import annotations

import ast
import asyncio
import sys
from typing import Any

from bottender.sessions.base import InboxEntry, SessionStore
from bottender.sessions.session import Session


def build(config: dict[str, Any]) -> SessionStore:
    driver = config.pop("driver")
    if driver == "file":
        from bottender.sessions.file import FileStore

        return FileStore(**config)
    if driver == "redis":
        from bottender.sessions.redis import RedisStore

        return RedisStore(**config)
    if driver == "mongo":
        from bottender.sessions.mongo import MongoStore

        return MongoStore(**config)
    raise SystemExit(f"no cross-process store {driver!r}")


def say(line: str) -> None:
    print(line, flush=True)


async def count(store: SessionStore, key: str, times: int) -> None:
    say("ready")
    await asyncio.to_thread(sys.stdin.readline)
    for _ in range(times):
        async with store.checkout(key) as checkout:
            session = checkout.session or Session.new(key, {"n": 0})
            await asyncio.sleep(0.001)  # widen the read-modify-write window
            session.state["n"] += 1
            checkout.save(session)
    say("done")


async def hold(store: SessionStore, key: str) -> None:
    async with store.lock(key):
        say("locked")
        await asyncio.Event().wait()


async def write_loop(store: SessionStore, key: str, size: int) -> None:
    version = 0
    while True:
        letter = chr(ord("a") + version % 26)
        await store.write(Session(key, {"version": version, "blob": letter * size}))
        if version == 0:
            say("writing")
        version += 1


#: The inbox owner token of a worker: what the next claimer finds as ``previous_owner``.
WORKER_OWNER = "w" * 32


async def put_entries(store: SessionStore, key: str, number: int) -> None:
    """Write ``number`` entries owned by this process (``KEY-0``...), then hang holding them."""
    inbox = store.inbox()
    assert inbox is not None
    for n in range(number):
        await inbox.put(InboxEntry(f"{key}-{n}", "line", b"{}"), owner=WORKER_OWNER)
    say("holding")
    await asyncio.Event().wait()


async def claim_entries(store: SessionStore, number: int) -> None:
    """Claim ``number`` entries for this process, then hang holding them."""
    inbox = store.inbox()
    assert inbox is not None
    claimed = await inbox.claim(WORKER_OWNER, number)
    say(f"claimed {len(claimed)}")
    await asyncio.Event().wait()


async def main(argv: list[str]) -> None:
    config, mode, key, *rest = argv
    store = build(ast.literal_eval(config))
    await store.open()
    try:
        if mode == "count":
            await count(store, key, int(rest[0]))
        elif mode == "hold":
            await hold(store, key)
        elif mode == "write-loop":
            await write_loop(store, key, int(rest[0]))
        elif mode == "put-entries":
            await put_entries(store, key, int(rest[0]))
        elif mode == "claim-entries":
            await claim_entries(store, int(rest[0]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
