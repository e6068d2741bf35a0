"""Prometheus metrics: what an operator asks of a running gateway, at next to no cost.

Metrics are off unless the config's ``server.metrics`` or ``--metrics-port`` turns them on.
Off, the gateway holds a :class:`NoMetrics`, whose hooks do nothing, and prometheus-client
(the ``metrics`` extra) is never imported.

On, the samples of every process go to files in one directory
(prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``), so one scrape of any
uvicorn worker, or of the separate metrics port, sums every worker, and a worker that is
restarted keeps the counts of the one before it. ``serve`` sets the directory up before the
workers start; a gateway run in a test's own process without it keeps its samples in a
registry of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: The directory prometheus-client's multiprocess mode writes to and reads from.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: from a millisecond webhook to a bot that waits on a slow API.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EVENT_OUTCOMES = ("handled", "redelivery_skipped", "bot_error", "sessionless")


class NoMetrics:
    """The hooks of :class:`Metrics`, doing nothing: what a gateway has with metrics off."""

    enabled = False

    def webhook(self, channel: str, status: int | str) -> None:
        pass

    def event(self, channel: str, outcome: str, seconds: float | None = None) -> None:
        pass

    def lock_wait(self, driver: str, seconds: float) -> None:
        pass

    def store_error(self, driver: str, op: str) -> None:
        pass

    def platform_request(self, channel: str, method: str, status: int, seconds: float) -> None:
        pass

    def past_deadline(self, channel: str) -> None:
        pass

    def background(self, change: int) -> None:
        pass

    def close(self) -> None:
        pass

    def exposition(self) -> tuple[bytes, str]:
        raise RuntimeError("metrics are off")


#: The one do-nothing instance every gateway with metrics off shares.
NO_METRICS = NoMetrics()


class Metrics(NoMetrics):
    """The gateway's metrics in one object; labelled children are cached per label tuple."""

    enabled = True

    def __init__(self) -> None:
        import prometheus_client as prom

        self._prom = prom
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # Multiprocess metrics are read from the files, not from a registry.
        self.registry = None if self.multiprocess else prom.CollectorRegistry()
        if self.multiprocess:
            forget_dead_processes(os.environ[MULTIPROC_ENV])
        if self.registry is not None:
            prom.ProcessCollector(registry=self.registry)
        reg: dict[str, Any] = {"registry": self.registry}
        self._webhooks = prom.Counter(
            "bottender_webhooks", "Webhook requests answered", ["channel", "status"], **reg
        )
        self._events = prom.Counter(
            "bottender_events", "Events run, by outcome", ["channel", "outcome"], **reg
        )
        self._event_seconds = prom.Histogram(
            "bottender_event_duration_seconds",
            "Time from an event's lock request to its session written",
            ["channel"],
            buckets=DURATION_BUCKETS,
            **reg,
        )
        self._lock_wait = prom.Histogram(
            "bottender_lock_wait_seconds",
            "Time an event waited for its session's lock and stored state",
            ["driver"],
            buckets=DURATION_BUCKETS,
            **reg,
        )
        self._store_errors = prom.Counter(
            "bottender_store_errors", "Session store failures", ["driver", "op"], **reg
        )
        self._platform = prom.Counter(
            "bottender_platform_requests",
            "Platform API calls, by HTTP status (0: no answer)",
            ["channel", "method", "status"],
            **reg,
        )
        self._platform_seconds = prom.Histogram(
            "bottender_platform_request_duration_seconds",
            "Platform API call latency",
            ["channel", "method"],
            buckets=DURATION_BUCKETS,
            **reg,
        )
        self._past_deadline = prom.Counter(
            "bottender_past_deadline",
            "Webhooks answered at their deadline, the events going on in the background",
            ["channel"],
            **reg,
        )
        self._background = prom.Gauge(
            "bottender_background_events",
            "Events still running after their webhook was answered",
            multiprocess_mode="livesum",
            **reg,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*(str(label) for label in labels))
        return child

    def webhook(self, channel: str, status: int | str) -> None:
        self._child(self._webhooks, channel, status).inc()

    def event(self, channel: str, outcome: str, seconds: float | None = None) -> None:
        self._child(self._events, channel, outcome).inc()
        if seconds is not None:
            self._child(self._event_seconds, channel).observe(seconds)

    def lock_wait(self, driver: str, seconds: float) -> None:
        self._child(self._lock_wait, driver).observe(seconds)

    def store_error(self, driver: str, op: str) -> None:
        self._child(self._store_errors, driver, op).inc()

    def platform_request(self, channel: str, method: str, status: int, seconds: float) -> None:
        self._child(self._platform, channel, method, status).inc()
        self._child(self._platform_seconds, channel, method).observe(seconds)

    def past_deadline(self, channel: str) -> None:
        self._child(self._past_deadline, channel).inc()

    def background(self, change: int) -> None:
        self._background.inc(change)

    def close(self) -> None:
        """At a worker's exit: its live gauge (events in the background) stops counting."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape gets: every process's samples when they share a directory."""
        return exposition(self.registry), self._prom.CONTENT_TYPE_LATEST


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of processes that are gone (a worker that crashed and was restarted).

    Their counters stay: a scrape after a restart still counts what the dead worker did.
    """
    from prometheus_client import multiprocess

    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition(registry: Any = None) -> bytes:
    """Render ``registry``, or in multiprocess mode every worker's files plus this process."""
    import prometheus_client as prom

    return prom.generate_latest(registry if registry is not None else multiprocess_registry())


def multiprocess_registry() -> Any:
    """A registry that reads every process's samples from ``PROMETHEUS_MULTIPROC_DIR``."""
    import prometheus_client as prom
    from prometheus_client import multiprocess

    registry = prom.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    _ProcessGauges.collector(registry)
    return registry


@contextlib.contextmanager
def shared_directory(metrics_port: int | None) -> Iterator[None]:
    """For ``bottender start``: a fresh multiprocess directory for this run's processes.

    Set before uvicorn starts its workers, so every worker writes there (and a worker
    restarted after a crash finds its predecessor's counts); removed at exit, so a new
    run starts from zero. With ``metrics_port``, this (parent) process serves the sum of
    every worker on 127.0.0.1:``metrics_port``, and workers count though no route serves.
    """
    from bottender.server.config import ConfigError
    from bottender.server.observe import METRICS_ENV

    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigError(
            "--metrics-port needs prometheus-client: pip install 'bottender-py[metrics]'"
        )
    directory = tempfile.mkdtemp(prefix="bottender-metrics-")
    saved = {name: os.environ.get(name) for name in (MULTIPROC_ENV, METRICS_ENV)}
    os.environ[MULTIPROC_ENV] = directory
    server = None
    try:
        if metrics_port is not None:
            os.environ[METRICS_ENV] = "1"
            import prometheus_client as prom

            server, _ = prom.start_http_server(
                metrics_port, addr="127.0.0.1", registry=multiprocess_registry()
            )
        yield
    finally:
        if server is not None:
            server.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(directory, ignore_errors=True)


class _ProcessGauges:
    """Process metrics in multiprocess mode, where prometheus-client has none of its own.

    The resident memory, CPU seconds, open files and start time of the process that answers
    the scrape, read from /proc when it asks, with a ``pid`` label (which worker answered).
    """

    @staticmethod
    def collector(registry: Any) -> None:
        import prometheus_client as prom

        process = prom.ProcessCollector(registry=None)
        registry.register(_PidLabelled(process))


class _PidLabelled:
    """Re-labels a collector's samples with this process's pid."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def collect(self) -> Any:
        pid = str(os.getpid())
        for family in self.inner.collect():
            for sample in family.samples:
                sample.labels["pid"] = pid
            yield family


def timer() -> Callable[[], float]:
    """Seconds since the call, for hooks that are given a duration."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
