"""Property: no authenticated body, however mangled, gets a 5xx, and the gateway keeps working.

Valid LINE and Telegram bodies (as tests/connectors/payloads.py builds them) are
mutated by hypothesis: any field's value replaced by a value of another type,
deep nesting (past orjson's 254 writable levels), big strings, any unicode (lone
surrogates included), fields deleted or added, duplicate keys in the JSON text.
Each mutant is signed as the platform would sign it and sent through the real
ASGI application (routes, gateway, runtime, connectors, store) on the memory and
file drivers, with the counting bot answering through the fake platform API.

Bounded: a fixed number of examples, derandomized (the same examples every run,
so it cannot flake), no deadline per example (the machine may be loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bottender.server.app import create_app
from bottender.server.config import load_config
from tests.connectors import payloads
from tests.connectors.conftest import (
    LINE_ACCESS_TOKEN,
    LINE_SECRET,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    _serve_platform,
)
from tests.fixtures.asgi import asgi_post
from tests.fixtures.gateway import write_config
from tests.fixtures.platform_api import FakePlatform
from tests.fixtures.waiting import until

LINE_PATH = "/webhooks/line"
TELEGRAM_PATH = "/webhooks/telegram"
EXAMPLES = 80
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

LINE_BASES = [
    payloads.line_body(
        payloads.text_event("hi"),
        payloads.follow_event(payloads.group_source()),
        payloads.postback_event("action=buy", payloads.room_source()),
    ),
    payloads.line_body(payloads.sticker_event(), payloads.unsend_event("1234")),
]
TELEGRAM_BASES = [
    payloads.update(kind.partition(":")[0], payload, update_id=index + 1)
    for index, (kind, payload) in enumerate(payloads.all_update_payloads().items())
]


def nested(levels: int, leaf: Any, as_dict: bool) -> Any:
    for _ in range(levels):
        leaf = {"k": leaf} if as_dict else [leaf]
    return leaf


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["user", "group", "room", "message", "text", "", "0" * 32, "f" * 32]),
)
values = st.one_of(
    st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
        ),
        max_leaves=12,
    ),
    # Deep nesting, often near orjson's 254 writable levels.
    st.builds(nested, st.integers(1, 300) | st.integers(245, 300), leaves, st.booleans()),
    st.integers(0, 300_000).map(lambda n: "ü" * n),
)


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value in a JSON tree, the root first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def encode(value: Any, duplicate: tuple[int, str, Any] | None) -> str:
    """JSON text; ``duplicate`` = (id of an object, key, value) writes that key there twice."""
    if isinstance(value, dict):
        items = [
            f"{json.dumps(k, ensure_ascii=False)}:{encode(v, duplicate)}" for k, v in value.items()
        ]
        if duplicate is not None and id(value) == duplicate[0]:
            items.insert(0, f"{json.dumps(duplicate[1])}:{encode(duplicate[2], None)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v, duplicate) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@st.composite
def mutants(draw: st.DrawFn, bases: list[dict]) -> bytes:
    body = json.loads(json.dumps(draw(st.sampled_from(bases))))
    duplicate = None
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(body))))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "duplicate"]))
        target = at(body, path)
        if op == "replace":
            if not path:
                body = draw(values)
                continue
            at(body, path[:-1])[path[-1]] = draw(values)
        elif op == "delete" and path:
            del at(body, path[:-1])[path[-1]]
        elif op == "add" and isinstance(target, dict):
            target[draw(st.text(max_size=12))] = draw(values)
        elif op == "duplicate" and isinstance(target, dict) and target:
            duplicate = (id(target), draw(st.sampled_from(list(target))), draw(values))
    return encode(body, duplicate).encode("utf-8", "surrogatepass")


class Fuzzed:
    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop, platform: FakePlatform) -> None:
        self.app = app
        self.loop = loop
        self.platform = platform

    def post(self, path: str, body: bytes) -> int:
        if path == LINE_PATH:
            headers = [("X-Line-Signature", payloads.line_signature(body, LINE_SECRET))]
        else:
            headers = [("X-Telegram-Bot-Api-Secret-Token", TELEGRAM_SECRET)]
        return self.loop.run_until_complete(asgi_post(self.app, path, body, headers)).status

    def calls(self, suffix: str) -> int:
        return len(self.platform.calls_to(suffix))

    def still_works(self, path: str, body: dict, suffix: str) -> None:
        """A valid body after the fuzzing gets 200 and the bot's answer."""
        before = self.calls(suffix)
        assert self.post(path, payloads.encode(body)) == 200
        # Waited for on the gateway's loop, so that its background work runs meanwhile.
        answered = until(lambda: self.calls(suffix) != before, f"a call to {suffix}")
        self.loop.run_until_complete(answered)
        assert self.calls(suffix) == before + 1


@contextlib.contextmanager
def running(driver: str, directory: Path) -> Iterator[Fuzzed]:
    """The gateway (both channels, the counting bot) on ``driver``, started in its own loop."""
    platform, stop_platform = _serve_platform()
    config = load_config(
        write_config(
            directory,
            app="tests.bots:counter",
            initial_state={"count": 0},
            session={"driver": driver, "stores": {"file": {"dirname": str(directory / "s")}}},
            channels={
                "line": {
                    "enabled": True,
                    "access_token": LINE_ACCESS_TOKEN,
                    "channel_secret": LINE_SECRET,
                    "origin": platform.origin,
                },
                "telegram": {
                    "enabled": True,
                    "access_token": TELEGRAM_TOKEN,
                    "secret_token": TELEGRAM_SECRET,
                    "origin": platform.origin,
                },
            },
        )
    )
    loop = asyncio.new_event_loop()
    app = create_app(config)
    loop.run_until_complete(app.state.gateway.start())
    try:
        yield Fuzzed(app, loop, platform)
    finally:
        loop.run_until_complete(app.state.gateway.stop())
        loop.close()
        stop_platform()


@pytest.fixture(scope="module", params=["memory", "file"])
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with running(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}")) as gateway:
        yield gateway


@FUZZ
@given(body=mutants(LINE_BASES))
def test_no_mutant_of_a_line_body_gets_a_5xx(fuzzed: Fuzzed, body: bytes) -> None:
    assert fuzzed.post(LINE_PATH, body) in (200, 400, 413)


@FUZZ
@given(body=mutants(TELEGRAM_BASES))
def test_no_mutant_of_a_telegram_update_gets_a_5xx(fuzzed: Fuzzed, body: bytes) -> None:
    assert fuzzed.post(TELEGRAM_PATH, body) in (200, 400, 413)


def test_after_the_mutants_valid_bodies_still_work(fuzzed: Fuzzed) -> None:
    line_body = payloads.line_body(payloads.text_event("hi"))
    fuzzed.still_works(LINE_PATH, line_body, "/v2/bot/message/reply")
    fuzzed.still_works(TELEGRAM_PATH, payloads.text_update("hi"), "/sendMessage")


#: One value of each JSON type, plus nesting past orjson's writable depth.
EVERY_TYPE = [None, True, 2**64, "x" * 300, [], {}, nested(300, 0, True)]


@pytest.mark.parametrize(
    ("path", "bases"), [(LINE_PATH, LINE_BASES), (TELEGRAM_PATH, TELEGRAM_BASES)]
)
def test_every_field_of_every_body_replaced_by_every_json_type_gets_no_5xx(
    tmp_path: Path, path: str, bases: list[dict]
) -> None:
    """Exhaustive where the fuzzing samples: each field of each base body, each type."""
    with running("memory", tmp_path) as gateway:
        for base in bases:
            for field in list(paths(base))[1:]:
                for value in EVERY_TYPE:
                    body = json.loads(json.dumps(base))
                    at(body, field[:-1])[field[-1]] = value
                    status = gateway.post(path, encode(body, None).encode())
                    assert status in (200, 400, 413), (field, value)
