"""The console: chat with the bot in a terminal, one conversation, ``console:1``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bottender.connectors.base import BadRequest, Connector, Context, Event
from bottender.sessions.session import Session

SESSION_KEY = "console:1"
CONSOLE_USER = {"id": "1", "name": "you"}


class ConsoleEvent(Event):
    platform = "console"
    __slots__ = ()

    @property
    def text(self) -> str | None:
        text = self.raw.get("message", {}).get("text")
        return text if isinstance(text, str) else None


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

    def __init__(
        self,
        *,
        initial_state: Mapping[str, Any],
        write: Callable[[str], None],
        channel: str | None = None,
    ) -> None:
        super().__init__(path="", initial_state=initial_state, channel=channel)
        self._write = write
        #: ``console:1``; speaking as a configured channel, ``console:<channel>:1``, so the
        #: console's conversation as one bot never shares state with it as another.
        self.session_id = SESSION_KEY if self.channel == self.platform else f"console:{channel}:1"

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return None

    def parse(self, body: dict[str, Any]) -> list[Event]:
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("a console event is a line of text")
        return [ConsoleEvent({"message": {"text": text}})]

    def session_key(self, event: Event) -> str | None:
        return self.session_id

    def fill_session(self, session: Session, event: Event) -> None:
        session.user = dict(CONSOLE_USER)

    def create_context(self, event: Event, session: Session | None) -> ConsoleContext:
        assert isinstance(event, ConsoleEvent)
        return ConsoleContext(event, session, self.initial_state, self._write)
