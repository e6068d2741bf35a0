"""Bots for the channel and polling tests (tests/server/test_channels.py, test_polling*.py)."""

from __future__ import annotations

import asyncio

from bottender.connectors.base import Context

#: Texts ``slow_counter`` received, in the order it started them (in-process tests read it).
STARTED: list[str] = []
#: Seconds ``slow_counter`` works on each event.
SLOW_SECONDS = 1.0


async def channel_counter(context: Context) -> None:
    """Counts per session and says which channel it answers on."""
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"{context.channel} {count}")


async def paced_counter(context: Context) -> None:
    """The counting bot, taking a moment per update, so a burst lasts long enough to interrupt."""
    await asyncio.sleep(0.05)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


async def slow_counter(context: Context) -> None:
    """Says it started, works ``SLOW_SECONDS``, then counts: an event caught in flight."""
    STARTED.append(context.event.text or "")
    await context.send_text(f"started {context.event.text}")
    await asyncio.sleep(SLOW_SECONDS)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
