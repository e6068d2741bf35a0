"""The console: chat with the bot in a terminal, one conversation, ``console:1``.

What the user types becomes one event: a text, a payload (``/payload DATA``),
an image (``/image``) or a location (``/location LAT LNG``). By default the
events are the console's own, as in Bottender; with ``platform="line"`` or
``"telegram"`` they are shaped exactly as that platform sends them (a LINE
postback, a Telegram callback query...), so a bot reading platform fields can
be tried before it is deployed. The context stays the console's either way:
``context.platform`` is ``"console"`` and replies are printed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bottender.connectors.base import BadRequest, Connector, Context, Event
from bottender.sessions.session import Session

SESSION_KEY = "console:1"
CONSOLE_USER = {"id": "1", "name": "you"}
#: The shapes the console can give its events.
PLATFORMS = ("console", "line", "telegram")
#: What a console body may carry: ``{"text": "hi"}``, ``{"payload": "BUY:1"}``,
#: ``{"image": True}``, ``{"location": [25.03, 121.56]}``.
KINDS = ("text", "payload", "image", "location")


class ConsoleEvent(Event):
    """Bottender's console event: ``{"message": {...}}``, or ``{"payload": DATA}``."""

    platform = "console"
    __slots__ = ()

    @property
    def message(self) -> dict[str, Any] | None:
        message = self.raw.get("message")
        return message if isinstance(message, dict) else None

    @property
    def is_message(self) -> bool:
        return self.message is not None

    @property
    def text(self) -> str | None:
        text = (self.message or {}).get("text")
        return text if isinstance(text, str) else None

    @property
    def is_payload(self) -> bool:
        return isinstance(self.raw.get("payload"), str)

    @property
    def payload(self) -> str | None:
        payload = self.raw.get("payload")
        return payload if isinstance(payload, str) else None

    @property
    def is_image(self) -> bool:
        return (self.message or {}).get("type") == "image"

    @property
    def is_location(self) -> bool:
        return self.location is not None

    @property
    def location(self) -> dict[str, Any] | None:
        message = self.message or {}
        if message.get("type") != "location":
            return None
        return {"latitude": message.get("latitude"), "longitude": message.get("longitude")}


class ConsoleContext(Context):
    platform = "console"

    def __init__(
        self,
        event: Event,
        session: Session | None,
        initial_state: Mapping[str, Any],
        write: Callable[[str], None],
    ) -> None:
        super().__init__(event, session, initial_state)
        self._write = write

    async def send_text(self, text: str, **options: Any) -> None:
        self._write(f"Bot > {text}")

    async def send_image(self, url: str, *, preview_url: str | None = None) -> None:
        """A terminal shows no pictures: the image's URL, so cross-platform bots run here too."""
        self._write(f"Bot > [image] {url}")


def console_event(kind: str, value: Any = None) -> ConsoleEvent:
    if kind == "text":
        return ConsoleEvent({"message": {"text": value}})
    if kind == "payload":
        return ConsoleEvent({"payload": value})
    if kind == "image":
        return ConsoleEvent({"message": {"type": "image"}})
    latitude, longitude = value
    return ConsoleEvent(
        {"message": {"type": "location", "latitude": latitude, "longitude": longitude}}
    )


def _event_maker(platform: str) -> Callable[[str, Any], Event]:
    if platform == "line":
        from bottender.connectors.line_simulated import simulated_event as line_event

        return line_event
    if platform == "telegram":
        from bottender.connectors.telegram_simulated import simulated_event as telegram_event

        return telegram_event
    if platform == "console":
        return console_event
    raise ValueError(f"unknown console platform {platform!r} (choose from {PLATFORMS})")


class ConsoleConnector(Connector):
    """Events come from typed lines rather than a webhook, so nothing is verified."""

    platform = "console"

    def __init__(
        self,
        *,
        initial_state: Mapping[str, Any],
        write: Callable[[str], None],
        platform: str = "console",
        channel: str | None = None,
    ) -> None:
        super().__init__(path="", initial_state=initial_state, channel=channel)
        self._write = write
        self._make_event = _event_maker(platform)
        self.shape = platform
        #: ``console:1``; speaking as a configured channel, ``console:<channel>:1``, so the
        #: console's conversation as one bot never shares state with it as another.
        self.session_id = SESSION_KEY if self.channel == self.platform else f"console:{channel}:1"

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return None

    def parse(self, body: dict[str, Any]) -> list[Event]:
        kinds = [kind for kind in KINDS if kind in body]
        if len(kinds) != 1:
            raise BadRequest(f"a console event has one of {KINDS}")
        kind = kinds[0]
        value = body[kind]
        if kind in ("text", "payload") and not isinstance(value, str):
            raise BadRequest(f"a console {kind} is a string")
        if kind == "location" and not (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise BadRequest("a console location is [latitude, longitude]")
        return [self._make_event(kind, value)]

    def session_key(self, event: Event) -> str | None:
        return self.session_id

    def fill_session(self, session: Session, event: Event) -> None:
        session.user = dict(CONSOLE_USER)

    def create_context(self, event: Event, session: Session | None) -> ConsoleContext:
        return ConsoleContext(event, session, self.initial_state, self._write)
