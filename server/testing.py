"""``BotTester``: a bot's real runtime, connectors and store, driven in-process.

Test users post webhook bodies shaped and signed as LINE and Telegram send them
straight into the gateway's Starlette app (an ASGI call, no socket), and the
API clients send through a recording stand-in for aiohttp's ``ClientSession``
that answers as the platforms do (no network, no tokens). So a test exercises
the same verify -> parse -> lock -> bot -> flush -> save path as production.

Failures read as conversations: a bot that raises fails the action with its
exception and the conversation so far; ``user.replies`` shows the
conversation in its repr; and under pytest a failing test gets a "bottender
conversation" section with every tester's transcript.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import copy
import logging
import os
import shutil
import sys
import tempfile
import traceback
import types
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from bottender.connectors.line_testing import LineDouble, LineUser
from bottender.connectors.telegram_testing import TelegramDouble, TelegramUser
from bottender.connectors.testing import Answer, ApiCall, Replies, Reply, TestUser
from bottender.server.config import Config, ConfigError, config_from_module, load_config
from bottender.server.testing_transport import RecordingHttp, asgi_post

__all__ = ["BotError", "BotTester", "Replies", "Reply", "asgi_post"]

#: The tester whose action is running, so errors logged by its events are its own.
_current: contextvars.ContextVar[BotTester | None] = contextvars.ContextVar(
    "bottender_tester", default=None
)
#: Testers of the running test, for the pytest report (server/pytest_plugin.py).
_recent: collections.deque[BotTester] = collections.deque(maxlen=20)


class BotError(AssertionError):
    """The bot raised while handling a test user's action (or the gateway refused it)."""


class BotTester:
    """The bot under test. ``async with BotTester(app) as bot:`` then make users talk.

    ``app`` is an action, a router or ``"module:function"``. ``initial_state``,
    ``driver`` (``"memory"`` by default; ``"file"``, ``"redis"``, ``"mongo"``
    with their options in ``session={"stores": {...}}``) and any other name of
    ``bottender_config.py`` (``session``, ``channels``...) configure it as the
    config file would. Both channels are enabled with test credentials.

    ``raise_errors`` (default ``True``): an action whose bot raised fails
    with :class:`BotError`, unless the config has an ``error_handler`` (what
    it sends is then the bot's answer); either way, and with ``False``, the
    exception is kept in ``bot.errors``.
    """

    __test__ = False

    def __init__(
        self,
        app: Any = None,
        *,
        initial_state: Mapping[str, Any] | None = None,
        driver: str = "memory",
        raise_errors: bool = True,
        **config: Any,
    ) -> None:
        names = dict(config)
        if app is not None:
            names["app"] = app
        if initial_state is not None:
            names["initial_state"] = dict(initial_state)
        session = dict(names.get("session") or {})
        session.setdefault("driver", driver)
        names["session"] = session
        self._names = names
        self._path = Path("<BotTester>")
        self.raise_errors = raise_errors
        self._line = LineDouble()
        self._telegram = TelegramDouble()
        self._doubles = {"line": self._line, "telegram": self._telegram}
        self.http = RecordingHttp(self.record)
        #: Every API call the bot made, in order (replies or not).
        self.calls: list[ApiCall] = []
        #: Every webhook body posted, as (platform, body bytes), in order.
        self.webhooks: list[tuple[str, bytes]] = []
        #: Exceptions the bot raised, in order.
        self.errors: list[BaseException] = []
        self._replies: dict[str, Replies] = {}
        self._log: list[tuple[str, str]] = []
        self._states: dict[str, dict[str, Any]] = {}
        self._app: Any = None
        self._lifespan: Any = None
        self._catcher = _ErrorCatcher(self)
        self._temporary: list[str] = []
        self.config: Config | None = None
        _recent.append(self)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **options: Any) -> BotTester:
        """The bot of ``bottender_config.py`` (working directory, or ``path``), on its store.

        Its channels are replaced by test ones (same paths and options).
        """
        from bottender.server.config import DEFAULT_CONFIG_FILE, _import_config

        config_path = Path(path or DEFAULT_CONFIG_FILE).resolve()
        load_config(config_path)  # .env, sys.path and every check, as `bottender start`
        module = _import_config(config_path)
        names = {k: v for k, v in vars(module).items() if not k.startswith("__")}
        tester = cls(**{**names, **options})
        tester._path = config_path
        return tester

    # --- lifetime --------------------------------------------------------------

    async def __aenter__(self) -> BotTester:
        from bottender.server.app import create_app

        self.config = self._load()
        self._app = create_app(self.config, http=self.http)
        self._lifespan = self._app.router.lifespan_context(self._app)
        await self._lifespan.__aenter__()
        logging.getLogger("bottender").addHandler(self._catcher)
        return self

    async def __aexit__(self, *exc: object) -> None:
        logging.getLogger("bottender").removeHandler(self._catcher)
        lifespan, self._lifespan = self._lifespan, None
        try:
            if lifespan is not None:
                await lifespan.__aexit__(None, None, None)
        finally:
            for directory in self._temporary:
                shutil.rmtree(directory, ignore_errors=True)
            self._temporary.clear()

    def _session_options(self, session: dict[str, Any]) -> dict[str, Any]:
        """The file driver without a ``dirname`` gets a directory of its own, removed on exit,
        rather than ``.session`` in the working directory."""
        if session.get("driver") != "file":
            return session
        stores = dict(session.get("stores") or {})
        file_options = dict(stores.get("file") or {})
        if "dirname" not in file_options:
            directory = tempfile.mkdtemp(prefix="bottender-test-")
            self._temporary.append(directory)
            file_options["dirname"] = directory
        return {**session, "stores": {**stores, "file": file_options}}

    def _load(self) -> Config:
        names = dict(self._names)
        channels = dict(names.get("channels") or {})
        for name, double in self._doubles.items():
            channels[name] = double.channel(dict(channels.get(name) or {}))
        names["channels"] = channels
        names["session"] = self._session_options(names.get("session") or {})
        if isinstance(names.get("app"), str) and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # "examples.counter:app", as the CLI imports it
        module = types.SimpleNamespace(**names)
        try:
            return config_from_module(module, self._path)
        except ConfigError as error:
            raise ConfigError(f"BotTester: {error}") from None

    # --- users -----------------------------------------------------------------

    def line_user(self, user_id: str = "U1") -> LineUser:
        return LineUser(self, self._line, user_id)

    def line_group(self, group_id: str = "C1", *, user: str | LineUser = "U1") -> LineUser:
        user_id = user.user_id if isinstance(user, LineUser) else user
        return LineUser(self, self._line, user_id, group_id)

    def telegram_user(self, user_id: int = 42, **profile: Any) -> TelegramUser:
        return TelegramUser(self, self._telegram, user_id, **profile)

    def telegram_group(
        self, chat_id: int = -100, *, user: int | TelegramUser = 42, **profile: Any
    ) -> TelegramUser:
        user_id = user.user_id if isinstance(user, TelegramUser) else user
        return TelegramUser(self, self._telegram, user_id, chat_id, **profile)

    # --- what happened -------------------------------------------------------------

    def state(self, user: TestUser | str) -> dict[str, Any]:
        """The state saved after the conversation's last event (``initial_state`` before one)."""
        conversation = user if isinstance(user, str) else user.conversation
        if conversation in self._states:
            return copy.deepcopy(self._states[conversation])
        return copy.deepcopy(self.config.initial_state if self.config else {})

    async def read_state(self, user: TestUser | str) -> dict[str, Any] | None:
        """The state in the store now (``None``: no session), e.g. after ``bot.conversation``."""
        conversation = user if isinstance(user, str) else user.conversation
        session = await self.gateway.store.read(conversation)
        return None if session is None else session.state

    @contextlib.asynccontextmanager
    async def conversation(self, session_id: str) -> AsyncIterator[Any]:
        """``Bot.conversation`` on the tester's store: sends are pushes, recorded as replies."""
        self._log.append((session_id, "(bot.conversation outside a webhook)"))
        async with self.bot.conversation(session_id) as context:
            yield context
        session = await self.gateway.store.read(session_id)
        if session is not None:
            self._states[session_id] = session.state

    def client(self, channel: str) -> Any:
        """The channel's API client, sending to the recording platform."""
        return self.bot.client(channel)

    @property
    def gateway(self) -> Any:
        if self._app is None:
            raise RuntimeError("use the tester inside `async with BotTester(...) as bot:`")
        return self._app.state.gateway

    @property
    def bot(self) -> Any:
        """A :class:`~bottender.server.bot.Bot` on the tester's store and recording platform."""
        return self._app.state.bot

    def replies_of(self, conversation: str) -> Replies:
        replies = self._replies.get(conversation)
        if replies is None:
            replies = self._replies[conversation] = Replies(
                transcript=lambda: self.transcript(conversation)
            )
        return replies

    def transcript(self, conversation: str | None = None) -> str:
        lines = [
            line if conversation else f"{where}  {line}"
            for where, line in self._log
            if conversation is None or where == conversation
        ]
        return "\n".join(lines) or "(nothing said yet)"

    # --- the two halves: webhooks in, API calls out -------------------------------

    async def deliver(
        self, user: TestUser, body: bytes, headers: dict[str, str], said: str
    ) -> Replies:
        """Post one webhook body for ``user``; the replies its handling produced."""
        if self._app is None:
            raise RuntimeError("use the tester inside `async with BotTester(...) as bot:`")
        self._log.append((user.conversation, f"{user.name} {said}"))
        replies = self.replies_of(user.conversation)
        before, errors = len(replies), len(self.errors)
        self.webhooks.append((user.platform, body))
        token = _current.set(self)
        try:
            path = self._doubles[user.platform].path
            status, answer = await asgi_post(self._app, path, body, headers)
        finally:
            _current.reset(token)
        session = await self.gateway.store.read(user.conversation)
        if session is not None:
            self._states[user.conversation] = session.state
        if status != 200:
            self._log.append((user.conversation, f"(gateway answered {status}: {answer!r})"))
            raise BotError(
                f"the gateway answered {status} {answer.decode(errors='replace')}"
                f"\n\nconversation so far:\n{self.transcript(user.conversation)}"
            )
        new_errors = self.errors[errors:]
        # With an error_handler, what the user sees after an error is the bot's own behaviour.
        handled = getattr(self.config, "error_handler", None) is not None
        if new_errors and self.raise_errors and not handled:
            error = new_errors[0]
            trace = "".join(traceback.format_exception(error)).rstrip()
            raise BotError(
                f"the bot raised {type(error).__name__}: {error}\n\n{trace}"
                f"\n\nconversation so far:\n{self.transcript(user.conversation)}"
            ) from error
        return Replies(replies[before:], transcript=lambda: self.transcript(user.conversation))

    def record(self, call: ApiCall) -> Answer:
        """Answer one API call as its platform would, noting the replies in it."""
        self.calls.append(call)
        for double in self._doubles.values():
            if double.owns(call):
                answer, replies = double.answer(call)
                for conversation, reply in replies:
                    self.replies_of(conversation).append(reply)
                    shown = reply.text if reply.text is not None else f"[{reply.kind}]"
                    self._log.append((conversation, f"bot: {shown}"))
                return answer
        return Answer(404, {"message": f"no such API: {call.path}"})

    def note_error(self, error: BaseException) -> None:
        self.errors.append(error)
        where = self._log[-1][0] if self._log else "-"
        self._log.append((where, f"bot raised {type(error).__name__}: {error}"))


class _ErrorCatcher(logging.Handler):
    """Collects the exceptions the runtime logs while one of this tester's actions runs."""

    def __init__(self, tester: BotTester) -> None:
        super().__init__(logging.ERROR)
        self._tester = tester

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None and _current.get() is self._tester:
            self._tester.note_error(record.exc_info[1])


# --- for the pytest plugin (server/pytest_plugin.py) ---------------------------------


def forget_recent() -> None:
    """A new test starts: the testers of the previous one are no longer reported."""
    _recent.clear()


def report_sections() -> list[tuple[str, str]]:
    """One "bottender conversation" report section per tester of the test that said anything."""
    return [("bottender conversation", tester.transcript()) for tester in _recent if tester._log]
