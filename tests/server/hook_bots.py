"""Bots, error handlers and middleware for the error_handler / middleware tests.

The gateway runs them in a thread of the test's process, so they report through
``SEEN``, which the tests clear and read.
"""

from __future__ import annotations

from typing import Any

#: What the bots, handlers and middleware did, in order.
SEEN: list[Any] = []


async def counter(context: Any) -> None:
    SEEN.append("app")
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")


async def crash(context: Any) -> None:
    """Changes the state, sends, then raises."""
    SEEN.append("app")
    context.set_state({"count": 99})
    await context.send_text("before the crash")
    raise ValueError("boom")


async def on_error(context: Any, error: Exception) -> None:
    SEEN.append(("error_handler", type(error).__name__, context.state.get("count")))
    await context.send_text(f"Sorry! ({type(error).__name__})")


async def broken_handler(context: Any, error: Exception) -> None:
    SEEN.append(("error_handler", type(error).__name__))
    await context.send_text("never delivered on LINE")
    raise RuntimeError("the error handler broke too")


async def outer(context: Any, call_next: Any) -> None:
    SEEN.append("outer in")
    await call_next()
    SEEN.append("outer out")


async def inner(context: Any, call_next: Any) -> None:
    SEEN.append("inner in")
    await call_next()
    SEEN.append("inner out")


async def gate(context: Any, call_next: Any) -> None:
    """Lets only texts other than "blocked" through."""
    if context.event.text == "blocked":
        SEEN.append("gate closed")
        await context.send_text("not allowed")
        return
    await call_next()


async def failing_middleware(context: Any, call_next: Any) -> None:
    await call_next()
    raise LookupError("middleware failed after the app")


def not_async(context: Any, error: Exception) -> None:
    """Not a coroutine function: refused by the config."""
