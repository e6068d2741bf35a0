"""Loading ``bottender_config.py``: every mistake is one clear line naming the key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bottender.server.config import (
    METRICS_KEYS,
    SERVER_KEYS,
    SESSION_KEYS,
    ConfigError,
    load_config,
)
from bottender.server.stores import build_store
from tests.fixtures.gateway import write_config
from tests.server.conftest import PROJECT_ENV, ROOT

TELEGRAM = {"enabled": True, "access_token": "123:TEST"}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Run in an empty directory; undo what loading a config does to sys.path and os.environ."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in (*PROJECT_ENV, "GREETING", "TEST_DOTENV_ONLY"):
        monkeypatch.setenv(name, "")  # remembered, so whatever .env sets is undone
        monkeypatch.delenv(name)


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    return message


def test_a_valid_config_is_read_with_defaults_filled_in(tmp_path):
    path = write_config(
        tmp_path,
        app="tests.bots:counter",
        initial_state={"count": 0},
        session={"driver": "memory", "expires_in": 0.5, "stores": {"memory": {"max_size": 9}}},
        channels={"telegram": TELEGRAM, "line": {"enabled": False}},
    )
    config = load_config(path)
    assert config.path == path
    assert config.app_ref == "tests.bots:counter"
    assert config.initial_state == {"count": 0}
    assert (config.driver, config.expires_in) == ("memory", 0.5)
    assert config.store_options == {"max_size": 9}
    assert list(config.channels) == ["telegram"]  # a disabled channel is left out
    assert config.channels["telegram"]["path"] == "/webhooks/telegram"
    assert build_store(config).max_size == 9


def test_without_a_session_key_the_store_is_memory_and_sessions_never_expire(tmp_path):
    config = load_config(write_config(tmp_path, app="tests.bots:counter"))
    assert (config.driver, config.expires_in, config.initial_state) == ("memory", None, {})


@pytest.mark.parametrize(
    ("names", "key"),
    [
        ({"session": {"driver": "postgres"}}, "session.driver"),
        ({"session": {"driver": None}}, "session.driver"),
        (
            {"channels": {"line": {"enabled": True, "access_token": "L"}}},
            "channels.line.channel_secret",
        ),
        (
            {"channels": {"line": {"enabled": True, "channel_secret": "S"}}},
            "channels.line.access_token",
        ),
        ({"channels": {"telegram": {"enabled": True}}}, "channels.telegram.access_token"),
        (
            {"channels": {"telegram": {"enabled": True, "access_token": None}}},
            "channels.telegram.access_token",
        ),
        ({"channels": {"slack": {"enabled": True}}}, "channels.slack"),
        ({"channels": {"telegram": {**TELEGRAM, "secret": "s"}}}, "channels.telegram.secret"),
        (
            {"channels": {"line": {"enabled": False, "channelSecret": "s"}}},
            "channels.line.channelSecret",
        ),
        ({"channels": {"telegram": {**TELEGRAM, "path": "webhooks"}}}, "channels.telegram.path"),
        ({"session": {"expires_in": -1}}, "session.expires_in"),
        ({"session": {"expires_in": 0}}, "session.expires_in"),
        ({"session": {"expires_in": "15"}}, "session.expires_in"),
        ({"session": {"expires_in": True}}, "session.expires_in"),
        ({"session": "memory"}, "session"),
        ({"initial_state": [("count", 0)]}, "initial_state"),
        ({"server": {"max_body_size": 0}}, "server.max_body_size"),
    ],
)
def test_a_config_mistake_is_one_message_naming_the_key(tmp_path, names, key):
    names.setdefault("app", "tests.bots:counter")
    assert key in config_error(write_config(tmp_path, **names))


@pytest.mark.parametrize(
    ("app", "says"),
    [
        ("no_such_module_anywhere:app", "cannot import 'no_such_module_anywhere'"),
        ("tests.bots:no_such_bot", "has no 'no_such_bot'"),
        ("tests.bots", 'must be "module:function"'),
        ("tests.bots:not_async", "must be an action: async def app(context)"),
        (None, "not set"),
    ],
)
def test_an_app_that_cannot_run_is_a_message_naming_app(tmp_path, app, says):
    message = config_error(write_config(tmp_path, app=app))
    assert message.startswith("app")
    assert says in message


def test_an_app_whose_module_fails_to_import_names_app_and_the_error(tmp_path):
    (tmp_path / "broken_bot_module.py").write_text("raise ImportError('missing dependency')\n")
    message = config_error(write_config(tmp_path, app="broken_bot_module:app"))
    assert message.startswith("app") and "missing dependency" in message


def test_the_app_is_imported_relative_to_the_bot_project(tmp_path):
    (tmp_path / "my_project_bot.py").write_text("async def app(context):\n    pass\n")
    assert load_config(write_config(tmp_path, app="my_project_bot:app")).app_ref == (
        "my_project_bot:app"
    )


@pytest.mark.parametrize(
    "value", ["{'seen': set()}", "{'since': datetime.date(2020, 1, 1)}", "{1: 'one'}"]
)
def test_an_initial_state_no_store_could_save_is_a_config_error(tmp_path, value):
    path = tmp_path / "bottender_config.py"
    path.write_text(f'import datetime\napp = "tests.bots:counter"\ninitial_state = {value}\n')
    assert config_error(path).startswith("initial_state")


def test_a_config_file_that_raises_or_does_not_parse_is_named(tmp_path):
    path = tmp_path / "bottender_config.py"
    path.write_text("import os\napp = os.environ['NOT_SET_ANYWHERE_AT_ALL']\n")
    assert str(path) in config_error(path) and "KeyError" in config_error(path)
    path.write_text("app = (\n")
    assert "syntax error" in config_error(path)


def test_a_missing_config_file_is_named(tmp_path):
    assert "config file not found" in config_error(tmp_path / "nope.py")


def test_an_unknown_store_option_is_a_config_error_naming_the_option(tmp_path):
    path = write_config(
        tmp_path, app="tests.bots:counter", session={"stores": {"memory": {"foo": 1}}}
    )
    with pytest.raises(ConfigError, match=r"session\.stores\.memory\.foo"):
        build_store(load_config(path))


def test_bottenders_camel_case_store_options_are_accepted(tmp_path):
    path = write_config(
        tmp_path, app="tests.bots:counter", session={"stores": {"memory": {"maxSize": 3}}}
    )
    assert build_store(load_config(path)).max_size == 3


# --- .env and the environment ------------------------------------------------------------


def test_dotenv_in_the_working_directory_is_loaded_before_the_config(tmp_path):
    (tmp_path / ".env").write_text("GREETING=hello from .env\nTEST_DOTENV_ONLY=1\n")
    path = tmp_path / "bottender_config.py"
    path.write_text(
        "import os\n"
        'app = "tests.bots:counter"\n'
        'initial_state = {"greeting": os.getenv("GREETING")}\n'
    )
    assert load_config(path).initial_state == {"greeting": "hello from .env"}


def test_the_environment_wins_over_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("GREETING=from .env\n")
    monkeypatch.setenv("GREETING", "from the environment")
    path = tmp_path / "bottender_config.py"
    path.write_text(
        'import os\napp = "tests.bots:counter"\ninitial_state = {"g": os.getenv("GREETING")}\n'
    )
    assert load_config(path).initial_state == {"g": "from the environment"}


@pytest.mark.parametrize(("env", "driver"), [("production", "mongo"), ("development", "memory")])
def test_the_projects_config_picks_the_driver_from_bottender_env(monkeypatch, env, driver):
    monkeypatch.setenv("BOTTENDER_ENV", env)
    config = load_config(ROOT / "bottender_config.py")
    assert config.driver == driver  # only the choice: nothing connects to MongoDB here
    assert config.app_ref == "examples.counter:app"
    assert config.initial_state == {"count": 0}


def test_a_bad_session_expires_in_in_the_environment_is_named(tmp_path):
    (tmp_path / ".env").write_text("SESSION_EXPIRES_IN=15m\n")
    assert "SESSION_EXPIRES_IN must be a number of minutes, got '15m'" in config_error(
        ROOT / "bottender_config.py"
    )


def test_the_projects_config_reads_tokens_and_driver_from_dotenv(tmp_path):
    (tmp_path / ".env").write_text(
        "BOTTENDER_ENV=production\nTELEGRAM_ACCESS_TOKEN=123:FROM-DOTENV\nSESSION_EXPIRES_IN=0.5\n"
    )
    config = load_config(ROOT / "bottender_config.py")
    assert config.driver == "mongo"
    assert config.expires_in == 0.5
    assert list(config.channels) == ["telegram"]
    assert config.channels["telegram"]["access_token"] == "123:FROM-DOTENV"


def test_the_projects_config_takes_the_api_origins_from_dotenv(tmp_path):
    (tmp_path / ".env").write_text(
        "TELEGRAM_ACCESS_TOKEN=123:T\nTELEGRAM_API_ORIGIN=http://127.0.0.1:8081\n"
        "LINE_ACCESS_TOKEN=L\nLINE_CHANNEL_SECRET=S\nLINE_API_ORIGIN=http://127.0.0.1:8082\n"
    )
    config = load_config(ROOT / "bottender_config.py")
    assert config.channels["telegram"]["origin"] == "http://127.0.0.1:8081"
    assert config.channels["line"]["origin"] == "http://127.0.0.1:8082"


def test_without_origins_the_projects_config_calls_the_real_apis(tmp_path):
    (tmp_path / ".env").write_text(
        "TELEGRAM_ACCESS_TOKEN=123:T\nLINE_ACCESS_TOKEN=L\nLINE_CHANNEL_SECRET=S\n"
    )
    config = load_config(ROOT / "bottender_config.py")
    assert config.channels["telegram"]["origin"] == "https://api.telegram.org"
    assert config.channels["line"]["origin"] == "https://api.line.me"


def test_dotenv_example_lists_every_variable_the_projects_config_reads():
    read = set(
        re.findall(r"os\.getenv\(\s*\"([A-Z_]+)\"", (ROOT / "bottender_config.py").read_text())
    )
    listed = set(re.findall(r"^# ([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {"LINE_API_ORIGIN", "TELEGRAM_API_ORIGIN"} <= read
    assert read - listed == set()


# --- the bottender command -----------------------------------------------------------------


def bottender(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("bottender")
    argv = [str(command)] if command.exists() else [sys.executable, "-m", "bottender.server.cli"]
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [*argv, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("mode", "names", "key"),
    [
        ([], {"session": {"driver": "postgres"}}, "session.driver"),
        ([], {"channels": {"line": {"enabled": True, "access_token": "L"}}}, "channels.line"),
        ([], {"app": "tests.bots:not_async"}, "app"),
        ([], {"session": {"stores": {"memory": {"foo": 1}}}}, "session.stores.memory.foo"),
        (["--console"], {"session": {"driver": "postgres"}}, "session.driver"),
        (
            ["--console"],
            {"session": {"stores": {"memory": {"foo": 1}}}},
            "session.stores.memory.foo",
        ),
    ],
)
def test_the_command_reports_a_bad_config_in_one_line_and_exits_2(tmp_path, mode, names, key):
    names.setdefault("app", "tests.bots:counter")
    path = write_config(tmp_path, **names)
    done = bottender("start", *mode, "--port", "1", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("bottender:")]
    assert line.startswith("bottender: config error: ")
    assert key in line


@pytest.mark.parametrize(
    ("server", "key", "known"),
    [
        ({"limts": {"max_header_size": 8192}}, "server.limts", SERVER_KEYS),
        ({"max_body_sise": 1024}, "server.max_body_sise", SERVER_KEYS),
        ({"metrics": {"pth": "/metrics"}}, "server.metrics.pth", METRICS_KEYS),
    ],
)
def test_an_unknown_key_under_server_is_one_line_naming_it_and_exits_2(
    tmp_path, server, key, known
):
    """A typo must not leave a limit or the metrics route silently at its default."""
    path = write_config(tmp_path, app="tests.bots:counter", server=server)
    done = bottender("start", "--port", "1", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert [line for line in done.stderr.splitlines() if line.startswith("bottender:")] == [
        f"bottender: config error: {key}: unknown option (choose from {', '.join(known)})"
    ]


def test_an_unknown_key_under_session_is_one_line_naming_it_and_exits_2(tmp_path):
    """``expire_in`` for ``expires_in`` would otherwise keep every session forever."""
    path = write_config(
        tmp_path, app="tests.bots:counter", session={"driver": "memory", "expire_in": 5}
    )
    done = bottender("start", "--port", "1", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("bottender:")] == [
        "bottender: config error: session.expire_in: unknown option"
        f" (choose from {', '.join(SESSION_KEYS)})"
    ]


def test_the_command_without_a_config_file_says_so_and_exits_2(tmp_path):
    done = bottender("start", cwd=tmp_path)
    assert done.returncode == 2
    assert "bottender: config error: config file not found" in done.stderr
    assert "Traceback" not in done.stderr
