"""What every platform's test double shares: users, replies, recorded API calls.

``bottender.testing.BotTester`` (server/testing.py) runs the real gateway in
process; each platform's double (``line_testing.py``, ``telegram_testing.py``)
shapes the webhook bodies its users send, answers the API calls the bot makes
as the platform would, and says which calls are replies to which
conversation. This module holds the platform-free parts.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class ApiCall:
    """One HTTP call the bot made to a platform API."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    #: The decoded body: JSON, multipart fields (files as bytes), or ``None``.
    body: Any
    query: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Answer:
    """What the fake platform answers to an :class:`ApiCall`."""

    status: int = 200
    body: Any = None
    #: Raw bytes (message content, file downloads) instead of JSON.
    content: bytes | None = None
    content_type: str = "application/json"


@dataclass(slots=True, eq=False)
class Reply:
    """One message the bot sent to a conversation.

    ``kind`` is the message type (LINE: ``"text"``, ``"image"``, ``"template"``,
    ``"flex"``...; Telegram: the send method without ``send``, ``"text"`` for
    ``sendMessage``, ``"photo"``...), ``text`` its text (or caption) or ``None``,
    ``raw`` the LINE message object or the Bot API call's parameters.
    """

    kind: str
    text: str | None
    raw: Any

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.text == other
        if isinstance(other, Reply):
            return (self.kind, self.text, self.raw) == (other.kind, other.text, other.raw)
        return NotImplemented

    def __repr__(self) -> str:
        if self.text is not None:
            return f"<{self.kind} {self.text!r}>" if self.kind != "text" else repr(self.text)
        return f"<{self.kind}>"


class Replies(list[Reply]):
    """The replies a conversation got, in order; compares equal to a list of their texts.

    ``user.replies == ["Count: 1"]`` compares texts; its repr is the
    conversation so far, so a failing assertion shows it.
    """

    def __init__(self, replies: Iterable[Reply] = (), transcript: Any = None) -> None:
        super().__init__(replies)
        self._transcript = transcript

    @property
    def texts(self) -> list[str | None]:
        return [reply.text for reply in self]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        replies = "[" + ", ".join(repr(reply) for reply in self) + "]"
        if self._transcript is None:
            return replies
        return f"{replies}\n\nconversation so far:\n{self._transcript()}"


class Tester(Protocol):
    """What a test user needs of the BotTester it belongs to."""

    async def deliver(
        self, user: TestUser, body: bytes, headers: dict[str, str], said: str
    ) -> Replies: ...

    def replies_of(self, conversation: str) -> Replies: ...

    def transcript(self, conversation: str | None = None) -> str: ...


_ids = itertools.count(random.randrange(10**6, 10**9))


def next_id() -> int:
    """A fresh id for messages and updates, unlikely to meet one a shared store recorded."""
    return next(_ids)


class TestUser:
    """Someone talking to the bot in one conversation.

    Each action posts one webhook body, signed as the platform signs it, and
    returns after the bot has handled it, with the replies it sent.
    """

    __test__ = False  # not a pytest test class
    #: The session id of the conversation (``line:U1``, ``telegram:42``).
    conversation: str = ""
    #: How the transcript names this user.
    name: str = "user"

    def __init__(self, tester: Tester) -> None:
        self._tester = tester

    @property
    def replies(self) -> Replies:
        """What the bot sent to this conversation since the start (or the last ``clear()``)."""
        return self._tester.replies_of(self.conversation)

    @property
    def transcript(self) -> str:
        return self._tester.transcript(self.conversation)

    def expect_replies(self, *texts: str | None) -> None:
        """Fail with the conversation so far unless the replies' texts are exactly ``texts``."""
        got = self.replies.texts
        if got != list(texts):
            raise AssertionError(
                f"expected replies {list(texts)!r}, got {got!r}\n\n"
                f"conversation so far:\n{self.transcript}"
            )

    async def says(self, text: str) -> Replies:
        raise NotImplementedError

    async def taps(self, data: str) -> Replies:
        raise NotImplementedError

    async def _send(self, body: bytes, headers: dict[str, str], said: str) -> Replies:
        return await self._tester.deliver(self, body, headers, said)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.conversation}>"


class PlatformDouble(Protocol):
    """One platform as BotTester needs it: credentials, API answers, users."""

    platform: str

    def channel(self, configured: dict[str, Any]) -> dict[str, Any]: ...

    def owns(self, call: ApiCall) -> bool: ...

    def answer(self, call: ApiCall) -> tuple[Answer, list[tuple[str, Reply]]]: ...
