"""OpenTelemetry spans, only when the user installed and configured OpenTelemetry.

The gateway never configures a tracer provider or an exporter itself: that is the
operator's choice (``opentelemetry-instrument``, or their own start-up code). When the
``opentelemetry-api`` package is missing, or present with no provider set, :data:`tracer`
is ``None`` and every call site skips its span at the cost of one ``is None`` test.

Spans carry the channel, the outcome and a hash of the session id, never the id itself
nor any message text: a trace backend is not a place for users' identities.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

#: The instrumentation scope's name, as trace backends show it.
SCOPE = "bottender"


def _attributes(given: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None``s; a plain name (``channel``) becomes ``bottender.channel``."""
    return {
        (key if "." in key else f"bottender.{key}"): value
        for key, value in given.items()
        if value is not None
    }


def _configured_tracer() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    # Without a provider set, the API hands out a proxy whose spans are dropped.
    if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return None
    return trace.get_tracer(SCOPE)


def tracer() -> Any:
    """The tracer to use now, or ``None``; looked up per gateway start, not per event."""
    return _configured_tracer()


def session_hash(session_id: str | None) -> str | None:
    """A short stable digest of a session id: joins spans of one conversation, reveals nothing."""
    if session_id is None:
        return None
    return hashlib.blake2b(session_id.encode(), digest_size=8).hexdigest()


@contextlib.contextmanager
def span(tracer: Any, name: str, **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` under the current one, or nothing when ``tracer`` is ``None``."""
    if tracer is None:
        yield None
        return
    clean = _attributes(attributes)
    with tracer.start_as_current_span(name, attributes=clean) as current:
        yield current


def begin(tracer: Any, name: str, **attributes: Any) -> Any:
    """Start a span and make it current, for a call site that cannot nest a ``with``.

    Returns a handle for :func:`finish` (``None`` when there is no tracer). Spans begun
    here are the parents of spans begun while they are current, including those of tasks
    created meanwhile (asyncio copies the context into them).
    """
    if tracer is None:
        return None
    from opentelemetry import context, trace

    clean = _attributes(attributes)
    current = tracer.start_span(name, attributes=clean)
    token = context.attach(trace.set_span_in_context(current))
    return current, token


def finish(handle: Any, **attributes: Any) -> None:
    """End a span :func:`begin` started, with its last attributes (its outcome)."""
    if handle is None:
        return
    from opentelemetry import context

    current, token = handle
    current.set_attributes(_attributes(attributes))
    current.end()
    context.detach(token)


def child(tracer: Any, name: str, **attributes: Any) -> Any:
    """Start a span under the current one without making it current; end it yourself."""
    if tracer is None:
        return None
    clean = _attributes(attributes)
    return tracer.start_span(name, attributes=clean)


def end(span: Any, error: BaseException | None = None) -> None:
    """End a :func:`child` span (``None`` is let be), marked as failed when ``error`` is given."""
    if span is None or not span.is_recording():
        return
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        # The exception's type only: its message may quote a session id or a store's URL.
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()
