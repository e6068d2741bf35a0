"""``telegram.<kind>(action)`` and ``telegram.command(name, action)``: Telegram's own routes.

Imported by the facade as ``bottender.telegram``. A kind helper matches an update
whose field is that kind; ``command`` matches a message whose text is the
command, with or without ``@BotName`` (``/start``, ``/start@MyBot ref42``), and
passes what follows it as ``props["args"]`` (``""`` when nothing does).

``/start@OtherBot`` matches too: which bot a command names is not in the update,
and asking Telegram (``getMe``) would cost a call per process; in groups where
several bots listen, check ``context.event.text`` yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bottender.connectors.router import Action, Route, kind_helper, route

__all__ = [
    "callback_query",
    "channel_post",
    "chat_member",
    "chosen_inline_result",
    "command",
    "edited_message",
    "inline_query",
    "message",
    "my_chat_member",
    "poll_answer",
    "pre_checkout_query",
    "shipping_query",
]


def _kind(kind: str) -> Callable[[Action], Route]:
    """``telegram.<kind>``: the updates that carry the field ``kind`` (``callback_query``...)."""
    return kind_helper(
        "telegram",
        kind,
        lambda event: event.kind == kind,
        f"Run ``action`` on a Telegram ``{kind}`` update.",
    )


message = _kind("message")
edited_message = _kind("edited_message")
channel_post = _kind("channel_post")
callback_query = _kind("callback_query")
inline_query = _kind("inline_query")
chosen_inline_result = _kind("chosen_inline_result")
poll_answer = _kind("poll_answer")
my_chat_member = _kind("my_chat_member")
chat_member = _kind("chat_member")
pre_checkout_query = _kind("pre_checkout_query")
shipping_query = _kind("shipping_query")


def command(name: str, action: Action) -> Route:
    """Run ``action`` on ``/name`` (or ``/name@BotName``); ``props["args"]`` is the rest."""
    wanted = name.removeprefix("/")
    if not wanted or any(char.isspace() or char == "@" for char in wanted):
        raise ValueError(f"telegram.command(): {name!r} is not a command name")

    def predicate(context: Any) -> Mapping[str, Any] | None:
        if context.platform != "telegram":
            return None
        event = context.event
        if event.command != wanted:
            return None
        return {"args": event.command_args}

    predicate.__name__ = f"telegram.command({wanted!r})"
    return route(predicate, action)
