"""The Starlette application: one webhook route per enabled channel, plus /healthz.

This module turns HTTP into calls on the runtime and runtime outcomes into
status codes. It decides when the platform gets its answer: when the events'
sessions are written, or at the channel's deadline, whichever comes first;
past the deadline the work goes on in the background and shutdown waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bottender.connectors.base import BadRequest, Connector, Event
from bottender.server import tracing
from bottender.server.channels import build_connectors
from bottender.server.config import Config, load_config
from bottender.server.dispatch import ACK_DEADLINE, Dispatcher, Overloaded
from bottender.server.exposure import metrics_route
from bottender.server.logs import access_logger, log_fields, session_ids, since_ms
from bottender.server.observe import instrument
from bottender.server.polling import Poller, pollers
from bottender.server.runtime import Runtime
from bottender.server.stores import build_store
from bottender.server.webhooks import admin
from bottender.sessions.base import SessionStore, StoreError

logger = logging.getLogger("bottender.server")

#: How long shutdown waits for events still running after their answer went out.
SHUTDOWN_GRACE_SECONDS = 25.0
OK_BODY = b'{"ok":true}'
NOT_STARTED = (
    "webhook refused: the gateway's store and HTTP client are not open. Mounted in another"
    " ASGI app, run the gateway's lifespan from the outer app's:"
    " `async with bot_app.router.lifespan_context(bot_app): yield` (see README)"
)


class BodyTooLarge(Exception):
    pass


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing early (without reading it all) once it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _channel_field(connector: Connector) -> dict[str, str]:
    """The channel's name in a log line, when it is not simply the platform's."""
    return {} if connector.channel == connector.platform else {"channel": connector.channel}


def _sessions(connector: Connector, fields: dict[str, Any]) -> list[str] | None:
    """The session ids of a webhook's events, worked out only for a line being logged.

    Never raises: the access line must be written even when ``session_key`` fails.
    """
    events = fields.get("parsed")
    if events is None:
        return None
    try:
        return session_ids(connector.session_key(event) for event in events)
    except Exception as exc:
        # The failure's traceback is logged where it was answered: one line here, no second.
        logger.warning("%s: no session ids for the access line: %r", connector.platform, exc)
        return None


def _internal_error(platform: str, fields: dict[str, Any]) -> Response:
    """Any unexpected exception: logged with its traceback, answered in the JSON error form."""
    logger.exception("%s webhook failed unexpectedly", platform)
    fields["error"] = "internal error"
    return _error(500, "internal error")


class Gateway:
    """Holds what lives as long as the process: store, HTTP client, background work."""

    def __init__(
        self,
        config: Config,
        *,
        store: SessionStore | None = None,
        connectors: list[Connector] | None = None,
        clock: Callable[[], float] = time.time,
        http: Any = None,
        polling: bool = False,
        ingest_only: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        #: An HTTP client handed in (BotTester's recording platform) is the caller's to close.
        self._given_http = http
        self.started = False
        self.store = store if store is not None else build_store(config, clock=clock)
        if connectors is None:
            connectors = build_connectors(config, polling_only=polling)
        self.connectors = connectors
        #: Long polling instead of webhooks (``--polling``): see server/polling.py.
        self.polling = polling
        self.pollers: list[Poller] = []
        self.runtime = Runtime(
            config.app,
            self.store,
            initial_state=config.initial_state,
            expires_in=config.expires_in,
            clock=clock,
            error_handler=config.error_handler,
            middleware=config.middleware,
        )
        self.http: aiohttp.ClientSession | None = None
        # Inbox entries name their channel; recovery finds its connector by that name.
        self.dispatcher = Dispatcher(
            self.runtime,
            self.store,
            {c.channel: c for c in self.connectors},
            max_pending=config.inbox_max_pending,
            run_entries=not ingest_only,
        )
        instrument(self)  # sets self.metrics, self.tracer (server/observe.py)
        #: Webhooks being answered now, held under ``limits.max_requests_in_flight``.
        self.in_flight = 0

    @property
    def background(self) -> set[asyncio.Task[None]]:
        """Events still running after their answer went out; shutdown waits for them."""
        return self.dispatcher.background

    async def start(self) -> None:
        await self.store.open()
        if self._given_http is not None:
            self.http = self._given_http
        else:
            # One pooled client per process, with at most max_api_connections sockets: a burst
            # of events queues for them instead of opening thousands at once.
            limit = self.config.limits.max_api_connections
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        for connector in self.connectors:
            await connector.start(self.http)
            connector.serving()
        await self.dispatcher.start(
            immediate_channels=[
                name for name, c in self.config.channels.items() if c.get("ack") == "immediate"
            ]
        )
        if self.polling:
            self.pollers = pollers(self.connectors, self.runtime, self.store, self._unregister)
            for poller in self.pollers:
                poller.start()
        self.started = True

    def _unregister(self, connector: Connector) -> Callable[[], Awaitable[list[str]]]:
        """What a poller calls once it holds its lease: stop the channel's webhook delivery."""

        async def unregister() -> list[str]:
            assert self.http is not None
            return await admin(self.config, connector.channel, self.http).unregister_for_polling()

        return unregister

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        if self.pollers:
            # Polling stops first; the updates being run finish and are written.
            stopping = [asyncio.ensure_future(poller.stop()) for poller in self.pollers]
            _, pending = await asyncio.wait(stopping, timeout=grace)
            for task in pending:
                logger.error("abandoning a poller still running after %.0f s", grace)
                task.cancel()
        await self.dispatcher.stop(grace)
        self.started = False
        if self.http is not None and self._given_http is None:
            await self.http.close()
        self.http = None
        await self.store.close()
        self.metrics.close()

    def endpoint(self, connector: Connector) -> Callable[[Request], Any]:
        channel = self.config.channels.get(connector.channel, {})
        # When the platform gets its answer: the channel's deadline and ack (server/dispatch.py).
        when = (
            channel.get("deadline", connector.default_deadline),
            channel.get("ack", ACK_DEADLINE),
        )
        platform = connector.platform

        async def webhook(request: Request) -> Response:
            # One access line per webhook (server/logs.py), whatever the outcome; refusals
            # are logged at WARNING with their reason, so they stand out without a second line.
            started = time.perf_counter()
            fields: dict[str, Any] = {}
            status: int | str = "cancelled"
            span = tracing.begin(self.tracer, "bottender.webhook", channel=connector.channel)
            try:
                response = await self._admit(request, connector, when, fields, started)
                status = response.status_code
                return response
            finally:
                self.metrics.webhook(connector.channel, status)
                tracing.finish(span, status=status)
                refused = isinstance(status, int) and status >= 400
                level = logging.WARNING if refused else logging.INFO
                # Building the line costs: skip it when the access logger would drop it.
                if access_logger.isEnabledFor(level):
                    client = request.client.host if request.client else None
                    log_fields(
                        access_logger,
                        level,
                        "webhook",
                        {
                            "platform": platform,
                            **_channel_field(connector),
                            "status": status,
                            "events": fields.get("events", 0),
                            "sessions": _sessions(connector, fields),
                            "answered": fields.get("answered"),
                            "latency_ms": since_ms(started),
                            "client": client,
                            **({"error": fields["error"]} if "error" in fields else {}),
                        },
                    )

        return webhook

    async def _admit(
        self,
        request: Request,
        connector: Connector,
        when: tuple[float, str],
        fields: dict[str, Any],
        started: float,
    ) -> Response:
        """The answer, never a bare exception: anything unexpected is a JSON 500."""
        try:
            return await self._answer(request, connector, when, fields, started)
        except Exception:
            return _internal_error(connector.platform, fields)

    async def _answer(
        self,
        request: Request,
        connector: Connector,
        when: tuple[float, str],
        fields: dict[str, Any],
        started: float,
    ) -> Response:
        if not self.started:
            # Mounted in another app whose lifespan does not run ours: say so, never 500.
            logger.error(NOT_STARTED)
            fields["error"] = "gateway not started"
            return _error(503, "gateway not started (its lifespan has not run)")
        limit = self.config.max_body_size
        try:
            body = await read_body(request, limit)
        except BodyTooLarge:
            fields["error"] = "body too large"
            return _error(413, f"body larger than {limit} bytes")
        except ClientDisconnect:
            fields["error"] = "client disconnected"
            return _error(400, "client disconnected")
        reason = connector.verify(request.headers, body)
        if reason is not None:
            fields["error"] = reason
            return _error(401, reason)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            fields["error"] = "malformed JSON"
            return _error(400, "body is not valid JSON")
        if not isinstance(payload, dict):
            fields["error"] = "not a JSON object"
            return _error(400, "body must be a JSON object")
        try:
            events = connector.parse(payload)
        except BadRequest as exc:
            fields["error"] = str(exc)
            return _error(exc.status, str(exc))
        if not events:
            return Response(OK_BODY, media_type="application/json")
        most = self.config.limits.max_events_per_body
        if len(events) > most:
            fields["error"] = "too many events"
            return _error(400, f"more than {most} events in one body")
        fields["events"] = len(events)
        fields["parsed"] = events
        # Counted once authenticated and parsed: no unauthenticated client can take a slot.
        limit = self.config.limits.max_requests_in_flight
        if self.in_flight >= limit:
            fields["error"] = "too many requests in flight"
            response = _error(503, f"more than {limit} requests in flight; retry later")
            response.headers["Retry-After"] = "1"
            return response
        self.in_flight += 1
        try:
            return await self._run(connector, events, body, when, fields, started)
        finally:
            self.in_flight -= 1

    async def _run(
        self,
        connector: Connector,
        events: list[Event],
        body: bytes,
        when: tuple[float, str],
        fields: dict[str, Any],
        started: float,
    ) -> Response:
        """Run the events; the answer when their sessions are written, at the deadline
        or at once (``ack``), past the deadline only once the durable inbox has them."""
        platform = connector.platform
        deadline, ack = when
        try:
            fields["answered"] = await self.dispatcher.accept(
                connector.channel,
                connector,
                events,
                body,
                deadline=deadline,
                ack=ack,
                on_background=lambda task: self._keep_in_background(
                    task, connector, fields, started
                ),
            )
            if fields["answered"] == "deadline":
                self.metrics.past_deadline(connector.channel)
        except Overloaded as error:
            logger.warning("%s webhook refused: %s", platform, error)
            fields["error"] = "inbox full"
            return _error(503, "too many events pending; retry later")
        except StoreError as error:
            logger.error("%s webhook: session store failed: %s", platform, error)
            fields["error"] = "session store unavailable"
            return _error(503, "session store unavailable")
        return Response(OK_BODY, media_type="application/json")

    def _keep_in_background(
        self,
        task: asyncio.Task[None],
        connector: Connector,
        fields: dict[str, Any],
        started: float,
    ) -> None:
        """Log a line when an event answered before it finished ends."""

        self.metrics.background(1)

        def done(finished: asyncio.Task[None]) -> None:
            self.metrics.background(-1)
            error = None if finished.cancelled() else finished.exception()
            if error is not None:
                logger.error("event finished after its answer failed: %s", error)
            outcome = "cancelled" if finished.cancelled() else "failed" if error else "ok"
            log_fields(
                access_logger,
                logging.INFO,
                "background_done",
                {
                    "platform": connector.platform,
                    "events": fields.get("events", 0),
                    "sessions": _sessions(connector, fields),
                    "outcome": outcome,
                    "latency_ms": since_ms(started),
                },
            )

        task.add_done_callback(done)


async def refused_route(request: Request, exc: Exception) -> Response:
    """404 and 405 in the webhooks' own form: a JSON reason and one access line.

    The path is left out of the line: some deployments put a secret in their
    webhook path.
    """
    assert isinstance(exc, HTTPException)
    reason = "method not allowed" if exc.status_code == 405 else "no such route"
    client = request.client.host if request.client else None
    log_fields(
        access_logger,
        logging.WARNING,
        "http",
        {"method": request.method, "status": exc.status_code, "error": reason, "client": client},
    )
    response = _error(exc.status_code, reason)
    response.headers.update(exc.headers or {})
    return response


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_app(
    config: Config | str | os.PathLike[str] | None = None, **gateway_options: Any
) -> Starlette:
    """The gateway as a Starlette app: webhooks, /healthz and the config's own ``routes``.

    ``config`` is a loaded :class:`Config` or the path of a ``bottender_config.py``
    (default: the working directory's). The app's lifespan opens and closes the
    store and the HTTP client; mounted under a prefix in another app, whose
    lifespan Starlette and FastAPI do not chain, enter it from the outer app's
    lifespan: ``async with bot_app.router.lifespan_context(bot_app): yield``.
    ``app.state.bot`` is a :class:`~bottender.server.bot.Bot` on the same store
    and clients, for routes that call ``bot.conversation(...)``.
    """
    from bottender.server.bot import Bot

    if not isinstance(config, Config):
        config = load_config(config)
    gateway = Gateway(config, **gateway_options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if config.metrics is not None:
        routes.append(metrics_route(config.metrics, gateway.metrics))
    if not gateway.polling:
        routes += [
            Route(c.path, gateway.endpoint(c), methods=["POST"], name=c.channel)
            for c in gateway.connectors
        ]
    routes += config.routes
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: refused_route}
    )
    app.state.gateway = gateway
    app.state.bot = Bot(gateway)
    app.state.inbox_stats = gateway.dispatcher.stats
    return app
