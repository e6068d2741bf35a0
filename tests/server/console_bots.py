"""Bots for the console's tests: they say what they were handed."""

from __future__ import annotations

import json

from bottender.connectors.base import Context


async def describe(context: Context) -> None:
    """Replies with the context's platform, the event's class, its text and its raw JSON."""
    event = context.event
    await context.send_text(
        json.dumps(
            {
                "platform": context.platform,
                "event": type(event).__name__,
                "text": event.text,
                "raw": event.raw,
            },
            sort_keys=True,
        )
    )


async def slow_worker(context: Context) -> None:
    """Says it started, then works for a minute (unless interrupted), then counts."""
    import asyncio

    await context.send_text("working")
    await asyncio.sleep(60)
    context.set_state({"count": context.state["count"] + 1})
    await context.send_text("done")
