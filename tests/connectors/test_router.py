"""The router, actions and chaining, on contexts built from documented webhook bodies.

The contexts are the connectors' own (parsed from the platform's JSON, as the
webhook does); each action records what it was called with.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bottender import chain, line, payload, platform, route, router, telegram, text, with_props
from bottender.connectors.base import Context
from bottender.connectors.console import ConsoleConnector
from bottender.connectors.line import LineConnector
from bottender.connectors.router import MAX_STEPS, ChainTooLong, run
from bottender.connectors.telegram import TelegramConnector
from bottender.sessions.session import Session
from tests.connectors import payloads


def line_context(raw: dict[str, Any]) -> Context:
    connector = LineConnector(
        path="/webhooks/line", initial_state={}, access_token="t", channel_secret="s"
    )
    (event,) = connector.parse(payloads.line_body(raw))
    return connector.create_context(event, Session.new(connector.session_key(event), {}))


def telegram_context(body: dict[str, Any]) -> Context:
    connector = TelegramConnector(path="/webhooks/telegram", initial_state={}, access_token="1:x")
    (event,) = connector.parse(body)
    return connector.create_context(event, Session.new(connector.session_key(event), {}))


def console_context(line_text: str) -> Context:
    connector = ConsoleConnector(initial_state={}, write=lambda line: None)
    (event,) = connector.parse({"text": line_text})
    return connector.create_context(event, Session.new("console:1", {}))


class Calls:
    """Actions that record their name and the props they got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str):
        async def action(context, **props):
            self.calls.append((name, props))

        action.__name__ = name
        return action

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def calls() -> Calls:
    return Calls()


def go(app: Any, context: Context) -> None:
    asyncio.run(run(app, context))


def test_routes_are_tried_in_order_and_the_first_match_wins(calls):
    app = router(
        text("hi", calls("exact")),
        text(["hi", "hello"], calls("any-of")),
        text("*", calls("any-text")),
        route("*", calls("anything")),
    )
    go(app, line_context(payloads.text_event("hi")))
    go(app, line_context(payloads.text_event("hello")))
    go(app, telegram_context(payloads.text_update("what?")))
    go(app, line_context(payloads.sticker_event()))
    assert calls.names == ["exact", "any-of", "any-text", "anything"]
    assert all(props == {} for _, props in calls.calls)


def test_no_match_runs_nothing(calls):
    app = router(text("hi", calls("hi")), payload("BUY", calls("buy")))
    go(app, telegram_context(payloads.text_update("bye")))
    go(app, line_context(payloads.follow_event()))
    assert calls.calls == []


def test_a_regex_matches_with_search_and_passes_the_match(calls):
    app = router(text(re.compile(r"order (\d+)$", re.I), calls("order")))
    go(app, telegram_context(payloads.text_update("please ORDER 42")))
    go(app, telegram_context(payloads.text_update("order 42 now")))  # not at the end: no match
    ((name, props),) = calls.calls
    assert name == "order"
    assert isinstance(props["match"], re.Match) and props["match"].group(1) == "42"


def test_payload_matches_line_postbacks_and_telegram_callback_queries(calls):
    app = router(
        payload(re.compile(r"^BUY:(\d+)$"), calls("buy")),
        payload("GET_STARTED", calls("start")),
        text("*", calls("text")),
    )
    go(app, line_context(payloads.postback_event("BUY:3")))
    go(app, telegram_context(payloads.callback_update("BUY:5")))
    go(app, telegram_context(payloads.callback_update("GET_STARTED")))
    go(app, line_context(payloads.postback_event("GET_STARTED")))
    go(app, line_context(payloads.text_event("GET_STARTED")))  # a text is no payload
    assert calls.names == ["buy", "buy", "start", "start", "text"]
    assert [props["match"].group(1) for _, props in calls.calls[:2]] == ["3", "5"]


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("/start", ""),
        ("/start@counter_bot", ""),
        ("/start", "ref42"),
        ("/start@counter_bot", "ref42"),
    ],
)
def test_telegram_command_with_and_without_the_bot_name(calls, command, args):
    app = router(telegram.command("help", calls("help")), telegram.command("start", calls("start")))
    go(app, telegram_context(payloads.command_update(command, args)))
    assert calls.calls == [("start", {"args": args})]


def test_telegram_command_does_not_match_other_commands_or_text_or_line(calls):
    app = router(telegram.command("/start", calls("start")), route("*", calls("other")))
    go(app, telegram_context(payloads.command_update("/starting")))
    go(app, telegram_context(payloads.text_update("start")))
    go(app, line_context(payloads.text_event("/start")))
    assert calls.names == ["other", "other", "other"]
    with pytest.raises(ValueError):
        telegram.command("two words", calls("x"))


def test_platform_and_kind_routes(calls):
    app = router(
        line.follow(calls("line-follow")),
        line.postback(calls("line-postback")),
        telegram.callback_query(calls("tg-callback")),
        telegram.edited_message(calls("tg-edited")),
        platform("line", calls("line-any")),
        platform("console", calls("console")),
    )
    go(app, line_context(payloads.follow_event()))
    go(app, line_context(payloads.postback_event("x")))
    go(app, line_context(payloads.line_kind_event("memberJoined")))
    go(app, telegram_context(payloads.callback_update("x")))
    edited = payloads.update("edited_message", payloads.tg_message(payloads.GROUP, payloads.ALICE))
    go(app, telegram_context(edited))
    go(app, telegram_context(payloads.text_update("hi")))  # no route for it
    go(app, console_context("hi"))
    assert calls.names == [
        "line-follow",
        "line-postback",
        "line-any",
        "tg-callback",
        "tg-edited",
        "console",
    ]


def test_kind_helpers_are_named_and_documented_as_their_platforms(calls):
    """What ``help(bottender.line)`` and a route's repr show a bot author."""
    assert (line.member_joined.__name__, line.member_joined.__module__) == (
        "member_joined",
        "bottender.connectors.line_routes",
    )
    assert line.member_joined.__doc__ == "Run ``action`` on a LINE ``memberJoined`` event."
    assert repr(line.follow(calls("welcome"))).startswith("<Route 'line.follow' -> ")
    assert (telegram.callback_query.__name__, telegram.callback_query.__module__) == (
        "callback_query",
        "bottender.connectors.telegram_routes",
    )
    assert telegram.callback_query.__doc__ == (
        "Run ``action`` on a Telegram ``callback_query`` update."
    )
    assert repr(telegram.message(calls("echo"))).startswith("<Route 'telegram.message' -> ")
    assert repr(text("hi", calls("hi"))).startswith("<Route \"text('hi')\" -> ")
    assert repr(payload(re.compile("BUY"), calls("buy"))).startswith(
        "<Route \"payload(re.compile('BUY'))\" -> "
    )


def test_a_predicate_may_be_sync_or_async_and_return_props(calls):
    async def is_long(context):
        return len(context.event.text or "") > 5

    app = router(
        route(lambda context: context.event.is_image, calls("image")),
        route(is_long, calls("long")),
        route(lambda context: {"length": len(context.event.text)}, calls("short")),
    )
    go(app, line_context(payloads.message_event(payloads.LINE_MESSAGES["image"])))
    go(app, telegram_context(payloads.text_update("a long one")))
    go(app, telegram_context(payloads.text_update("abc")))
    assert calls.calls == [("image", {}), ("long", {}), ("short", {"length": 3})]


def test_props_reach_only_actions_that_accept_them():
    seen: list[Any] = []

    async def context_only(context):
        seen.append("context only")

    async def by_name(context, match, other="default"):
        seen.append((match.group(0), other))

    class Handler:
        async def __call__(self, context, **props):
            seen.append(sorted(props))

    go(router(text(re.compile("hi"), context_only)), telegram_context(payloads.text_update("hi")))
    go(router(text(re.compile("hi"), by_name)), telegram_context(payloads.text_update("hi")))
    go(router(text(re.compile("hi"), Handler())), telegram_context(payloads.text_update("hi")))
    assert seen == ["context only", ("hi", "default"), ["match"]]


def test_actions_returning_actions_run_until_one_returns_none():
    seen: list[str] = []

    async def third(context):
        seen.append("third")
        return "a value that is no action ends the chain"

    async def second(context):
        seen.append("second")
        return third

    async def first(context):
        seen.append("first")
        return second

    go(first, telegram_context(payloads.text_update()))
    assert seen == ["first", "second", "third"]


def test_more_than_a_hundred_steps_is_an_error():
    steps = []

    async def again(context):
        steps.append(1)
        return again

    with pytest.raises(ChainTooLong, match=str(MAX_STEPS)):
        go(again, telegram_context(payloads.text_update()))
    assert len(steps) == MAX_STEPS


def test_with_props_binds_props_over_the_ones_given(calls):
    app = router(text(re.compile("hi"), with_props(calls("bound"), greeting="hello", match=None)))
    go(app, telegram_context(payloads.text_update("hi")))
    go(with_props(calls("alone"), n=1), telegram_context(payloads.text_update("hi")))
    assert calls.calls == [("bound", {"greeting": "hello", "match": None}), ("alone", {"n": 1})]


def test_chain_runs_in_order_while_each_returns_next():
    seen: list[str] = []

    async def log(context, next):
        seen.append("log")
        return next

    async def guard(context, next):
        seen.append("guard")
        return None if context.event.text == "stop" else next

    async def app(context):
        seen.append("app")

    go(chain([log, guard, app]), telegram_context(payloads.text_update("go")))
    assert seen == ["log", "guard", "app"]
    seen.clear()
    go(chain([log, guard, app]), telegram_context(payloads.text_update("stop")))
    assert seen == ["log", "guard"]


def test_a_router_in_a_chain_goes_on_when_nothing_matches(calls):
    async def fallback(context):
        calls.calls.append(("fallback", {}))

    app = chain([router(text("hi", calls("hi"))), fallback])
    go(app, telegram_context(payloads.text_update("hi")))
    go(app, telegram_context(payloads.text_update("bye")))
    assert calls.names == ["hi", "fallback"]


def test_routers_nest(calls):
    app = router(
        platform(
            "telegram", router(telegram.command("start", calls("start")), text("*", calls("tg")))
        ),
        route("*", calls("other")),
    )
    go(app, telegram_context(payloads.command_update("/start", "x")))
    go(app, telegram_context(payloads.text_update("hi")))
    go(app, line_context(payloads.text_event("hi")))
    assert calls.calls == [("start", {"args": "x"}), ("tg", {}), ("other", {})]


def test_bad_routes_are_refused_where_they_are_written():
    with pytest.raises(TypeError):
        router(lambda context: None)
    with pytest.raises(TypeError):
        text(42, lambda context: None)
    with pytest.raises(TypeError):
        route("everything", lambda context: None)
    with pytest.raises(TypeError):
        text("hi", "not an action")
    with pytest.raises(ValueError):
        chain([])


LINE_KIND_EVENTS = {
    "message": lambda: payloads.text_event("hi"),
    "follow": payloads.follow_event,
    "unfollow": payloads.unfollow_event,
    "join": lambda: payloads.line_kind_event("join"),
    "leave": lambda: payloads.line_kind_event("leave"),
    "member_joined": lambda: payloads.line_kind_event("memberJoined"),
    "member_left": lambda: payloads.line_kind_event("memberLeft"),
    "postback": lambda: payloads.postback_event("x"),
    "beacon": lambda: payloads.line_kind_event("beacon"),
    "account_link": lambda: payloads.line_kind_event("accountLink"),
    "unsend": lambda: payloads.unsend_event("325708"),
    "video_play_complete": lambda: payloads.line_kind_event("videoPlayComplete"),
}


@pytest.mark.parametrize("kind", sorted(LINE_KIND_EVENTS))
def test_each_line_kind_helper_matches_its_own_events_only(calls, kind):
    app = router(*(getattr(line, name)(calls(name)) for name in sorted(LINE_KIND_EVENTS)))
    go(app, line_context(LINE_KIND_EVENTS[kind]()))
    go(app, telegram_context(payloads.text_update("hi")))  # a Telegram message is no LINE one
    assert calls.names == [kind]


TELEGRAM_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "callback_query",
    "inline_query",
    "chosen_inline_result",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "pre_checkout_query",
    "shipping_query",
)


@pytest.mark.parametrize("kind", TELEGRAM_KINDS)
def test_each_telegram_kind_helper_matches_its_own_updates_only(calls, kind):
    update_payloads = payloads.all_update_payloads()
    name = next(name for name in sorted(update_payloads) if name.partition(":")[0] == kind)
    app = router(*(getattr(telegram, each)(calls(each)) for each in TELEGRAM_KINDS))
    go(app, telegram_context(payloads.update(kind, update_payloads[name])))
    go(app, line_context(payloads.text_event("hi")))
    assert calls.names == [kind]
