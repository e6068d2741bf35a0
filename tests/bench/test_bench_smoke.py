"""The benchmark's --smoke mode runs end to end and produces numbers.

The test never installs anything (``--no-install``): with wrk on PATH the smoke
run uses it, otherwise the bench's built-in Python load generator. A second
test forces the Python generator, so the fallback is proven wherever wrk is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-install", "--out", str(out), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.is_file()
    data = json.loads(out.with_suffix(".json").read_text())
    data["markdown"] = out.read_text()
    return data


def check_numbers(data: dict, generator: str | None = None) -> None:
    runs = {(r["target"], r["platform"], r["scenario"]): r for r in data["runs"]}
    assert set(runs) >= {
        ("floor1", "telegram", "spread"),
        ("floor2", "telegram", "spread"),
        ("gateway-memory", "telegram", "spread"),
        ("gateway-memory", "telegram", "hot"),
    }
    for run in runs.values():
        assert run["rps"] > 0
        assert run["ok"] > 0
        assert 0 < run["p50_ms"] <= run["p99_ms"]
        assert run["errors"]["status"] == 0
        if generator:
            assert run["generator"] == generator
    hot = runs[("gateway-memory", "telegram", "hot")]
    assert hot["no_loss"], hot
    # every 200 answer of the hot chat is one sendMessage with the next count
    assert hot["hot"]["max_count"] >= hot["ok"]
    ratios = data["summary"]["ratios"]
    assert ratios["telegram: gateway-memory / floor2"] > 0
    assert "| gateway-memory | telegram | spread |" in data["markdown"]


def test_smoke_produces_numbers(tmp_path: Path) -> None:
    check_numbers(run_smoke(tmp_path))


def test_smoke_with_the_python_load_generator(tmp_path: Path) -> None:
    check_numbers(run_smoke(tmp_path, "--loadgen", "python"), generator="python")
