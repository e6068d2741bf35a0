"""Working with conversations outside a webhook: schedulers, payment callbacks, scripts.

``Bot`` holds what the gateway holds (the store, the HTTP client, the
connectors) without serving HTTP. ``bot.conversation(session_id)`` takes the
session's lock exactly as an event does (``store.checkout``), so it never
interleaves with live events on any process sharing the store, and saves the
state when the block ends normally. Bottender's ``getClient`` gives no such
guarantee; aiogram and python-telegram-bot leave it to the bot author.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bottender.connectors.base import Connector, Context
from bottender.sessions.session import Session

if TYPE_CHECKING:
    from bottender.server.app import Gateway


class Bot:
    """The bot's store and platform clients, usable from any coroutine.

    ``async with Bot.from_config() as bot`` opens the store and the HTTP client
    and closes them on exit. A ``Bot`` taken from a running gateway
    (``request.app.state.bot`` in a route of the config's ``routes``) shares
    the gateway's, which the gateway's lifespan opens and closes.
    """

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **gateway_options: Any) -> Bot:
        """A bot from ``bottender_config.py`` of the working directory, or ``path``.

        The config's ``app`` is not needed (a script may send without one).
        """
        from bottender.server.app import Gateway
        from bottender.server.config import load_config

        return cls(Gateway(load_config(path, need_app=False), **gateway_options))

    async def __aenter__(self) -> Bot:
        await self._gateway.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._gateway.stop()

    @property
    def store(self) -> Any:
        """The session store (``SessionStore``)."""
        return self._gateway.store

    def client(self, channel: str) -> Any:
        """The API client of a channel (``"line"``, ``"telegram"``): sends needing no session."""
        client = getattr(self._connector(channel), "client", None)
        if client is None:
            raise RuntimeError(
                f"the {channel} client is not open: use `async with Bot.from_config() as bot`"
            )
        return client

    @asynccontextmanager
    async def conversation(self, session_id: str) -> AsyncIterator[Context]:
        """A context on ``session_id`` (``"line:U…"``, ``"telegram:42"``), locked like an event.

        Sends are pushes (LINE: push, there is no reply token; Telegram:
        ``sendMessage`` to the chat). On a normal exit LINE's buffered messages
        are sent and the state is saved, in that order, as after an event; when
        the block raises, nothing buffered is sent and the state is left as it
        was. An expired session starts from ``initial_state``, as an event's would.
        """
        gateway = self._gateway
        if not gateway.started:
            raise RuntimeError("the bot is not open: use `async with Bot.from_config() as bot`")
        connector = self._connector(session_id.partition(":")[0])
        config = gateway.config
        async with gateway.store.checkout(session_id) as checkout:
            stored = checkout.session
            if stored is None or stored.is_expired(gateway.clock(), config.expires_in):
                session = Session.new(session_id, config.initial_state)
            else:
                session = stored
            context = connector.conversation_context(session)
            try:
                yield context
                await context.flush()
                session.last_activity = gateway.clock()
                checkout.save(session)
            finally:
                context.mark_ended()

    def _connector(self, channel: str) -> Connector:
        for connector in self._gateway.connectors:
            if getattr(connector, "channel", connector.platform) == channel:
                return connector
        enabled = [c.platform for c in self._gateway.connectors]
        raise LookupError(f"no enabled channel {channel!r} (enabled: {enabled})")
