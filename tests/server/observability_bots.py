"""Bots for the metrics and tracing tests: each message text picks an outcome."""

from __future__ import annotations

import asyncio
import threading

from bottender.connectors.base import Context

#: Set by a test to let a ``wait`` event finish (after its webhook was answered).
RELEASE = threading.Event()


async def outcomes(context: Context) -> None:
    """Counts messages; ``boom`` raises, ``wait`` holds until :data:`RELEASE` is set."""
    text = context.event.text
    if text == "boom":
        raise RuntimeError("the bot blew up")
    if text == "wait":
        await asyncio.to_thread(RELEASE.wait, 60)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
