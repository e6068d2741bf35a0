"""Wiring metrics and traces into a gateway: what is turned on, and the platform observer.

Kept apart from app.py and runtime.py so each of those carries one line per hook. With
metrics off and no OpenTelemetry provider configured, nothing here is paid per webhook:
the runtime checks two attributes and takes its plain path, connectors get no observer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from bottender.server import tracing
from bottender.server.metrics import NO_METRICS, NoMetrics

#: Set by ``bottender start --metrics-port`` for its workers: count, though no route serves.
METRICS_ENV = "BOTTENDER_METRICS"


def metrics_for(config: Any) -> NoMetrics:
    """The gateway's metrics: on when the config exposes them or ``--metrics-port`` asked."""
    if getattr(config, "metrics", None) is None and not os.environ.get(METRICS_ENV):
        return NO_METRICS
    from bottender.server.metrics import Metrics

    return Metrics()


def instrument(gateway: Any) -> None:
    """Hand the gateway's runtime and connectors their metrics, tracer and observer."""
    gateway.metrics = metrics_for(gateway.config)
    gateway.tracer = tracing.tracer()
    runtime = gateway.runtime
    runtime.metrics, runtime.tracer, runtime.driver = (
        gateway.metrics,
        gateway.tracer,
        gateway.config.driver,
    )
    for connector in gateway.connectors:
        connector.observe = platform_observer(gateway.metrics, gateway.tracer, connector.channel)


def platform_observer(
    metrics: NoMetrics, tracer: Any, channel: str
) -> Callable[[str], Callable[[int], None]] | None:
    """What the API clients call per request: a span and, at its end, a count and a latency."""
    if not metrics.enabled and tracer is None:
        return None

    def observe(method: str) -> Callable[[int], None]:
        started = time.perf_counter()
        span = None
        if tracer is not None:
            span = tracing.child(tracer, "bottender.platform", channel=channel, method=method)

        def ended(status: int) -> None:
            metrics.platform_request(channel, method, status, time.perf_counter() - started)
            if span is not None:
                span.set_attribute("bottender.status", status)
                tracing.end(span)

        return ended

    return observe
