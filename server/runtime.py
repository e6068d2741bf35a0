"""The path every event takes: lock, load, run the bot, flush, save.

The runtime knows neither platforms nor stores: it asks the connector for the
session key and the context, and the store for a locked checkout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bottender.connectors.base import Connector, Context, Event
from bottender.server.config import App
from bottender.sessions.base import SessionStore
from bottender.sessions.session import Session

logger = logging.getLogger("bottender.runtime")


class Runtime:
    def __init__(
        self,
        app: App,
        store: SessionStore,
        *,
        initial_state: Mapping[str, Any],
        expires_in: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        #: Seconds a handled delivery id is kept however many newer events follow
        #: (set by the dispatcher from the inbox's lease; see Session.record_handled).
        self.handled_keep_for = 0.0
        self.app = app
        self.store = store
        self.initial_state = initial_state
        self.expires_in = expires_in
        self.clock = clock

    async def handle_events(self, connector: Connector, events: Iterable[Event]) -> None:
        """Run the events of one webhook body.

        Events of one session run in the order given; different sessions run
        concurrently. Raises :class:`StoreError` (after every event has had its
        turn) when the store failed for any of them, so the platform redelivers;
        redelivery then skips the events that did run.
        """
        by_key: dict[str | None, list[Event]] = {}
        sessionless: list[list[Event]] = []
        for event in events:
            key = connector.session_key(event)
            if key is None:
                sessionless.append([event])
            else:
                by_key.setdefault(key, []).append(event)
        groups = [*sessionless, *by_key.values()]
        if len(groups) == 1:
            for event in groups[0]:
                await self.handle(connector, event)
            return
        results = await asyncio.gather(
            *(self._handle_in_order(connector, group) for group in groups),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _handle_in_order(self, connector: Connector, events: list[Event]) -> None:
        for event in events:
            await self.handle(connector, event)

    async def handle(self, connector: Connector, event: Event) -> Context | None:
        """Run one event; returns its context, or ``None`` for a redelivery skipped."""
        key = connector.session_key(event)
        if key is None:
            return await self._handle_sessionless(connector, event)
        delivery_id = connector.delivery_id(event)
        async with self.store.checkout(key) as checkout:
            stored = checkout.session
            # Checked under the session's lock: a redelivery of an event still in
            # progress waits for it, then finds it recorded in the session.
            if delivery_id is not None and stored is not None and stored.has_handled(delivery_id):
                logger.info("skipping redelivered %s event %s", connector.platform, delivery_id)
                return None
            now = self.clock()
            if stored is None or stored.is_expired(now, self.expires_in):
                session = Session.new(key, self.initial_state)
            else:
                session = stored
            connector.fill_session(session, event)
            context = connector.create_context(event, session)
            context.channel = connector.channel
            if await self._run_bot(context, connector.platform, key):
                session.last_activity = self.clock()
                if delivery_id is not None:
                    session.record_handled(
                        delivery_id, session.last_activity, self.handled_keep_for
                    )
                checkout.save(session)
        context.mark_ended()
        return context

    async def _handle_sessionless(self, connector: Connector, event: Event) -> Context | None:
        """Events naming no conversation run once thanks to a claim in the store.

        There is no session to record them in, so this is best effort: a claim
        the store recorded but could not confirm (an outage mid-call) keeps the
        platform's redelivery from running.
        """
        delivery_id = connector.delivery_id(event)
        if delivery_id is not None and not await self.store.claim_event(delivery_id):
            logger.info("skipping redelivered %s event %s", connector.platform, delivery_id)
            return None
        context = connector.create_context(event, None)
        context.channel = connector.channel
        await self._run_bot(context, connector.platform, None)
        return context

    async def _run_bot(self, context: Context, platform: str, key: str | None) -> bool:
        """Run the bot and send what it buffered; ``False`` when it raised.

        A bot's exception is logged and swallowed: the platform still gets its
        200 (it would otherwise redeliver the same failing event forever) and
        the session is left as it was before the event.
        """
        started = time.perf_counter()
        try:
            await self.app(context)
            await context.flush()
        except Exception:
            logger.exception(
                "bot raised while handling a %s event (session %s); session left unchanged",
                platform,
                key or "-",
            )
            return False
        logger.debug(
            "handled %s event session=%s in %.1f ms",
            platform,
            key or "-",
            (time.perf_counter() - started) * 1000,
        )
        return True
