"""The counting bot of Bottender's session guide: replies with how many messages it got."""

from __future__ import annotations

from bottender.connectors.base import Context


async def app(context: Context) -> None:
    if context.session is None:  # an update of no conversation (a Telegram poll): no count
        return
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
