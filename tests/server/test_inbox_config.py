"""Config and command line of the durable inbox: ``ack``, its bound, ``bottender worker``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bottender.server.config import ConfigError, load_config
from tests.fixtures.gateway import write_config

ROOT = Path(__file__).resolve().parents[2]


def telegram(**options: object) -> dict:
    return {"telegram": {"enabled": True, "access_token": "123:T", **options}}


def test_ack_defaults_to_the_deadline(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, app="tests.bots:counter", channels=telegram()))
    assert config.channels["telegram"]["ack"] == "deadline"
    assert config.inbox_max_pending == 1000


def test_a_wrong_ack_names_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, app="tests.bots:counter", channels=telegram(ack="now"))
    with pytest.raises(ConfigError, match=r"channels\.telegram\.ack must be one of"):
        load_config(path)


def test_a_wrong_bound_names_the_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, app="tests.bots:counter", channels={}, server={"inbox_max_pending": 0}
    )
    with pytest.raises(ConfigError, match=r"server\.inbox_max_pending must be a positive"):
        load_config(path)


def test_bottender_worker_refuses_the_memory_store(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, app="tests.bots:counter", session={"driver": "memory"}, channels=telegram()
    )
    done = subprocess.run(
        [sys.executable, "-m", "bottender.server.cli", "worker", "--config", str(config)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "bottender worker needs a shared store" in done.stderr
