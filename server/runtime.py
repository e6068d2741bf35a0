"""The path every event takes: lock, load, run the bot, flush, save.

The runtime knows neither platforms nor stores: it asks the connector for the
session key and the context, and the store for a locked checkout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any

from bottender.connectors.api import PlatformApiError
from bottender.connectors.base import Connector, Context, Event, json_copy
from bottender.connectors.router import follow
from bottender.server import tracing
from bottender.server.config import App, ErrorHandler, Middleware
from bottender.server.metrics import NO_METRICS, NoMetrics
from bottender.sessions.base import Checkout, SessionStore, StoreError
from bottender.sessions.session import Session

logger = logging.getLogger("bottender.runtime")
#: How the event running in this task ended, when the bot's failure must be told apart.
_outcome: ContextVar[str] = ContextVar("bottender_outcome", default="handled")


def fill_missing_keys(session: Session, initial_state: Mapping[str, Any]) -> None:
    """Give a stored session the top-level ``initial_state`` keys it lacks (a deep copy each).

    A key added to ``initial_state`` after conversations began then reads as its
    initial value instead of raising ``KeyError`` in the bot. Keys the session has
    are left alone, nested values are not merged. (Bottender does not do this.)
    """
    missing = {k: v for k, v in initial_state.items() if k not in session.state}
    if missing:
        session.state = {**session.state, **json_copy(missing, "initial_state")}


class Runtime:
    #: Set by the gateway (server/observe.py) when metrics or traces are on.
    metrics: NoMetrics = NO_METRICS
    tracer: Any = None
    driver: str = "memory"

    def __init__(
        self,
        app: App,
        store: SessionStore,
        *,
        initial_state: Mapping[str, Any],
        expires_in: float | None = None,
        clock: Callable[[], float] = time.time,
        error_handler: ErrorHandler | None = None,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        #: Seconds a handled delivery id is kept however many newer events follow
        #: (set by the dispatcher from the inbox's lease; see Session.record_handled).
        self.handled_keep_for = 0.0
        self.app = app
        self.error_handler = error_handler
        self.middleware = tuple(middleware)
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
        if not self.metrics.enabled and self.tracer is None:
            return await self._handle(connector, event)
        return await self._observed(connector, event)

    async def _observed(self, connector: Connector, event: Event) -> Context | None:
        """:meth:`_handle` counted (outcome, duration) and traced (a span per event)."""
        channel = connector.channel
        key = connector.session_key(event)
        span = None
        if self.tracer is not None:  # the hash costs a digest: only for a span
            span = tracing.begin(
                self.tracer,
                "bottender.event",
                channel=channel,
                session_hash=tracing.session_hash(key),
            )
        token = _outcome.set("handled" if key is not None else "sessionless")
        started = time.perf_counter()
        outcome = "failed"
        try:
            context = await self._handle(connector, event)
            outcome = "redelivery_skipped" if context is None else _outcome.get()
            return context
        except StoreError:
            outcome = "store_error"
            raise
        finally:
            self.metrics.event(channel, outcome, time.perf_counter() - started)
            tracing.finish(span, outcome=outcome)
            _outcome.reset(token)

    def _checkout(self, key: str) -> AbstractAsyncContextManager[Checkout]:
        if not self.metrics.enabled and self.tracer is None:
            return self.store.checkout(key)
        return _ObservedCheckout(self, key)

    async def _claim(self, delivery_id: str) -> bool:
        if not self.metrics.enabled and self.tracer is None:
            return await self.store.claim_event(delivery_id)
        step = tracing.child(self.tracer, "bottender.store.claim", **self._store_attrs())
        try:
            claimed = await self.store.claim_event(delivery_id)
        except StoreError as exc:
            self.metrics.store_error(self.driver, "claim")
            tracing.end(step, error=exc)
            raise
        except BaseException as exc:
            tracing.end(step, error=exc)
            raise
        tracing.end(step)
        return claimed

    def _store_attrs(self) -> dict[str, Any]:
        return {"driver": self.driver}

    async def _handle(self, connector: Connector, event: Event) -> Context | None:
        key = connector.session_key(event)
        if key is None:
            return await self._handle_sessionless(connector, event)
        delivery_id = connector.delivery_id(event)
        async with self._checkout(key) as checkout:
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
                fill_missing_keys(session, self.initial_state)
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
        if delivery_id is not None and not await self._claim(delivery_id):
            logger.info("skipping redelivered %s event %s", connector.platform, delivery_id)
            return None
        context = connector.create_context(event, None)
        context.channel = connector.channel
        await self._run_bot(context, connector.platform, None)
        return context

    async def _run_bot(self, context: Context, platform: str, key: str | None) -> bool:
        """Run the bot and send what it buffered; ``False`` when it raised.

        A bot's exception is logged and handed to the ``error_handler`` (whose
        sends are sent; what the failing actions had buffered is dropped). The
        platform still gets its 200 (it would otherwise redeliver the same
        failing event forever) and the session is left as it was before the event.
        """
        started = time.perf_counter()
        try:
            if self.middleware:
                await self._run_through_middleware(context)
            else:
                result = await self.app(context)
                if callable(result):  # an action returning the next action
                    await follow(result, context)
        except Exception as error:
            _outcome.set("bot_error")
            logger.exception(
                "bot raised while handling a %s event (session %s); session left unchanged",
                platform,
                key or "-",
            )
            await self._handle_error(context, error, platform, key)
            return False
        try:
            await context.flush()
        except Exception as error:
            _outcome.set("bot_error")
            self._log_flush_error(error, platform, key)
            await self._handle_error(context, error, platform, key)
            return False
        logger.debug(
            "handled %s event session=%s in %.1f ms",
            platform,
            key or "-",
            (time.perf_counter() - started) * 1000,
        )
        return True

    async def _run_through_middleware(self, context: Context) -> None:
        """``middleware[0](context, call_next)`` outermost; the innermost runs the app."""

        async def innermost() -> None:
            result = await self.app(context)
            if callable(result):
                await follow(result, context)

        call_next: Callable[[], Awaitable[None]] = innermost
        for middleware in reversed(self.middleware):
            call_next = _wrap(middleware, context, call_next)
        await call_next()

    async def _handle_error(
        self, context: Context, error: Exception, platform: str, key: str | None
    ) -> None:
        """Run the ``error_handler`` on the event's own context; send what it sends."""
        context.discard_pending()
        if self.error_handler is None:
            return
        try:
            await self.error_handler(context, error)
        except Exception:
            logger.exception(
                "error_handler raised while handling a %s event (session %s)", platform, key or "-"
            )
            context.discard_pending()
            return
        try:
            await context.flush()
        except Exception as flush_error:
            self._log_flush_error(flush_error, platform, key, what="error_handler's")

    @staticmethod
    def _log_flush_error(
        error: Exception, platform: str, key: str | None, what: str = "bot's"
    ) -> None:
        """A platform refusing the buffered messages is the platform's word, not a bot crash."""
        if isinstance(error, PlatformApiError):
            logger.error(
                "sending the %s buffered %s messages failed (session %s): %s;"
                " session left unchanged",
                what,
                platform,
                key or "-",
                error,
            )
        else:
            logger.exception(
                "sending the %s buffered %s messages failed (session %s); session left unchanged",
                what,
                platform,
                key or "-",
            )


def _wrap(
    middleware: Middleware, context: Context, inner: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    async def call_next() -> None:
        await middleware(context, inner)

    return call_next


class _ObservedCheckout:
    """The store's checkout with its lock wait and failures counted, each step a span.

    A plain class rather than an ``asynccontextmanager``: it wraps every event's
    checkout while metrics are on, and a generator-based wrapper cost several times
    more per event; the span calls are skipped outright when there is no tracer.
    """

    __slots__ = ("_inner", "_op", "_runtime", "_step")

    def __init__(self, runtime: Runtime, key: str) -> None:
        self._runtime = runtime
        self._inner = runtime.store.checkout(key)
        self._op = "lock_load"
        self._step: Any = None

    def _begin(self, name: str) -> None:
        runtime = self._runtime
        if runtime.tracer is not None:
            self._step = tracing.child(runtime.tracer, name, driver=runtime.driver)

    def _failed(self, error: BaseException) -> None:
        """A store failure is counted under the step it happened in; any failure ends the span."""
        if isinstance(error, StoreError):
            self._runtime.metrics.store_error(self._runtime.driver, self._op)
        tracing.end(self._step, error=error)

    async def __aenter__(self) -> Checkout:
        started = time.perf_counter()
        self._begin("bottender.store.lock_load")
        try:
            checkout = await self._inner.__aenter__()
        except BaseException as error:  # cancelled too: the open step still ends, failed
            self._failed(error)
            raise
        runtime = self._runtime
        runtime.metrics.lock_wait(runtime.driver, time.perf_counter() - started)
        tracing.end(self._step)
        self._op = "bot"
        return checkout

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        self._op = "save_unlock"
        self._begin("bottender.store.save_unlock")
        try:
            suppressed = await self._inner.__aexit__(kind, error, traceback)
        except BaseException as failure:
            self._failed(failure)
            raise
        if error is not None and not suppressed:  # the block's own failure goes on
            self._failed(error)
        else:
            tracing.end(self._step)
        return bool(suppressed)
