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
    clean = {key: value for key, value in attributes.items() if value is not None}
    with tracer.start_as_current_span(name, attributes=clean) as current:
        yield current
