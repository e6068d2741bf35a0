"""A third platform, in one module, to show that adding one touches no file of server/.

Its webhook body is ``{"id": ..., "user": ..., "text": ...}`` authenticated by an
``X-Echo-Key`` header; what the bot sends and what the webhook commands do are
recorded in :data:`SENT` and :data:`ADMIN_CALLS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, ClassVar

from bottender.connectors.admin import ChannelAdmin
from bottender.connectors.base import REQUIRED, BadRequest, Connector, Context, Event
from bottender.sessions.session import Session

#: (channel, user, text) of every message the bot sent.
SENT: list[tuple[str, str, str]] = []
#: (channel, action, url, key) of every webhook command.
ADMIN_CALLS: list[tuple[str, str, str | None, str]] = []


class EchoEvent(Event):
    platform = "echo"
    __slots__ = ()

    @property
    def text(self) -> str | None:
        return self.raw.get("text")

    @property
    def delivery_id(self) -> str | None:
        return f"echo:{self.raw['id']}"


class EchoContext(Context):
    platform = "echo"

    async def send_text(self, text: str, **options: Any) -> None:
        SENT.append((self.channel, self.event.raw["user"], text))


class EchoAdmin(ChannelAdmin):
    actions: ClassVar[dict[str, str]] = {"set": "point the platform at the webhook"}

    @classmethod
    def add_arguments(cls, action: str, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--loud", action="store_true")

    async def run(
        self, action: str, args: argparse.Namespace, url: str | None
    ) -> tuple[bool, list[str]]:
        ADMIN_CALLS.append((self.name, action, url, self.settings["key"]))
        return True, [f"Echo webhook set: {url}" + (" (loud)" if args.loud else "")]

    async def register(self, url: str) -> list[str]:
        ADMIN_CALLS.append((self.name, "register", url, self.settings["key"]))
        return [f"Echo webhook set: {url}"]


class EchoConnector(Connector):
    platform = "echo"
    display_name = "Echo"
    options: ClassVar[Mapping[str, Any]] = {"key": REQUIRED, "shout": False}
    env_names: ClassVar[Mapping[str, str]] = {"key": "ECHO_KEY"}
    default_deadline = 5.0
    admin_class = EchoAdmin

    def __init__(
        self,
        *,
        path: str,
        initial_state: Mapping[str, Any],
        key: str,
        shout: bool = False,
        channel: str | None = None,
    ) -> None:
        super().__init__(path=path, initial_state=initial_state, channel=channel)
        self.key = key

    def verify(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return None if headers.get("x-echo-key") == self.key else "wrong X-Echo-Key"

    def parse(self, body: dict[str, Any]) -> list[Event]:
        if not isinstance(body.get("user"), str) or not isinstance(body.get("id"), str):
            raise BadRequest("an echo body has a user and an id")
        return [EchoEvent(body)]

    def session_key(self, event: Event) -> str | None:
        return self.scoped(f"echo:{event.raw['user']}")

    def create_context(self, event: Event, session: Session | None) -> Context:
        return EchoContext(event, session, self.initial_state)
