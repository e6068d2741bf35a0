"""Medians, ratios, target checks and the markdown of bench/RESULTS.md."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

NOTES_FILE = Path(__file__).resolve().parent / "ANALYSIS.md"


def run_line(r: dict[str, Any]) -> str:
    line = (
        f"bench: round {r['round']} {r['target']:<16} {r['platform']:<8} {r['scenario']:<6}"
        f" {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:7.2f} ms"
    )
    if "hot" in r:
        line += f"  hot: {'no update lost' if r['no_loss'] else 'LOST ' + str(r['lost'])}"
    if r.get("wraps"):
        line += f"  (LINE bodies wrapped {r['wraps']}x)"
    return line


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    cases: dict[str, dict[str, Any]] = {}
    for r in data["runs"]:
        key = f"{r['target']}|{r['platform']}|{r['scenario']}"
        cases.setdefault(key, {"runs": []})["runs"].append(r)
    medians: dict[str, dict[str, Any]] = {}
    for key, case in cases.items():
        runs = case["runs"]
        entry: dict[str, Any] = {
            "rps": _median([r["rps"] for r in runs]),
            "p50_ms": _median([r["p50_ms"] for r in runs]),
            "p99_ms": _median([r["p99_ms"] for r in runs]),
            "n": len(runs),
            "errors": sum(sum(r["errors"].values()) for r in runs),
            "wraps": sum(r.get("wraps", 0) for r in runs),
            "foreign_cores": _median([r.get("foreign_cores") for r in runs]),
        }
        if any("hot" in r for r in runs):
            entry["no_loss"] = all(r.get("no_loss") for r in runs)
            entry["lost"] = max(r.get("lost", 0) for r in runs)
            entry["ok"] = [r["ok"] for r in runs]
            entry["send_calls"] = [r["hot"]["send_calls"] for r in runs]
            entry["max_count"] = [r["hot"]["max_count"] for r in runs]
        medians[key] = entry
    peak: dict[str, float | None] = {}
    for name in {s["target"] for s in data["servers"]}:
        peak[name] = _median([s["peak_rss_mb"] for s in data["servers"] if s["target"] == name])

    def rps(target: str, platform: str, scenario: str = "spread") -> float | None:
        entry = medians.get(f"{target}|{platform}|{scenario}")
        return entry["rps"] if entry else None

    def p99(target: str, platform: str, scenario: str = "spread") -> float | None:
        entry = medians.get(f"{target}|{platform}|{scenario}")
        return entry["p99_ms"] if entry else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    ratios: dict[str, float | None] = {}
    for platform in ("telegram", "line"):
        gw = rps("gateway-memory", platform)
        ratios[f"{platform}: gateway-memory / floor2"] = ratio(gw, rps("floor2", platform))
        ratios[f"{platform}: gateway-memory / floor1"] = ratio(gw, rps("floor1", platform))
        ratios[f"{platform}: gateway-memory / bottender"] = ratio(gw, rps("bottender", platform))
        for driver in ("file", "redis", "mongo"):
            ratios[f"{platform}: gateway-{driver} / gateway-memory"] = ratio(
                rps(f"gateway-{driver}", platform), gw
            )
        ratios[f"{platform}: gateway-redis-immediate / gateway-redis"] = ratio(
            rps("gateway-redis-immediate", platform), rps("gateway-redis", platform)
        )
    ratios["telegram: gateway-memory / aiogram"] = ratio(
        rps("gateway-memory", "telegram"), rps("aiogram", "telegram")
    )
    ratios["telegram: gateway-memory / bottender-async"] = ratio(
        rps("gateway-memory", "telegram"), rps("bottender-async", "telegram")
    )
    ratios["telegram hot: gateway-memory / bottender"] = ratio(
        rps("gateway-memory", "telegram", "hot"), rps("bottender", "telegram", "hot")
    )
    ratios["telegram hot: gateway-memory / aiogram"] = ratio(
        rps("gateway-memory", "telegram", "hot"), rps("aiogram", "telegram", "hot")
    )
    ratios = {k: v for k, v in ratios.items() if v is not None}

    checks: list[dict[str, Any]] = []

    def check(
        name: str, value: float | None, goal: float, fmt: str, higher: bool = True, detail: str = ""
    ) -> None:
        if value is None:
            checks.append(
                {"target": name, "status": "not measured", "value": None, "detail": detail}
            )
            return
        met = value >= goal if higher else value <= goal
        checks.append(
            {
                "target": name,
                "status": "met" if met else "missed",
                "value": value,
                "goal": goal,
                "shown": fmt.format(value),
                "detail": detail,
            }
        )

    for platform in ("telegram", "line"):
        check(
            f"{platform} spread, memory >= 60% of floor 2",
            ratios.get(f"{platform}: gateway-memory / floor2"),
            0.60,
            "{:.0%} of floor 2",
        )
        check(
            f"{platform} spread, memory >= 2x Bottender req/s",
            ratios.get(f"{platform}: gateway-memory / bottender"),
            2.0,
            "{:.2f}x",
        )
        gw99, bt99 = p99("gateway-memory", platform), p99("bottender", platform)
        check(
            f"{platform} spread, memory p99 below Bottender's",
            None if gw99 is None or bt99 is None else gw99 / bt99,
            1.0,
            "p99 {:.2f}x Bottender's",
            higher=False,
            detail="" if gw99 is None or bt99 is None else f"{gw99:.1f} ms vs {bt99:.1f} ms",
        )
    check(
        "telegram spread, memory ahead of aiogram",
        ratios.get("telegram: gateway-memory / aiogram"),
        1.0,
        "{:.2f}x aiogram",
    )
    hot = medians.get("gateway-memory|telegram|hot")
    hot_ok = None if hot is None else (1.0 if hot["no_loss"] else 0.0)
    check(
        "hot chat loses no update (every driver)",
        None
        if hot is None
        else min(
            (1.0 if e["no_loss"] else 0.0)
            for k, e in medians.items()
            if k.startswith("gateway-") and k.endswith("|hot")
        ),
        1.0,
        "{:.0f}",
        detail="" if hot_ok is None else "see the hot-chat table",
    )
    for platform in ("telegram", "line"):
        check(
            f"{platform} spread, redis >= 70% of memory",
            ratios.get(f"{platform}: gateway-redis / gateway-memory"),
            0.70,
            "{:.0%} of memory",
        )
    growth = {g["target"]: g for g in data.get("growth", [])}
    top = None
    if "gateway-memory" in growth and growth["gateway-memory"]["steps"]:
        top = growth["gateway-memory"]["steps"][-1]["rss_mb"]
    check("100k memory sessions under 100 MB RSS", top, 100.0, "{:.1f} MB", higher=False)
    return {"medians": medians, "peak_rss_mb": peak, "ratios": ratios, "checks": checks}


def _fmt(value: float | None, spec: str = "{:.0f}") -> str:
    return "-" if value is None else spec.format(value)


def markdown(data: dict[str, Any]) -> str:
    s = data["summary"]
    settings = data["settings"]
    lines: list[str] = []
    add = lines.append
    add("# Benchmark results\n")
    add(
        "Generated by `python -m bench` (bench/harness.py); do not edit by hand — the analysis"
        " at the end comes from bench/ANALYSIS.md.\n"
    )
    add(f"- command: `{data['command']}` (from the repository root, with .venv's python)")
    add(f"- started {data['started']}, took {data['elapsed_s']} s")
    add(
        f"- {settings['runs']} round(s); every number below is the median over rounds;"
        f" {settings['duration']:g} s per measured run after {settings['warmup']:g} s warm-up,"
        f" {settings['connections']} connections, load generator: {settings['loadgen']}"
    )
    machine = data["machine"]
    add(
        f"- machine: {machine.get('cpu', '?')}, {machine.get('cpus')} CPUs,"
        f" {machine.get('memory', '?')}, {machine.get('os', '?')}, kernel {machine.get('kernel')}"
    )
    add("- versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()))
    if data["pinned"]:
        add(
            "- pinning: every server under test runs alone on core 0 (`taskset -c 0`); wrk"
            " (`-t1`), the fake platform API, redis-server / the MongoDB stand-in and the bench"
            " itself share core 1 (`os.sched_setaffinity`, inherited by the children)"
        )
    else:
        add("- pinning: none (taskset missing or fewer than 2 CPUs)")
    add(
        "- servers: the gateway via `bottender start --config bench/.work/bench_config_<driver>.py"
        " --host 127.0.0.1 --port P --log-level warning`"
        " (uvicorn, uvloop, h11 edge protocol, 1 worker);"
        " the floors via the same `uvicorn.run(...)` call (bench/floors.py); Bottender 1.x via"
        " `NODE_ENV=production bottender start` (express); aiogram via aiohttp `web.run_app`"
    )
    add("")

    add("## Throughput and latency\n")
    add(
        "`spread`: Telegram updates over 1,000 chats (unique update_ids) or pre-signed LINE"
        " bodies over 1,000 users (unique webhookEventIds); `hot`: every Telegram update to one"
        " chat. req/s counts 200 answers only. `other CPU`: cores used by processes that are"
        " not the bench's during the run (the machine is shared; a run above 0.2 is waited"
        " for or measured again, and the least disturbed attempt kept).\n"
    )
    add(
        "| target | platform | case | req/s | p50 ms | p99 ms | peak RSS MB | errors | runs"
        " | other CPU |"
    )
    add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    labels = data.get("targets", {})
    for key, e in s["medians"].items():
        target, platform, scenario = key.split("|")
        add(
            f"| {target} | {platform} | {scenario} | {_fmt(e['rps'])}"
            f" | {_fmt(e['p50_ms'], '{:.2f}')}"
            f" | {_fmt(e['p99_ms'], '{:.2f}')} | {_fmt(s['peak_rss_mb'].get(target), '{:.1f}')}"
            f" | {e['errors']} | {e['n']} | {_fmt(e['foreign_cores'], '{:.2f}')} |"
        )
    add("")
    add("Targets: " + "; ".join(f"`{k}` = {v}" for k, v in labels.items()) + ".\n")
    wraps = {k: e["wraps"] for k, e in s["medians"].items() if e["wraps"]}
    if wraps:
        add(
            "LINE bodies wrapped around (re-sent event ids) in: "
            + ", ".join(f"{k} ({v}x)" for k, v in wraps.items())
            + ".\n"
        )

    add("## Ratios (medians, same run)\n")
    add("| ratio | value |")
    add("|---|---:|")
    for name, value in s["ratios"].items():
        add(f"| {name} | {value:.2f} |")
    add("")

    hot_rows = [(k, e) for k, e in s["medians"].items() if k.endswith("|hot")]
    if hot_rows:
        add("## Hot chat: one session, every update\n")
        add(
            "The fake platform records every `Count: n` sent to the hot chat. No update is lost"
            " when the counts are exactly 1..N (no two updates read the same count) and N is at"
            " least the number of 200 answers (it can exceed it by the requests in flight when"
            " wrk stops).\n"
        )
        add("| target | req/s | 200 answers | sendMessage calls | final count | lost | verdict |")
        add("|---|---:|---|---|---|---:|---|")
        for key, e in hot_rows:
            add(
                f"| {key.split('|')[0]} | {_fmt(e['rps'])} | {e['ok']} | {e['send_calls']}"
                f" | {e['max_count']} | {e['lost']} |"
                f" {'no update lost' if e['no_loss'] else '**updates lost**'} |"
            )
        add("")

    if data.get("growth"):
        add("## Memory growth (live sessions, Telegram counting bot)\n")
        add(
            "Distinct chats sent with the built-in Python generator (exact counts), memory store"
            " max_size 200,000; RSS read from /proc after the fake platform saw every reply.\n"
        )
        add(
            "| server | RSS at start MB | "
            + " | ".join(f"RSS at {g['sessions'] // 1000}k MB" for g in data["growth"][0]["steps"])
            + " | MB per 10k sessions | errors |"
        )
        add("|---|---:|" + "---:|" * len(data["growth"][0]["steps"]) + "---:|---:|")
        for g in data["growth"]:
            steps = g["steps"]
            per = None
            if steps and g.get("baseline_rss_mb") is not None:
                per = (steps[-1]["rss_mb"] - g["baseline_rss_mb"]) / (
                    steps[-1]["sessions"] / 10_000
                )
            add(
                f"| {g['target']} | {_fmt(g.get('baseline_rss_mb'), '{:.1f}')} | "
                + " | ".join(_fmt(st["rss_mb"], "{:.1f}") for st in steps)
                + f" | {_fmt(per, '{:.1f}')} | {sum(st['errors'] for st in steps)} |"
            )
        add("")

    add("## Targets\n")
    add("| target | status | measured | goal |")
    add("|---|---|---|---|")
    for c in s["checks"]:
        goal = c.get("goal")
        shown = c.get("shown", "-")
        if c.get("detail"):
            shown += f" ({c['detail']})"
        add(f"| {c['target']} | **{c['status']}** | {shown} | {'' if goal is None else goal} |")
    add("")

    if data["notes"]:
        add("## Notes from this run\n")
        for note in data["notes"]:
            add(f"- {note}")
        add("")
    if NOTES_FILE.is_file() and not settings.get("smoke"):
        add(NOTES_FILE.read_text().strip())
        add("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Rewrite a report from its raw results, e.g. after bench/ANALYSIS.md changed."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("json", type=Path, help="raw results written by a run (RESULTS.json)")
    parser.add_argument("--out", type=Path, help="report to write (default: next to the JSON)")
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text())
    data["summary"] = summarize(data)
    out = args.out or args.json.with_suffix(".md")
    out.write_text(markdown(data))
    print(f"bench: wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
