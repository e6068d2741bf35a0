"""OpenTelemetry spans: a tree per webhook, carrying no user's identity or words."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from bottender.server import tracing
from tests.fixtures.waiting import wait_for
from tests.server.test_metrics import post
from tests.server.updates import message

CHAT_ID = 987654321
WORDS = "my secret words"
SESSION = f"telegram:{CHAT_ID}"


@pytest.fixture
def spans(monkeypatch) -> Iterator[InMemorySpanExporter]:
    """A provider of the test's own, as an operator's start-up code would configure one."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer(tracing.SCOPE))
    yield exporter
    provider.shutdown()


def update(update_id: int, text: str) -> dict[str, Any]:
    chat = {"id": CHAT_ID, "type": "private", "first_name": "Eve"}
    sender = {"id": CHAT_ID, "is_bot": False, "first_name": "Eve"}
    return {"update_id": update_id, "message": message(text, chat=chat, sender=sender)}


def tree(spans: list[ReadableSpan], root: ReadableSpan) -> list[Any]:
    """``[name, [children...]]`` in start order, for comparing shapes."""
    children = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    return [root.name, [tree(spans, child) for child in children]]


def webhook_trees(exporter: InMemorySpanExporter) -> list[tuple[ReadableSpan, list[Any]]]:
    spans = list(exporter.get_finished_spans())
    roots = [s for s in spans if s.parent is None]
    return [(root, tree(spans, root)) for root in sorted(roots, key=lambda s: s.start_time or 0)]


def event_span(exporter: InMemorySpanExporter, index: int) -> ReadableSpan:
    events = [s for s in exporter.get_finished_spans() if s.name == "bottender.event"]
    return sorted(events, key=lambda s: s.start_time or 0)[index]


def test_each_webhook_is_a_span_tree_of_event_store_and_platform_calls(
    spans, make_gateway, fake_platform, tmp_path
) -> None:
    live = make_gateway(
        app="tests.server.observability_bots:outcomes",
        session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "s")}}},
        channels={
            "telegram": {"enabled": True, "access_token": "1:T", "origin": fake_platform.origin}
        },
    )
    assert post(live.url, update(1, WORDS), secret="") == 200
    assert post(live.url, update(2, "boom"), secret="") == 200
    assert post(live.url, update(1, WORDS), secret="") == 200  # redelivered
    wait_for(lambda: len(webhook_trees(spans)) == 3, "three webhook spans")

    store = [["bottender.store.lock_load", []], ["bottender.store.save_unlock", []]]
    handled, failed, skipped = webhook_trees(spans)
    assert handled[1] == [
        "bottender.webhook",
        [["bottender.event", [store[0], ["bottender.platform", []], store[1]]]],
    ]
    assert failed[1] == ["bottender.webhook", [["bottender.event", store]]]
    assert skipped[1] == ["bottender.webhook", [["bottender.event", store]]]

    webhook = handled[0].attributes
    assert (webhook["bottender.channel"], webhook["bottender.status"]) == ("telegram", 200)
    outcomes = [event_span(spans, i).attributes["bottender.outcome"] for i in range(3)]
    assert outcomes == ["handled", "bot_error", "redelivery_skipped"]
    first = event_span(spans, 0).attributes
    assert first["bottender.session_hash"] == tracing.session_hash(SESSION)
    assert first["bottender.channel"] == "telegram"
    [call] = [s for s in spans.get_finished_spans() if s.name == "bottender.platform"]
    assert call.attributes["bottender.method"] == "sendMessage"
    assert call.attributes["bottender.status"] == 200
    assert {
        s.attributes["bottender.driver"]
        for s in spans.get_finished_spans()
        if s.name.startswith("bottender.store")
    } == {"file"}

    everything = repr([dict(s.attributes or {}) for s in spans.get_finished_spans()])
    assert str(CHAT_ID) not in everything and WORDS not in everything


def test_a_store_outage_marks_its_step_failed(spans, make_gateway, fake_platform, tmp_path) -> None:
    live = make_gateway(
        app="tests.server.observability_bots:outcomes",
        session={"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "s")}}},
        channels={
            "telegram": {"enabled": True, "access_token": "1:T", "origin": fake_platform.origin}
        },
    )
    shutil.rmtree(tmp_path / "s")
    assert post(live.url, update(1, "hi"), secret="") == 503
    wait_for(lambda: len(webhook_trees(spans)) == 1, "the webhook span")
    [(root, shape)] = webhook_trees(spans)
    assert shape == [
        "bottender.webhook",
        [["bottender.event", [["bottender.store.lock_load", []]]]],
    ]
    assert root.attributes["bottender.status"] == 503
    assert event_span(spans, 0).attributes["bottender.outcome"] == "store_error"
    [step] = [s for s in spans.get_finished_spans() if s.name == "bottender.store.lock_load"]
    assert step.status.status_code is StatusCode.ERROR
    assert str(tmp_path) not in (step.status.description or "")


def test_no_tracer_without_a_configured_provider() -> None:
    """The API alone (or no provider set) costs nothing: no tracer, so no spans at all."""
    assert tracing.tracer() is None


def test_a_provider_set_by_the_operator_is_used() -> None:
    code = (
        "from opentelemetry import trace;"
        "from opentelemetry.sdk.trace import TracerProvider;"
        "trace.set_tracer_provider(TracerProvider());"
        "from bottender.server import tracing;"
        "print(tracing.tracer() is not None)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr
