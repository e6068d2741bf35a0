"""/metrics after known traffic: every counter holds exactly what the traffic did."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.waiting import wait_for
from tests.server.conftest import Reply
from tests.server.observability_bots import RELEASE
from tests.server.updates import text_update

SECRET = "s3cret-token"
SCRAPE_TOKEN = "scrape-me"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str, token: str | None = SCRAPE_TOKEN) -> Reply:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), dict(error.headers))


def post(url: str, body: dict[str, Any], secret: str = SECRET) -> int:
    request = urllib.request.Request(
        url + "/webhooks/telegram",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def drive_known_traffic(
    url: str, store_dir: Path, metrics_url: str, release: Callable[[], None] = RELEASE.set
) -> None:
    """2 refused, 1 handled, 1 bot error, 1 redelivery, 1 past its deadline, 1 store outage."""
    assert post(url, text_update(1, "hi"), secret="wrong") == 401
    assert post(url, text_update(1, "hi"), secret="") == 401
    assert post(url, text_update(1, "hi")) == 200
    assert post(url, text_update(2, "boom")) == 200
    assert post(url, text_update(1, "hi")) == 200  # Telegram redelivers update 1
    assert post(url, text_update(3, "wait")) == 200  # answered at its deadline
    gauge = "bottender_background_events"
    wait_for(lambda: value(samples(scrape(metrics_url).body.decode()), gauge) == 1, "background")
    release()
    wait_for(lambda: value(samples(scrape(metrics_url).body.decode()), gauge) == 0, "finished")
    shutil.rmtree(store_dir)
    assert post(url, text_update(4, "hi")) == 503


def assert_known_counts(scraped: dict) -> None:
    tg = {"channel": "telegram"}
    assert value(scraped, "bottender_webhooks_total", **tg, status="401") == 2
    assert value(scraped, "bottender_webhooks_total", **tg, status="200") == 4
    assert value(scraped, "bottender_webhooks_total", **tg, status="503") == 1
    assert value(scraped, "bottender_events_total", **tg, outcome="handled") == 2
    assert value(scraped, "bottender_events_total", **tg, outcome="bot_error") == 1
    assert value(scraped, "bottender_events_total", **tg, outcome="redelivery_skipped") == 1
    assert value(scraped, "bottender_events_total", **tg, outcome="store_error") == 1
    assert value(scraped, "bottender_past_deadline_total", **tg) == 1
    assert value(scraped, "bottender_background_events") == 0
    assert value(scraped, "bottender_store_errors_total", driver="file", op="lock_load") == 1
    sent = {**tg, "method": "sendMessage"}
    assert value(scraped, "bottender_platform_requests_total", **sent, status="200") == 2
    assert value(scraped, "bottender_platform_request_duration_seconds_count", **sent) == 2
    # Every event that ran (not the outage's) waited for its lock once.
    assert value(scraped, "bottender_lock_wait_seconds_count", driver="file") == 4
    assert value(scraped, "bottender_event_duration_seconds_count", **tg) == 5


def config_names(tmp_path: Path, fake_platform: Any, **metrics: Any) -> dict[str, Any]:
    return {
        "app": "tests.server.observability_bots:outcomes",
        "initial_state": {"count": 0},
        "session": {"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "s")}}},
        "channels": {
            "telegram": {
                "enabled": True,
                "access_token": "123:TEST",
                "secret_token": SECRET,
                "origin": fake_platform.origin,
                "deadline": 0.2,
            }
        },
        "server": {"metrics": {"token": SCRAPE_TOKEN, **metrics}},
    }


def test_a_scrape_counts_exactly_the_traffic_seen(make_gateway, fake_platform, tmp_path) -> None:
    RELEASE.clear()
    live = make_gateway(**config_names(tmp_path, fake_platform))
    drive_known_traffic(live.url, tmp_path / "s", live.url + "/metrics")
    reply = scrape(live.url + "/metrics")
    assert reply.status == 200
    assert {k.lower(): v for k, v in reply.headers.items()}["content-type"].startswith("text/plain")
    assert_known_counts(samples(reply.body.decode()))


def test_metrics_are_off_unless_configured(make_gateway, fake_platform) -> None:
    live = make_gateway(
        app="tests.bots:counter",
        channels={
            "telegram": {"enabled": True, "access_token": "T", "origin": fake_platform.origin}
        },
    )
    assert scrape(live.url + "/metrics").status in (404, 405)


def test_a_scrape_without_the_token_is_refused_with_a_reason(
    make_gateway, fake_platform, tmp_path, caplog
) -> None:
    live = make_gateway(**config_names(tmp_path, fake_platform))
    with caplog.at_level("WARNING", logger="bottender.access"):
        missing = scrape(live.url + "/metrics", token=None)
        wrong = scrape(live.url + "/metrics", token="guess")
    assert (missing.status, missing.json()) == (401, {"ok": False, "error": "missing bearer token"})
    assert (wrong.status, wrong.json()) == (401, {"ok": False, "error": "wrong bearer token"})
    lines = [r.getMessage() for r in caplog.records if "metrics" in r.getMessage()]
    assert len(lines) == 2 and all("401" in line for line in lines)


def test_a_client_outside_allow_is_refused_even_with_the_token(
    make_gateway, fake_platform, tmp_path
) -> None:
    live = make_gateway(**config_names(tmp_path, fake_platform, allow=["192.0.2.0/24"]))
    reply = scrape(live.url + "/metrics")
    assert (reply.status, reply.json()) == (
        403,
        {"ok": False, "error": "client address not allowed"},
    )


@pytest.mark.parametrize(
    ("metrics", "key"),
    [
        ({"tokn": "x"}, "server.metrics.tokn"),
        ({"path": "metrics"}, "server.metrics.path"),
        ({"allow": ["localhost"]}, "server.metrics.allow"),
        ({"allow": "127.0.0.1"}, "server.metrics.allow"),
        ({"token": ""}, "server.metrics.token"),
    ],
)
def test_a_bad_metrics_option_names_its_key(tmp_path, metrics, key) -> None:
    from bottender.server.config import ConfigError, load_config
    from tests.fixtures.gateway import write_config

    path = write_config(tmp_path, app="tests.bots:counter", server={"metrics": metrics})
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path)


def test_metrics_without_prometheus_client_is_a_config_error(tmp_path, monkeypatch) -> None:
    import importlib.util

    from bottender.server.config import ConfigError, load_config
    from tests.fixtures.gateway import write_config

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "prometheus_client" else real(name, *a),
    )
    path = write_config(tmp_path, app="tests.bots:counter", server={"metrics": {}})
    with pytest.raises(ConfigError, match=r"server\.metrics needs prometheus-client"):
        load_config(path)


def test_line_webhooks_events_and_replies_are_counted_under_line(
    make_gateway, fake_platform
) -> None:
    from tests.connectors.payloads import (
        encode,
        line_body,
        line_signature,
        text_event,
        user_source,
    )

    live = make_gateway(
        app="tests.bots:counter",
        channels={
            "line": {
                "enabled": True,
                "access_token": "LT",
                "channel_secret": "ls",
                "origin": fake_platform.origin,
            }
        },
        server={"metrics": {}},  # no token: loopback clients only
    )
    # Two users in one body: two events, two sessions, one reply call each.
    body = encode(
        line_body(text_event("hi", user_source("ann")), text_event("yo", user_source("bo")))
    )
    request = urllib.request.Request(
        live.url + "/webhooks/line",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Line-Signature": line_signature(body, "ls"),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    scraped = samples(scrape(live.url + "/metrics", token=None).body.decode())
    line = {"channel": "line"}
    assert value(scraped, "bottender_webhooks_total", **line, status="200") == 1
    assert value(scraped, "bottender_events_total", **line, outcome="handled") == 2
    reply = {**line, "method": "POST /v2/bot/message/reply"}
    assert value(scraped, "bottender_platform_requests_total", **reply, status="200") == 2
    assert value(scraped, "bottender_lock_wait_seconds_count", driver="memory") == 2


def test_a_channel_not_named_after_its_platform_is_counted_under_its_own_name(
    make_gateway, fake_platform
) -> None:
    live = make_gateway(
        app="tests.bots:counter",
        channels={
            "shop": {
                "enabled": True,
                "platform": "telegram",
                "access_token": "123:SHOP",
                "secret_token": SECRET,
                "origin": fake_platform.origin,
            }
        },
        server={"metrics": {}},  # no token: loopback clients only
    )
    request = urllib.request.Request(
        live.url + "/webhooks/shop",
        data=json.dumps(text_update(1, "hi")).encode(),
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    wait_for(lambda: len(fake_platform.texts()) == 1, "the reply")
    scraped = samples(scrape(live.url + "/metrics", token=None).body.decode())
    shop = {"channel": "shop"}
    assert value(scraped, "bottender_webhooks_total", **shop, status="200") == 1
    assert value(scraped, "bottender_events_total", **shop, outcome="handled") == 1
    sent = {**shop, "method": "sendMessage", "status": "200"}
    assert value(scraped, "bottender_platform_requests_total", **sent) == 1
    assert value(scraped, "bottender_webhooks_total", channel="telegram", status="200") == 0
