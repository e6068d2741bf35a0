"""Small bots the tests run, each showing one behaviour of the runtime."""

from __future__ import annotations

from bottender.connectors.base import Context


async def counter(context: Context) -> None:
    """The counting bot of Bottender's session guide."""
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


# --- Probing bots for tests/server: they report what they saw through PROBE. ---
# (Imports are local so this section can be appended without touching the header.)


class Probe:
    """What the probing bots saw, read back by the tests; each test starts with ``reset()``.

    The gateway runs the bots in its own thread, in the same process, so the
    tests and the bots share this module.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: (session id or None, the state the bot read) per event, in run order.
        self.seen: list[tuple[str | None, dict]] = []
        #: Exceptions the bots caught from the state API, as "TypeName: message".
        self.errors: list[str] = []
        #: Warnings the bots caught, as (category, message).
        self.warnings: list[tuple[type[Warning], str]] = []
        #: Contexts kept beyond their event, for tests to poke later.
        self.contexts: list[Context] = []
        #: Per session: events inside the bot right now, and the most ever at once.
        self.inside: dict[str, int] = {}
        self.max_inside: dict[str, int] = {}
        #: Sessions inside ``rendezvous`` right now, and the event set when two are.
        self.waiting: set[str] = set()
        self.together = None


PROBE = Probe()
#: How long ``rendezvous`` waits for a second session before giving up.
RENDEZVOUS_TIMEOUT = 5.0


async def state_probe(context: Context) -> None:
    """Does what the message text says to the state, then replies with the state as JSON.

    ``show`` | ``set <json>`` | ``reset`` | ``assign`` (top-level assignment) |
    ``mutate`` (nested in-place change of ``context.state``) | ``mutate-session``
    (every way into ``context.session``'s state other than set_state: nested changes,
    item assignment, replacing ``state``; the refusals are recorded) | ``bad``
    (set_state of a value no store keeps: datetime, date, set, bytes, object, int-key,
    nul-key, int64 — an integer past signed 64 bits) | ``stash`` (keep the context).
    Events without a session (and so without text to reply to) try
    set_state/reset_state and record the warnings.
    """
    import datetime
    import json
    import warnings
    from typing import Any

    PROBE.seen.append((context.session.id if context.session else None, dict(context.state)))
    if context.session is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            context.set_state({"count": 1})
            context.reset_state()
        PROBE.warnings += [(w.category, str(w.message)) for w in caught]
        PROBE.seen.append((None, dict(context.state)))
        return
    command, _, argument = (context.event.text or "").partition(" ")
    if command == "set":
        context.set_state(json.loads(argument))
    elif command == "reset":
        context.reset_state()
    elif command == "assign":
        state: Any = context.state
        try:
            state["count"] = 99
        except TypeError as exc:
            PROBE.errors.append(f"TypeError: {exc}")
        try:
            del state["count"]
        except TypeError as exc:
            PROBE.errors.append(f"TypeError: {exc}")
    elif command == "mutate":
        context.state["profile"]["name"] = "mutated"
        context.state["tags"].append("mutated")
        if argument:
            context.set_state(json.loads(argument))
    elif command == "mutate-session":
        session: Any = context.session
        session.state["profile"]["name"] = "mutated"
        session.state["tags"].append("mutated")
        try:
            session.state["count"] = 99
        except TypeError as exc:
            PROBE.errors.append(f"TypeError: {exc}")
        try:
            session.state = {"count": 99}
        except AttributeError as exc:
            PROBE.errors.append(f"AttributeError: {exc}")
        user = session.user
        user["id"] = 0  # a copy: who the conversation is with stays as the event said
    elif command == "bad":
        values = {
            "datetime": datetime.datetime.now(),
            "date": datetime.date.today(),
            "set": {1, 2},
            "bytes": b"raw",
            "object": object(),
            "int-key": {1: "one"},
            "nul-key": {"a\x00b": 1},
            "int64": {"visits": [1, 2**63]},
        }
        try:
            context.set_state({"value": values[argument]})
        except TypeError as exc:
            PROBE.errors.append(f"TypeError: {exc}")
    elif command == "stash":
        PROBE.contexts.append(context)
    await context.send_text(json.dumps(dict(context.state), sort_keys=True))


async def serial_counter(context: Context) -> None:
    """The counting bot, yielding between read and write, noting how many run per session."""
    import asyncio

    assert context.session is not None
    key = context.session.id
    PROBE.inside[key] = PROBE.inside.get(key, 0) + 1
    PROBE.max_inside[key] = max(PROBE.max_inside.get(key, 0), PROBE.inside[key])
    try:
        count = context.state["count"] + 1
        await asyncio.sleep(0)
        context.set_state({"count": count})
        await context.send_text(f"Count: {count}")
    finally:
        PROBE.inside[key] -= 1


async def rendezvous(context: Context) -> None:
    """Replies "met" once events of two sessions are inside at the same time, else "alone".

    Proves concurrency without timing: it can only say "met" if another
    session's event entered while this one was still running.
    """
    import asyncio

    assert context.session is not None
    if PROBE.together is None:
        PROBE.together = asyncio.Event()
    PROBE.waiting.add(context.session.id)
    if len(PROBE.waiting) >= 2:
        PROBE.together.set()
    try:
        await asyncio.wait_for(PROBE.together.wait(), RENDEZVOUS_TIMEOUT)
    except TimeoutError:
        await context.send_text("alone")
    else:
        await context.send_text("met")
    finally:
        PROBE.waiting.discard(context.session.id)


async def explosive(context: Context) -> None:
    """The counting bot, except that "boom" changes the state and then raises."""
    count = context.state["count"] + 1
    context.set_state({"count": count, "exploded": context.event.text == "boom"})
    if context.event.text == "boom":
        raise RuntimeError("the bot blew up")
    await context.send_text(f"Count: {count}")


def not_async(context: Context) -> None:
    """A plain function where an async one is required: the config refuses it."""


# --- Slow bot for tests/server/test_production.py (answer deadline, graceful shutdown) ---

#: How long ``slow`` takes: well past LINE's 1 s answer deadline.
SLOW_SECONDS = 5.0


async def slow(context: Context) -> None:
    """The counting bot, taking ``SLOW_SECONDS`` first, as a bot calling a slow service would."""
    import asyncio

    await asyncio.sleep(SLOW_SECONDS)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


# --- Chaos bot for tests/server/test_inbox_chaos.py (durable inbox, processes killed) ---

#: How long ``slow_pusher`` takes: longer than the chaos test's answer deadline.
PUSHER_SECONDS = 0.02


async def slow_pusher(context: Context) -> None:
    """The counting bot on LINE, slower than the deadline, pushing "<text> -> Count: n".

    It pushes rather than replies, so every message carries the retry key
    derived from the event: a replayed event's push is dropped by LINE.
    """
    import asyncio

    await asyncio.sleep(PUSHER_SECONDS)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.push_text(f"{context.event.text} -> Count: {count}")  # type: ignore[attr-defined]


# --- Gated bot for tests/server/test_inbox_gateway.py: runs when the test opens the gate ---

import threading  # noqa: E402

#: Opened by a test to let every ``gated`` event go on; tests close it again when done.
GATE = threading.Event()


async def gated(context: Context) -> None:
    """The counting bot, noting it started (``PROBE.seen``), then waiting for ``GATE``."""
    import asyncio

    PROBE.seen.append((context.session.id if context.session else None, dict(context.state)))
    await asyncio.to_thread(GATE.wait, 30)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
