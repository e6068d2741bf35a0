"""``line.<kind>(action)``: routes for LINE's own event kinds (``line.follow(welcome)``).

Imported by the facade as ``bottender.line``. Each helper matches a LINE event of
one type (Messaging API ``type``, here in Python's snake case), on any channel of
the LINE platform.
"""

from __future__ import annotations

from collections.abc import Callable

from bottender.connectors.line import EVENT_TYPES
from bottender.connectors.router import Action, Route, kind_helper

__all__ = [
    "account_link",
    "beacon",
    "follow",
    "join",
    "leave",
    "member_joined",
    "member_left",
    "message",
    "postback",
    "unfollow",
    "unsend",
    "video_play_complete",
]


def _kind(name: str) -> Callable[[Action], Route]:
    """``line.<name>``: the events whose Messaging API ``type`` is ``name`` in camelCase."""
    line_type = EVENT_TYPES[name]
    return kind_helper(
        "line",
        name,
        lambda event: event.type == line_type,
        f"Run ``action`` on a LINE ``{line_type}`` event.",
    )


message = _kind("message")
follow = _kind("follow")
unfollow = _kind("unfollow")
join = _kind("join")
leave = _kind("leave")
member_joined = _kind("member_joined")
member_left = _kind("member_left")
postback = _kind("postback")
beacon = _kind("beacon")
account_link = _kind("account_link")
unsend = _kind("unsend")
video_play_complete = _kind("video_play_complete")
