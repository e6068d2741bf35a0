"""Apps that are not plain functions: an object with an ``async __call__``, a router."""

from __future__ import annotations

import re
from typing import Any

from bottender import route, router, text
from tests.server.hook_bots import counter


class Handler:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, context: Any) -> None:
        self.calls += 1
        await context.send_text(f"object call {self.calls}")


handler = Handler()


async def hello(context: Any) -> None:
    await context.send_text("hello")


async def order(context: Any, match: Any) -> Any:
    await context.send_text(f"order #{match.group(1)}")
    return counter  # chained: runs next, with the same context


async def what(context: Any) -> None:
    await context.send_text("?")


routed = router(
    text("hi", hello),
    text(re.compile(r"^order (\d+)$"), order),
    route("*", what),
)
