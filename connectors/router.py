"""Actions, the router and chaining: Bottender's way of composing a bot, platform-free.

An *action* is ``async def action(context)`` or ``async def action(context, **props)``
(a plain function, or any object with an ``async __call__``). An action may return
another action, which runs next with the same context, as in Bottender: the router
does exactly that, it returns the action of the first route that matches.

Nothing here knows a platform's JSON: routes read the event's cross-platform
vocabulary (``is_text``, ``text``, ``payload``) and ``context.platform``; the
platform-specific helpers (``line.follow``, ``telegram.command``) live next to
their connectors and build on :func:`route`.
"""

from __future__ import annotations

import inspect
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any

__all__ = [
    "MAX_STEPS",
    "Route",
    "Router",
    "chain",
    "follow",
    "payload",
    "platform",
    "route",
    "router",
    "run",
    "text",
    "with_props",
]

Action = Callable[..., Any]
#: ``(context) -> bool`` (or a mapping of props), sync or async; ``"*"`` matches everything.
Predicate = Callable[[Any], Any]
Pattern = str | re.Pattern[str] | Iterable[str]

#: More steps than this in one event's action chain is taken for a loop.
MAX_STEPS = 100


class ChainTooLong(RuntimeError):
    """An action chain went on for more than :data:`MAX_STEPS` actions."""


# --------------------------------------------------------------------------- calling actions

#: Per function (or per class, for callable objects): ``None`` when it takes any keyword
#: (``**props``), else the names it takes. Weak, so actions made per event do not pile up.
_ACCEPTS: weakref.WeakKeyDictionary[Any, frozenset[str] | None] = weakref.WeakKeyDictionary()


def _accepted(action: Action) -> frozenset[str] | None:
    if isinstance(action, _OWN_ACTIONS):
        return None
    if inspect.isfunction(action) or inspect.ismethod(action):
        key: Any = getattr(action, "__func__", action)  # bound methods are new objects each time
    elif inspect.isfunction(getattr(type(action), "__call__", None)):  # noqa: B004
        key = type(action)  # a class of the bot's own with a __call__
    else:  # functools.partial and the like: each instance is different
        return _signature_names(action)
    try:
        return _ACCEPTS[key]
    except KeyError:
        accepted = _ACCEPTS[key] = _signature_names(action)
        return accepted
    except TypeError:  # not weak-referenceable: work it out every time
        return _signature_names(action)


def _signature_names(action: Action) -> frozenset[str] | None:
    try:
        parameters = list(inspect.signature(action).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: give it the context alone
        return frozenset()
    names = set()
    for parameter in parameters[1:]:  # the first is the context
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            names.add(parameter.name)
    return frozenset(names)


async def call(action: Action, context: Any, props: Mapping[str, Any] | None = None) -> Any:
    """Call one action, passing only the props it accepts; its result (awaited if need be)."""
    if props:
        accepted = _accepted(action)
        if accepted is None:
            result = action(context, **props)
        else:
            result = action(context, **{k: v for k, v in props.items() if k in accepted})
    else:
        result = action(context)
    if inspect.isawaitable(result):
        result = await result
    return result


async def run(action: Action, context: Any, props: Mapping[str, Any] | None = None) -> None:
    """Run ``action`` and every action it returns, until one returns a non-action.

    A returned value that is not callable ends the chain (as in Bottender), so
    ``return await context.send_text(...)`` is harmless on Telegram, where the
    send returns the sent message.
    """
    await follow(await call(action, context, props), context)


async def follow(result: Any, context: Any) -> None:
    """Run what an action returned, and what that returns, while it is an action.

    The runtime awaits the app itself and calls this only when it returned
    something callable, so an app that returns ``None`` pays one ``callable()``.
    """
    steps = 1
    while callable(result):
        if steps >= MAX_STEPS:
            raise ChainTooLong(
                f"the action chain ran {MAX_STEPS} actions and the last returned another"
                f" ({_name(result)}): an action returning itself?"
            )
        result = await call(result, context)
        steps += 1


def _name(action: Action) -> str:
    return getattr(action, "__qualname__", None) or type(action).__qualname__


# --------------------------------------------------------------------------- props and chain


class _WithProps:
    """An action bound to props, merged over the props it is called with."""

    __slots__ = ("action", "props")

    def __init__(self, action: Action, props: Mapping[str, Any]) -> None:
        self.action = action
        self.props = dict(props)

    async def __call__(self, context: Any, **props: Any) -> Any:
        return await call(self.action, context, {**props, **self.props})

    def __repr__(self) -> str:
        return f"with_props({_name(self.action)}, {self.props!r})"


def with_props(action: Action, **props: Any) -> Action:
    """``action`` with ``props`` bound: Bottender's ``withProps``."""
    _check_action(action, "with_props")
    return _WithProps(action, props)


class _Chain:
    """Bottender's ``chain``: each action gets ``props["next"]``, the rest of the chain."""

    __slots__ = ("actions",)

    def __init__(self, actions: tuple[Action, ...]) -> None:
        self.actions = actions

    async def __call__(self, context: Any, **props: Any) -> Any:
        first, rest = self.actions[0], self.actions[1:]
        outer_next = props.get("next")
        if rest:
            following: Any = _Chain(rest)
            if props:
                following = _WithProps(following, props)
        else:
            following = outer_next
        return await call(first, context, {**props, "next": following})

    def __repr__(self) -> str:
        return f"chain([{', '.join(_name(action) for action in self.actions)}])"


def chain(actions: Iterable[Action]) -> Action:
    """Run ``actions`` in order, each deciding whether to go on by returning ``props["next"]``.

    The last action's ``next`` is the ``next`` the chain itself was given (or
    ``None``), so chains nest.
    """
    actions = tuple(actions)
    if not actions:
        raise ValueError("chain() needs at least one action")
    for action in actions:
        _check_action(action, "chain")
    return _Chain(actions)


# --------------------------------------------------------------------------- routes


class Route:
    """A predicate and the action it leads to. ``match`` returns props, or ``None``."""

    __slots__ = ("action", "predicate")

    def __init__(self, predicate: Predicate, action: Action) -> None:
        self.predicate = predicate
        self.action = action

    async def match(self, context: Any) -> Mapping[str, Any] | None:
        result = self.predicate(context)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Mapping):  # props, possibly none: a match all the same
            return result
        return {} if result else None

    def __repr__(self) -> str:
        name = getattr(self.predicate, "__name__", self.predicate)
        return f"<Route {name!r} -> {_name(self.action)}>"


class Router:
    """Tries its routes in order; the first that matches gives the action to run next."""

    __slots__ = ("routes",)

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes

    async def __call__(self, context: Any, **props: Any) -> Any:
        for candidate in self.routes:
            matched = await candidate.match(context)
            if matched is not None:
                merged = {**props, **matched}
                return _WithProps(candidate.action, merged) if merged else candidate.action
        # No match runs nothing, or goes on with the rest of an enclosing chain.
        return props.get("next")

    def __repr__(self) -> str:
        return f"router({len(self.routes)} routes)"


def router(*routes: Route | Iterable[Route]) -> Router:
    """``router(text("hi", say_hi), route("*", fallback))``; a single list works too."""
    flat: list[Route] = []
    for item in routes:
        if isinstance(item, Route):
            flat.append(item)
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
            flat.extend(item)
        else:
            raise TypeError(f"router() takes routes (text(...), route(...)…), got {item!r}")
    for item in flat:
        if not isinstance(item, Route):
            raise TypeError(f"router() takes routes (text(...), route(...)…), got {item!r}")
    return Router(tuple(flat))


def _always(context: Any) -> bool:
    return True


def route(predicate: Predicate | str, action: Action) -> Route:
    """Run ``action`` when ``predicate(context)`` is true (``"*"``: always).

    A predicate may return a mapping instead of ``True``: it is passed to the
    action as props, as Bottender's custom routes do.
    """
    _check_action(action, "route")
    if predicate == "*":
        return Route(_always, action)
    if not callable(predicate):
        raise TypeError(f'route() takes a predicate (context) -> bool or "*", got {predicate!r}')
    return Route(predicate, action)


def kind_helper(
    platform: str, name: str, matches: Callable[[Any], bool], doc: str
) -> Callable[[Action], Route]:
    """``<platform>.<name>(action)``: a route for the events of ``platform`` that ``matches``.

    The platform modules' event-kind helpers (``line.follow``, ``telegram.callback_query``)
    are all this; only what an event of the kind looks like is theirs. The helper and
    its predicate carry the names ``help()`` and a route's repr show, and the module of
    ``matches`` (the platform's), as if written there.
    """

    def predicate(context: Any) -> bool:
        return context.platform == platform and matches(context.event)

    def helper(action: Action) -> Route:
        return route(predicate, action)

    predicate.__name__ = f"{platform}.{name}"
    helper.__name__ = helper.__qualname__ = name
    helper.__doc__ = doc
    predicate.__module__ = helper.__module__ = matches.__module__
    return helper


def _matcher(pattern: Pattern, what: str) -> Callable[[str], Mapping[str, Any] | None]:
    """How a text or payload is compared: ``"*"``, exact, any of a list, or ``re.search``."""
    if isinstance(pattern, re.Pattern):

        def by_regex(value: str) -> Mapping[str, Any] | None:
            found = pattern.search(value)
            return {"match": found} if found else None

        return by_regex
    if pattern == "*":
        return lambda value: {}
    if isinstance(pattern, str):
        return lambda value: {} if value == pattern else None
    if isinstance(pattern, Iterable):
        choices = frozenset(pattern)
        if not all(isinstance(choice, str) for choice in choices):
            raise TypeError(f"{what}() takes strings, a list of strings or a re.Pattern")
        return lambda value: {} if value in choices else None
    raise TypeError(f"{what}() takes a string, a list of strings or a re.Pattern, got {pattern!r}")


def text(pattern: Pattern, action: Action) -> Route:
    """Match a text message: exactly, any of a list, a regex (``props["match"]``) or ``"*"``."""
    return _event_string_route("text", pattern, action)


def payload(pattern: Pattern, action: Action) -> Route:
    """Match a LINE postback's data or a Telegram callback query's data, like :func:`text`."""
    return _event_string_route("payload", pattern, action)


def _event_string_route(field: str, pattern: Pattern, action: Action) -> Route:
    """A route on the string ``context.event.<field>``; an event without one does not match.

    The predicate is named after the call that made it (``text('hi')``), for the route's repr.
    """
    _check_action(action, field)
    matches = _matcher(pattern, field)
    value_of = attrgetter(field)

    def predicate(context: Any) -> Mapping[str, Any] | None:
        value = value_of(context.event)
        return matches(value) if isinstance(value, str) else None

    predicate.__name__ = f"{field}({pattern!r})"
    return Route(predicate, action)


def platform(name: str, action: Action) -> Route:
    """Match events of one platform (``"line"``, ``"telegram"``, ``"console"``)."""
    _check_action(action, "platform")

    def on_platform(context: Any) -> bool:
        return context.platform == name

    on_platform.__name__ = f"platform({name!r})"
    return Route(on_platform, action)


#: The wrappers of this module take any props.
_OWN_ACTIONS = (_WithProps, _Chain, Router)


def _check_action(action: Any, where: str) -> None:
    if not callable(action):
        raise TypeError(f"{where}(): the action must be callable, got {action!r}")


def is_action(value: Any) -> bool:
    """An ``app`` of the config: a coroutine function, or an object with ``async __call__``."""
    if inspect.iscoroutinefunction(value):
        return True
    call_method = getattr(type(value), "__call__", None)  # noqa: B004 - the class's, not the instance's
    return call_method is not None and inspect.iscoroutinefunction(call_method)
