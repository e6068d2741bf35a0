"""The installed wheel has one import name, so a bot project may own ``sessions``/``server``.

The wheel is built and installed (not editable) into a fresh venv. Its dependencies come
from this test run's own site-packages through a ``.pth`` line, which adds the folder
without running the editable install's import hook, so only the wheel provides
``bottender``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pexpect
import pytest

from tests.fixtures.gateway import write_config
from tests.server.conftest import PROJECT_ENV, ROOT, WEBHOOK, http
from tests.server.updates import text_update

TIMEOUT = 30.0

#: A bot whose project has its own modules named like the gateway's floors.
OWN_MODULES = {
    "sessions.py": 'NAME = "own sessions"\n',
    "server.py": 'NAME = "own server"\n',
    "connectors.py": 'NAME = "own connectors"\n',
    "bot.py": textwrap.dedent(
        """
        import connectors
        import server
        import sessions

        from bottender import Context


        async def app(context: Context) -> None:
            await context.send_text(" / ".join([sessions.NAME, server.NAME, connectors.NAME]))
        """
    ),
}
ANSWER = "own sessions / own server / own connectors"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; returns its ``bin`` folder."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = work.glob("bottender_py-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True
    )
    site = Path(
        subprocess.check_output(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            text=True,
        ).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


def top_level_names(bin_dir: Path) -> set[str]:
    site = next((bin_dir.parent / "lib").glob("python3*/site-packages"))
    return {
        path.name
        for path in site.iterdir()
        if not path.name.endswith((".dist-info", ".pth")) and path.name != "__pycache__"
    }


def bot_project(directory: Path, **names) -> Path:
    for name, source in OWN_MODULES.items():
        (directory / name).write_text(source)
    write_config(directory, app="bot:app", **names)
    return directory


def project_env() -> dict[str, str]:
    """The caller's environment without anything that would find the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in (*PROJECT_ENV, "PYTHONPATH", "PORT")}
    env["TERM"] = "dumb"
    return env


def test_only_bottender_is_installed_at_the_top_of_site_packages(installed):
    assert top_level_names(installed) == {"bottender"}


def test_the_floors_and_the_facade_import_from_the_wheel(installed, tmp_path):
    probe = (
        "import bottender, bottender.server.cli, bottender.sessions.redis,"
        " bottender.connectors.line; print(bottender.__file__); print(bottender.Context)"
    )
    out = subprocess.check_output(
        [str(installed / "python"), "-c", probe], cwd=tmp_path, env=project_env(), text=True
    )
    first, second = out.splitlines()
    assert first.startswith(str(installed.parent)) and str(ROOT) not in first
    assert second == "<class 'bottender.connectors.base.Context'>"


def test_a_project_with_its_own_sessions_server_connectors_runs_in_the_console(installed, tmp_path):
    bot_project(tmp_path)
    child = pexpect.spawn(
        str(installed / "bottender"),
        ["start", "--console"],
        cwd=str(tmp_path),
        env=project_env(),
        encoding="utf-8",
        timeout=TIMEOUT,
    )
    try:
        child.expect_exact("You > ")
        child.sendline("hi")
        child.expect(r"Bot > (.*?)\r?\n")
        assert child.match.group(1) == ANSWER
    finally:
        child.terminate(force=True)


def test_a_project_with_its_own_sessions_server_connectors_serves_webhooks(
    installed, tmp_path, fake_platform
):
    from tests.fixtures.tunnels import free_port

    channels = {
        "telegram": {"enabled": True, "access_token": "1:T", "origin": fake_platform.origin}
    }
    bot_project(tmp_path, channels=channels)
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [str(installed / "bottender"), "start", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=project_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if http(url + "/healthz", method="GET", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        assert http(url + WEBHOOK, text_update(1, "hi", chat_id=5)).status == 200
        assert fake_platform.texts() == [ANSWER]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        log.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
