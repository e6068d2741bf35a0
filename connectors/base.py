"""The connector contract and what every platform's events and contexts share.

A connector is everything one platform needs: how its webhook is
authenticated, how a body becomes events, which session an event belongs to,
and the context (with its send methods) the bot is handed. The server and the
runtime see only this module's interfaces, never a platform's JSON.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

import aiohttp
import orjson

from bottender.sessions.session import Session


class BadRequest(Exception):
    """The webhook body is not what the platform sends; answered with ``status`` (400)."""

    status: ClassVar[int] = 400


class WrongRecipient(BadRequest):
    """An authentic body meant for another bot (LINE ``destination``); answered with 403."""

    status: ClassVar[int] = 403


#: Marks a channel option that has no default: the channel cannot run without it.
REQUIRED: Any = object()


class StateWarning(RuntimeWarning):
    """State was changed where the change can never be saved."""


#: orjson would otherwise turn datetimes and dataclasses into strings and objects silently,
#: so a bot would set a datetime and read back a str on the next event.
_STRICT_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def sdk_plain(value: Any) -> Any:
    """The platform JSON of an official SDK object; orjson's ``default`` hook.

    line-bot-sdk v3 models have ``to_dict()`` (camelCase aliases, no ``None``);
    aiogram types are pydantic models, serialised as aiogram itself does
    (``exclude_none``, ``by_alias``). Duck-typed, so neither SDK is a
    dependency. As an orjson ``default`` it runs only for values orjson cannot
    encode itself, so plain-dict messages pay nothing for it.
    """
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return _bot_api_json(model_dump(exclude_none=True, by_alias=True))
    raise TypeError(f"{type(value).__name__} is not JSON (a dict, or an SDK object)")


def _bot_api_json(value: Any) -> Any:
    """An aiogram dump as aiogram sends it: its ``Default`` placeholders (a bot-wide
    setting this project does not have) left out, datetimes as Unix time."""
    if isinstance(value, dict):
        return {
            key: _bot_api_json(item)
            for key, item in value.items()
            if type(item).__name__ != "Default"
        }
    if isinstance(value, list | tuple):
        return [_bot_api_json(item) for item in value]
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


def plain(value: Any) -> Any:
    """``value`` as the platform's JSON: SDK objects converted, anything else unchanged."""
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return sdk_plain(value)


#: Levels a store adds above a value of the state (document, session, state): the value is
#: checked wrapped in as many lists, so what passes here can always be written (orjson writes
#: at most 254 levels; a store's write must never fail after the bot's reply was sent).
_STORE_NESTING = 4
#: Bounds on a value copied from a webhook body into the session (a user, a chat…): real ones
#: are a few hundred bytes and a few levels deep.
MAX_COPIED_DEPTH = 16
MAX_COPIED_BYTES = 16 * 1024
#: The integers every store keeps exactly (BSON's int64).
_INT64 = (-(2**63), 2**63 - 1)
#: Levels orjson writes at most: anything deeper it refuses itself.
_MAX_JSON_DEPTH = 254
#: 19 digits in a row in orjson's output: where an integer past int64 (2**63 has 19) can be.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def json_copy(value: Any, what: str, *, int64: bool = True) -> Any:
    """Deep-copy JSON-compatible data, refusing what no store could save.

    State must survive a round trip through any driver, so the memory store in
    development accepts exactly what Redis or MongoDB would in production: a
    key holding a NUL character, or an integer beyond signed 64 bits (orjson
    writes up to 2**64 - 1, BSON only int64), is refused here rather than when
    MongoDB is written, after the bot has already replied. The error names the
    value's key path. ``int64=False`` leaves integers that orjson writes alone:
    the read-only view of a state stored before the rule must stay readable.
    """
    wrapped: Any = value
    for _ in range(_STORE_NESTING):
        wrapped = [wrapped]
    try:
        data = orjson.dumps(wrapped, option=_STRICT_JSON)
    except TypeError as exc:
        _refuse_unsavable(value, what, int64=int64)  # a number or key it can name the path of
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from None
    copied = orjson.loads(data)
    for _ in range(_STORE_NESTING):
        copied = copied[0]
    # Rare cases, looked for only when the bytes hint at them: orjson writes NaN and
    # infinities as null (the value would silently become None), BSON keys cannot hold
    # NUL, and an integer past int64 has at least 19 digits.
    if b"null" in data or b"\\u0000" in data or (int64 and _LONG_DIGITS.search(data) is not None):
        _refuse_unsavable(value, what, int64=int64)
    return copied


def _refuse_unsavable(value: Any, what: str, *, int64: bool) -> None:
    """Walk ``value`` for what no store keeps, naming its path.

    Iterative, each container once and no deeper than orjson writes: a value orjson
    refused may be nested past any recursion limit, or hold itself.
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    seen: set[int] = set()
    while stack:
        item, path = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if id(item) in seen or len(path) > _MAX_JSON_DEPTH:
                continue
            seen.add(id(item))
        if isinstance(item, float):
            if not math.isfinite(item):
                raise TypeError(
                    f"{what} must be JSON-serializable: {item} at {_path(path)}"
                    " is not a JSON number"
                )
        elif isinstance(item, int):
            if int64 and not _INT64[0] <= item <= _INT64[1]:
                raise TypeError(
                    f"{what}: the integer {item} at {_path(path)} does not fit in signed 64 bits"
                    " (state integers must: MongoDB keeps no larger ones)"
                )
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    raise TypeError(
                        f"{what}: the key {key!r} at {_path(path)} has a NUL character"
                        " (MongoDB refuses it)"
                    )
                stack.append((child, (*path, key)))
        elif isinstance(item, list | tuple):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))


def _path(path: tuple[Any, ...]) -> str:
    """``['profile']['visits'][1]``: unambiguous whatever the keys hold (dots, brackets)."""
    return "".join(f"[{part!r}]" for part in path) or "the top level"


def check_copied(value: Any, what: str) -> None:
    """Refuse (:class:`BadRequest`) a body value that the session would keep but no store could.

    Called while parsing, before the bot runs: a value the store cannot write would
    otherwise fail the write after the bot's reply went out, and every redelivery would
    send the reply again. Bounded in depth and size; integers within int64; object keys
    free of NUL, a leading ``$`` and ``.`` (what MongoDB refuses). Platforms never send such.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_COPIED_DEPTH:
                raise BadRequest(f"{what} is nested deeper than {MAX_COPIED_DEPTH} levels")
            for key, child in item.items():
                if "\0" in key or "." in key or key.startswith("$"):
                    raise BadRequest(f"{what} has a key no store can keep")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_COPIED_DEPTH:
                raise BadRequest(f"{what} is nested deeper than {MAX_COPIED_DEPTH} levels")
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, int) and not _INT64[0] <= item <= _INT64[1]:
            raise BadRequest(f"{what} holds an integer beyond 64 bits")
    # Measured once the depth is known to be small (orjson refuses past 254 levels).
    if len(orjson.dumps(value)) > MAX_COPIED_BYTES:
        raise BadRequest(f"{what} is larger than {MAX_COPIED_BYTES} bytes")


def text_field(raw: Mapping[str, Any], key: str, what: str, *, max_length: int = 256) -> None:
    """Refuse a field that, when present, must be a string of bounded length."""
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > max_length):
        raise BadRequest(f"{what}.{key} must be a string of at most {max_length} characters")


def single_header(headers: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """``(value, None)`` for a header sent at most once, ``(None, reason)`` for duplicates.

    A proxy that reads the last of two values would disagree with one that reads the
    first, so an authentication header sent twice is refused rather than guessed at.
    """
    getlist = getattr(headers, "getlist", None)
    values = getlist(name) if getlist is not None else [v for v in [headers.get(name)] if v]
    if len(values) > 1:
        return None, f"{name} header sent more than once"
    return (values[0] if values else None), None


class Event:
    """One platform event, as the bot reads it.

    ``raw`` is the platform's JSON, untouched. The properties below are the
    cross-platform vocabulary (API.md, "The event"), each worked out from
    ``raw`` when read, never stored: an app that does not read them pays
    nothing. Platform subclasses fill them in and add their own.
    """

    platform: ClassVar[str] = ""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def message(self) -> dict[str, Any] | None:
        """The platform's message object, or ``None`` when the event is no message."""
        return None

    @property
    def is_message(self) -> bool:
        return self.message is not None

    @property
    def is_text(self) -> bool:
        return self.text is not None

    @property
    def text(self) -> str | None:
        return None

    @property
    def is_payload(self) -> bool:
        return self.payload is not None

    @property
    def payload(self) -> str | None:
        """LINE postback data, Telegram callback query data."""
        return None

    @property
    def is_image(self) -> bool:
        return False

    @property
    def is_video(self) -> bool:
        return False

    @property
    def is_audio(self) -> bool:
        return False

    @property
    def is_file(self) -> bool:
        return False

    @property
    def is_sticker(self) -> bool:
        return False

    @property
    def is_location(self) -> bool:
        return self.location is not None

    @property
    def location(self) -> dict[str, Any] | None:
        """``{"latitude": ..., "longitude": ..., ...}`` of a location message."""
        return None

    @property
    def delivery_id(self) -> str | None:
        """A platform-wide unique id of this delivery, to recognise redeliveries."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.raw!r}>"


class SessionView:
    """What ``context.session`` exposes: the session's id and who the conversation is with.

    The state is reachable only read-only (``state`` is ``context.state``), so
    :meth:`Context.set_state` and :meth:`Context.reset_state` stay the one door
    through which anything is saved, checked at the call. ``user``, ``group``,
    ``room`` and ``channel`` are copies.
    """

    __slots__ = ("_context", "_session")

    def __init__(self, session: Session, context: Context) -> None:
        self._session = session
        self._context = context

    @property
    def id(self) -> str:
        return self._session.id

    @property
    def state(self) -> Mapping[str, Any]:
        return self._context.state

    @property
    def last_activity(self) -> float | None:
        """When the conversation was last written (Unix seconds), ``None`` if never."""
        return self._session.last_activity

    @property
    def user(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._session.user)

    @property
    def group(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._session.group)

    @property
    def room(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._session.room)

    @property
    def channel(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._session.channel)

    def __repr__(self) -> str:
        return f"<SessionView {self.id!r}>"


class Context:
    """What the bot's ``async def app(context)`` is handed for one event.

    State semantics (Bottender's, kept exactly):

    * ``context.state`` is read-only. Top-level assignment raises ``TypeError``;
      nested values are a private copy, so mutating them in place changes
      nothing that is saved. Only :meth:`set_state` and :meth:`reset_state`
      change the session: ``context.session`` is a :class:`SessionView`, whose
      ``state`` is this same read-only view, never the dict the store writes.
    * :meth:`set_state` merges shallowly: each given key replaces the old value
      whole (a nested dict is replaced, not merged); other keys stay.
    * State must be what every store can save (checked when set, see :func:`json_copy`).
    """

    platform: ClassVar[str] = ""

    def __init__(
        self, event: Event, session: Session | None, initial_state: Mapping[str, Any]
    ) -> None:
        self.event = event
        self._session = session
        self._session_view: SessionView | None = None
        self._initial_state = initial_state
        self._view: Mapping[str, Any] | None = None
        self._written = False

    @property
    def session(self) -> SessionView | None:
        """The conversation's id and who it is with; ``None`` for an event of no conversation."""
        if self._session is None:
            return None
        if self._session_view is None:
            self._session_view = SessionView(self._session, self)
        return self._session_view

    @property
    def state(self) -> Mapping[str, Any]:
        if self._view is None:
            state = self._session.state if self._session is not None else {}
            # A stored state is shown as it is: the int64 rule applies to what is set.
            self._view = MappingProxyType(json_copy(state, "state", int64=False))
        return self._view

    def set_state(self, partial: Mapping[str, Any]) -> None:
        """Shallow-merge ``partial`` into the state, as Bottender's ``setState``."""
        if not isinstance(partial, Mapping):
            raise TypeError(f"set_state takes a mapping, got {type(partial).__name__}")
        if self._cannot_save("set_state"):
            return
        assert self._session is not None
        self._session.state = {**self._session.state, **json_copy(dict(partial), "set_state")}
        self._view = None

    def reset_state(self) -> None:
        """Return the state to a fresh copy of ``initial_state``."""
        if self._cannot_save("reset_state"):
            return
        assert self._session is not None
        self._session.state = json_copy(dict(self._initial_state), "initial_state")
        self._view = None

    def _cannot_save(self, method: str) -> bool:
        if self._session is None:
            warnings.warn(
                f"{method} ignored: this {self.platform} event belongs to no session",
                StateWarning,
                stacklevel=3,
            )
            return True
        if self._written:
            warnings.warn(
                f"{method} after the event of session {self._session.id!r} ended:"
                " the change is not saved",
                StateWarning,
                stacklevel=3,
            )
        return False

    def mark_ended(self) -> None:
        """Called by the runtime once the event's session is saved (or left as it was)."""
        self._written = True

    async def send_text(self, text: str, **options: Any) -> None:
        raise NotImplementedError(f"{self.platform} contexts cannot send text")

    async def send_image(self, url: str, *, preview_url: str | None = None) -> Any:
        """Send a picture by URL (LINE image message, Telegram ``sendPhoto``)."""
        raise NotImplementedError(f"{self.platform} contexts cannot send images")

    async def flush(self) -> None:
        """Send whatever the platform batches (LINE's replies); a no-op elsewhere."""

    def discard_pending(self) -> None:
        """Forget what :meth:`flush` would send: the actions that buffered it raised."""


class Connector(ABC):
    """One platform's webhook: authentication, parsing, session keys, contexts.

    The class also describes the platform to the server, which knows no
    platform by name (``connectors/registry.py`` maps names to classes): the
    options a channel takes and their defaults, the variables ``.env`` usually
    holds them in, how long a webhook may wait, and the operator's calls
    (:attr:`admin_class`: webhook commands, registration by ``bottender dev``).

    One instance serves one *channel*: a named bot of the platform. The channel
    named after its platform keeps the ids ``<platform>:<id>``; any other
    channel's session and delivery ids are ``<channel>:<id>``, so two bots on
    one store never share a session or skip each other's updates.
    """

    platform: ClassVar[str] = ""
    #: Set by the server before :meth:`start` to count and trace API calls (``api.Observer``).
    observe: Callable[[str], Callable[[int], None]] | None = None
    #: How people write the platform's name, in messages.
    display_name: ClassVar[str] = ""
    #: Every option a channel of this platform takes besides the server's own
    #: (``enabled``, ``platform``, ``path``, ``deadline``), with its default or REQUIRED.
    options: ClassVar[Mapping[str, Any]] = {}
    #: For the default channel, the ``.env`` variable each required option is usually read from.
    env_names: ClassVar[Mapping[str, str]] = {}
    #: Seconds a webhook waits for its events before answering anyway (see server/app.py).
    default_deadline: ClassVar[float] = 20.0
    #: Options that name the bot: two enabled channels of the platform may not share one.
    unique_options: ClassVar[tuple[str, ...]] = ("access_token",)
    #: Whether the platform can be long-polled instead of calling a webhook.
    can_poll: ClassVar[bool] = False
    #: The operator's calls on the platform (webhook set/get/...), see connectors/admin.py.
    admin_class: ClassVar[type[Any] | None] = None

    def __init__(
        self, *, path: str, initial_state: Mapping[str, Any], channel: str | None = None
    ) -> None:
        self.path = path
        self.initial_state = initial_state
        self.channel = channel or self.platform
        #: What session and delivery ids start with: the platform, or the channel's own name.
        self.scope = self.platform if self.channel == self.platform else self.channel

    def serving(self) -> None:
        """Called once the gateway serves this channel (not by one-off commands, which only
        :meth:`start`): the place to begin background work such as learning the bot's id."""

    def scoped(self, key: str | None) -> str | None:
        """``'<platform>:<id>'`` as the platform module builds it, in this channel's scope."""
        if key is None or self.scope == self.platform:
            return key
        prefix = self.platform + ":"
        return self.scope + ":" + (key[len(prefix) :] if key.startswith(prefix) else key)

    def delivery_id(self, event: Event) -> str | None:
        """The event's delivery id in this channel's scope: redeliveries are per bot."""
        return self.scoped(event.delivery_id)

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Bind the process-wide HTTP client used for the platform's API."""

    async def check_token(self) -> str | None:
        """Ask the platform whether it accepts the access token (after :meth:`start`).

        Returns who the bot is, in a few words, or ``None`` when there is nothing to
        check; raises ``PlatformApiError`` when the platform refuses or cannot be reached.
        """
        return None

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """``None`` when the request is authentic, else the reason it is refused."""

    @abstractmethod
    def parse(self, body: dict[str, Any]) -> list[Event]:
        """The events of one webhook body that the bot should see.

        Event kinds this connector does not know are left out (acknowledged,
        never run); a body that is not shaped as the platform sends raises
        :class:`BadRequest`.
        """

    @abstractmethod
    def session_key(self, event: Event) -> str | None:
        """``'<platform>:<id>'``, or ``None`` when the event names no conversation."""

    def fill_session(self, session: Session, event: Event) -> None:
        """Copy who the conversation is with (user, group, room, channel) from the event."""

    def mark_replayed(self, event: Event) -> None:
        """Note that ``event`` is run again from the durable inbox (its first run may have
        sent messages before its process died); a platform may send differently then."""

    @abstractmethod
    def create_context(self, event: Event, session: Session | None) -> Context:
        """The context the bot is handed for ``event``."""

    def conversation_context(self, session: Session) -> Context:
        """A context for work outside a webhook (``Bot.conversation``): no event to answer.

        Its sends go to the session's conversation as pushes. Platforms that
        cannot start a conversation themselves refuse with ``NotImplementedError``.
        """
        raise NotImplementedError(f"{self.platform} cannot send outside a webhook")
