"""Small bots the tests run, each showing one behaviour of the runtime."""

from __future__ import annotations

from connectors.base import Context


async def counter(context: Context) -> None:
    """The counting bot of Bottender's session guide."""
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
