"""The console: chat with the bot in a terminal, one conversation, ``console:1``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bottender.connectors.base import BadRequest, Connector, Context, Event
from bottender.sessions.session import Session

SESSION_KEY = "console:1"
CONSOLE_USER = {"id": "1", "name": "you"}


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
        event: ConsoleEvent,
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


class ConsoleConnector(Connector):
    """Events come from typed lines rather than a webhook, so nothing is verified."""

    platform = "console"

    def __init__(self, *, initial_state: Mapping[str, Any], write: Callable[[str], None]) -> None:
        super().__init__(path="", initial_state=initial_state)
        self._write = write

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return None

    def parse(self, body: dict[str, Any]) -> list[Event]:
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("a console event is a line of text")
        return [ConsoleEvent({"message": {"text": text}})]

    def session_key(self, event: Event) -> str | None:
        return SESSION_KEY

    def fill_session(self, session: Session, event: Event) -> None:
        session.user = dict(CONSOLE_USER)

    def create_context(self, event: Event, session: Session | None) -> ConsoleContext:
        assert isinstance(event, ConsoleEvent)
        return ConsoleContext(event, session, self.initial_state, self._write)
