"""Bots for the metrics and tracing tests: each message text picks an outcome."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from bottender.connectors.base import Context

#: Set by a test to let a ``wait`` event finish (after its webhook was answered).
RELEASE = threading.Event()
#: Or, for a gateway in other processes: this file appearing lets it finish.
RELEASE_FILE_ENV = "OUTCOMES_RELEASE_FILE"


def _wait_for_release() -> None:
    path = os.environ.get(RELEASE_FILE_ENV)
    while not RELEASE.wait(0.01):
        if path and Path(path).exists():
            return


async def outcomes(context: Context) -> None:
    """Counts messages; ``boom`` raises, ``wait`` holds until released."""
    text = context.event.text
    if text == "boom":
        raise RuntimeError("the bot blew up")
    if text == "wait":
        await asyncio.to_thread(_wait_for_release)
    count = context.state["count"] + 1
    context.set_state({"count": count})
    await context.send_text(f"Count: {count}")
