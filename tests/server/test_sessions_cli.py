"""``bottender sessions list|show|delete`` on the file, redis and mongo stores; the memory
store is out of another command's reach, and the command says so."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from bottender.server.cli import main
from bottender.server.config import load_config
from bottender.server.stores import build_store
from bottender.sessions.session import Session
from tests.fixtures.gateway import write_config


def store_options(driver: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict:
    if driver == "file":
        return {"dirname": str(tmp_path / "sessions")}
    if driver == "redis":
        return {"url": request.getfixturevalue("redis_server"), "prefix": f"cli-{time.time_ns()}:"}
    url = request.getfixturevalue("mongo_server").rstrip("/")
    return {"url": f"{url}/cli{time.time_ns()}"}


@pytest.fixture(params=["file", "redis", "mongo"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    driver = request.param
    path = write_config(
        tmp_path,
        session={"driver": driver, "stores": {driver: store_options(driver, tmp_path, request)}},
    )
    sessions = [
        Session("line:U1", {"count": 3, "name": "Ada"}, last_activity=1_700_000_000.0),
        Session("telegram:42", {"count": 1, "notes": "x" * 200}, last_activity=1_700_000_060.0),
        Session("line:C9", {"count": 7}),
    ]

    async def seed() -> None:
        store = build_store(load_config(path, need_app=False))
        await store.open()
        try:
            for session in sessions:
                await store.write(session)
        finally:
            await store.close()

    asyncio.run(seed())
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["sessions", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_list_shows_one_line_per_session(config, capsys):
    status, out, err = run(capsys, "list", "--config", config)
    assert status == 0
    lines = sorted(out.splitlines())
    assert lines[0] == 'line:C9\t-\t{"count":7}'
    assert lines[1] == 'line:U1\t2023-11-14T22:13:20Z\t{"count":3,"name":"Ada"}'
    assert lines[2].startswith('telegram:42\t2023-11-14T22:14:20Z\t{"count":1,"notes":"xxx')
    assert lines[2].endswith("…") and len(lines[2].split("\t")[2]) == 80
    assert err.strip() == "3 session(s)"


def test_list_stops_at_the_limit(config, capsys):
    status, out, err = run(capsys, "list", "--limit", "2", "--config", config)
    assert status == 0
    assert len(out.splitlines()) == 2
    assert err.strip() == "2 session(s) (--limit reached; there may be more)"


def test_show_prints_the_whole_session(config, capsys):
    status, out, _ = run(capsys, "show", "telegram:42", "--config", config)
    assert status == 0
    shown = json.loads(out)
    assert shown["state"] == {"count": 1, "notes": "x" * 200}
    assert shown["id"] == "telegram:42"
    assert shown["last_activity_utc"] == "2023-11-14T22:14:20Z"

    status, out, err = run(capsys, "show", "telegram:404", "--config", config)
    assert (status, out) == (1, "")
    assert err.strip() == "bottender: no session 'telegram:404'"


def test_delete_erases_one_session(config, capsys):
    status, out, _ = run(capsys, "delete", "line:U1", "--config", config)
    assert (status, out.strip()) == (0, "deleted session line:U1")
    assert run(capsys, "show", "line:U1", "--config", config)[0] == 1
    _, out, _ = run(capsys, "list", "--config", config)
    assert sorted(line.split("\t")[0] for line in out.splitlines()) == ["line:C9", "telegram:42"]

    status, out, _ = run(capsys, "delete", "line:U1", "--config", config)
    assert (status, out.strip()) == (0, "no session line:U1: nothing to delete")


@pytest.mark.parametrize("action", [["list"], ["show", "line:U1"], ["delete", "line:U1"]])
def test_the_memory_store_cannot_be_reached_from_another_process(action, tmp_path, capsys):
    config = write_config(tmp_path, session={"driver": "memory"})
    status, out, err = run(capsys, *action, "--config", str(config))
    assert (status, out) == (1, "")
    assert "the memory store lives inside the running bot's process" in err
    assert "'file', 'redis' or 'mongo'" in err


def test_a_store_that_is_down_is_named(tmp_path, capsys):
    config = write_config(
        tmp_path,
        session={"driver": "redis", "stores": {"redis": {"url": "redis://127.0.0.1:1/0"}}},
    )
    status, _, err = run(capsys, "list", "--config", str(config))
    assert status == 2
    assert err.startswith("bottender: session store unavailable: cannot reach Redis at")


def test_what_a_bot_saved_is_listed_shown_and_erased(tmp_path, capsys):
    import asyncio

    from bottender.testing import BotTester

    session = {"driver": "file", "stores": {"file": {"dirname": str(tmp_path / "s")}}}
    config = str(write_config(tmp_path, session=session))

    async def chat() -> None:
        async with BotTester(
            "examples.counter:app", initial_state={"count": 0}, session=session
        ) as bot:
            await bot.line_user("U7").says("hi")
            await bot.line_user("U7").says("hi")

    asyncio.run(chat())
    _, out, _ = run(capsys, "list", "--config", config)
    (line,) = out.splitlines()
    assert line.startswith("line:U7\t20") and line.endswith('\t{"count":2}')
    _, out, _ = run(capsys, "show", "line:U7", "--config", config)
    assert json.loads(out)["user"] == {"id": "U7"}
    assert run(capsys, "delete", "line:U7", "--config", config)[:2] == (
        0,
        "deleted session line:U7\n",
    )
    _, out, err = run(capsys, "list", "--config", config)
    assert (out, err.strip()) == ("", "0 session(s)")
