"""The benchmark run: servers, load, verification, medians. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen, report
from bench.payloads import write_line_bodies
from bench.procs import CpuMeter, Proc, free_port, http_get
from bench.redis_cluster import start_cluster
from bench.tools import (
    BENCH,
    MONGO_LAUNCHER,
    ROOT,
    WORK,
    Tools,
    driver_available,
    gather,
    machine_info,
)

TELEGRAM_TOKEN = "123456:BENCH"
LINE_TOKEN = "bench-line-token"
LINE_SECRET = "bench-line-channel-secret"
SPREAD_CHATS = 1000
#: LINE bodies pre-signed per second of a run; a run faster than this re-sends
#: event ids (counted as "wraps" and reported: the gateway answers them as redeliveries).
LINE_BODIES_PER_SECOND = 15000
SERVER_CORE, LOAD_CORE = 0, 1
GROWTH_STEPS = (10_000, 100_000)
GROWTH_MAX_SIZE = 200_000

ALL_DRIVERS = ("memory", "file", "redis", "redis-cluster", "mongo")
#: Other processes using more CPU than this (in cores) make a run noisy: wait, or measure again.
NOISE_CORES = 0.2


@dataclass
class Settings:
    runs: int
    duration: float
    warmup: float
    connections: int
    loadgen: str  # "wrk" or "python"
    smoke: bool
    growth: bool
    quiet_wait: float = 60.0
    retries: int = 2


@dataclass
class Target:
    name: str
    label: str
    #: (platform, scenario) pairs this target is measured on
    cases: tuple[tuple[str, str], ...]
    start: Callable[
        [int, str, int], tuple[Proc, list[Proc]]
    ]  # port, origin, round -> server, backends
    health: str = "/healthz"


class Bench:
    def __init__(self, tools: Tools, settings: Settings, out_dir: Path) -> None:
        self.tools = tools
        self.settings = settings
        #: generated configs, signed bodies, logs, file-driver sessions of this invocation
        self.work = out_dir
        self.logs = out_dir / "logs"
        self.seq = 0
        self.chat_seq = 0
        self.fake: Proc | None = None
        self.fake_origin = ""
        self.runs: list[dict[str, Any]] = []
        self.servers: list[dict[str, Any]] = []
        self.growth: list[dict[str, Any]] = []
        self.notes: list[str] = list(tools.notes)

    # ----------------------------------------------------------------- processes

    def core(self, which: int) -> int | None:
        return which if self.tools.pinned else None

    def proc(self, name: str, argv: list[str], core: int, **kw: Any) -> Proc:
        return Proc(
            name,
            argv,
            log=self.logs / f"{name}.log",
            core=self.core(core),
            taskset=self.tools.taskset,
            **kw,
        )

    def start_fake(self) -> None:
        port = free_port()
        self.fake = self.proc(
            "fake-api",
            [sys.executable, "-m", "bench.fake_api", "--port", str(port)],
            LOAD_CORE,
            cwd=ROOT,
        ).start()
        self.fake.wait_port(port)
        self.fake_origin = f"http://127.0.0.1:{port}"

    def next_chat(self) -> int:
        """A chat id no earlier run used: the hot chat's count starts at 0."""
        self.chat_seq += 1
        return 800_000_000 + self.chat_seq

    def fake_reset(self, watch: int | None = None) -> None:
        http_get(f"{self.fake_origin}/__reset" + (f"?watch={watch}" if watch else ""))

    def fake_stats(self) -> dict[str, Any]:
        return json.loads(http_get(f"{self.fake_origin}/__stats")[1])

    def fake_settle(self, timeout: float = 20.0) -> dict[str, Any]:
        """Stats once the fake has seen no new call for a while (in-flight events finished)."""
        deadline = time.monotonic() + timeout
        last, quiet = None, 0
        while time.monotonic() < deadline:
            stats = self.fake_stats()
            total = sum(stats["calls"].values())
            quiet = quiet + 1 if total == last else 0
            if quiet >= 3:
                return stats
            last = total
            time.sleep(0.15)
        return self.fake_stats()

    # ------------------------------------------------------------------- targets

    def targets(self, only: set[str] | None, peers: bool) -> list[Target]:
        spread_both = (("telegram", "spread"), ("line", "spread"))
        gateway_cases = (("telegram", "spread"), ("line", "spread"), ("telegram", "hot"))
        if self.settings.smoke:
            gateway_cases = (("telegram", "spread"), ("telegram", "hot"))
            spread_both = (("telegram", "spread"),)
        targets = [
            Target(
                "floor1",
                "floor 1 (Starlette, parse JSON, 200)",
                spread_both,
                lambda port, origin, rnd: (self.start_floor(1, port, origin), []),
            ),
            Target(
                "floor2",
                "floor 2 (floor 1 + one pooled aiohttp POST)",
                spread_both,
                lambda port, origin, rnd: (self.start_floor(2, port, origin), []),
            ),
        ]
        for driver in ALL_DRIVERS:
            if self.settings.smoke and driver != "memory":
                continue
            if not driver_available(driver.partition("-")[0]):
                self.note(f"{driver} driver skipped: sessions/{driver}.py does not exist yet")
                continue
            if driver.startswith("redis") and not self.tools.redis_server:
                continue
            if driver == "mongo" and not self.tools.mongo_python:
                continue
            targets.append(
                Target(
                    f"gateway-{driver}",
                    f"gateway, {driver} driver",
                    gateway_cases,
                    lambda port, origin, rnd, d=driver: self.start_gateway(d, port, origin, rnd),
                )
            )
            if driver == "redis":
                # Answers once the durable inbox has the body, runs the bot afterwards.
                targets.append(
                    Target(
                        "gateway-redis-immediate",
                        'gateway, redis driver, ack "immediate"',
                        gateway_cases,
                        lambda port, origin, rnd: self.start_gateway(
                            "redis", port, origin, rnd, ack="immediate"
                        ),
                    )
                )
        if peers and self.tools.bottender_cli:
            targets.append(
                Target(
                    "bottender",
                    "Bottender 1.x (sync: true)",
                    gateway_cases,
                    lambda port, origin, rnd: (self.start_bottender(port, origin, sync=True), []),
                    health="",
                )
            )
            targets.append(
                Target(
                    "bottender-async",
                    "Bottender 1.x (default, answers first)",
                    (("telegram", "spread"),),
                    lambda port, origin, rnd: (self.start_bottender(port, origin, sync=False), []),
                    health="",
                )
            )
        if peers and self.tools.aiogram_python:
            targets.append(
                Target(
                    "aiogram",
                    "aiogram 3 webhook (SimpleRequestHandler)",
                    (("telegram", "spread"), ("telegram", "hot")),
                    lambda port, origin, rnd: (self.start_aiogram(port, origin), []),
                )
            )
        if only:
            targets = [t for t in targets if t.name in only]
        return targets

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def start_floor(self, floor: int, port: int, origin: str) -> Proc:
        return self.proc(
            f"floor{floor}",
            [
                sys.executable,
                "-m",
                "bench.floors",
                "--floor",
                str(floor),
                "--port",
                str(port),
                "--origin",
                origin,
            ],
            SERVER_CORE,
            cwd=ROOT,
        ).start()

    def gateway_command(self) -> list[str]:
        script = Path(sys.executable).parent / "bottender"
        return [str(script)] if script.exists() else [sys.executable, "-m", "bottender.server.cli"]

    def start_gateway(
        self,
        driver: str,
        port: int,
        origin: str,
        rnd: int,
        max_size: int = GROWTH_MAX_SIZE,
        ack: str = "deadline",
    ) -> tuple[Proc, list[Proc]]:
        backends: list[Proc] = []
        store: dict[str, Any]
        if driver == "memory":
            store = {"max_size": max_size}
        elif driver == "file":
            dirname = self.work / f"sessions-file-{rnd}"
            shutil.rmtree(dirname, ignore_errors=True)
            store = {"dirname": str(dirname)}
        elif driver == "redis":
            rport = free_port()
            assert self.tools.redis_server
            redis = self.proc(
                f"redis-{rnd}",
                [
                    self.tools.redis_server,
                    "--port",
                    str(rport),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                LOAD_CORE,
            ).start()
            redis.wait_port(rport)
            backends.append(redis)
            store = {"url": f"redis://127.0.0.1:{rport}/0"}
        elif driver == "redis-cluster":
            assert self.tools.redis_server
            nodes, url = start_cluster(
                self.tools.redis_server,
                self.work / f"cluster-{rnd}",
                lambda name, argv: self.proc(f"{name}-{rnd}", argv, LOAD_CORE),
            )
            backends.extend(nodes)
            store = {"url": url, "cluster": True}
        elif driver == "mongo":
            mport = free_port()
            assert self.tools.mongo_python
            mongo = self.proc(
                f"mongo-{rnd}",
                [
                    str(self.tools.mongo_python),
                    str(MONGO_LAUNCHER),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mport),
                ],
                LOAD_CORE,
            ).start()
            mongo.wait_port(mport)
            backends.append(mongo)
            store = {"url": f"mongodb://127.0.0.1:{mport}/bench", "collection_name": "sessions"}
        else:  # pragma: no cover
            raise ValueError(driver)
        suffix = "" if ack == "deadline" else f"-{ack}"
        config = self.work / f"bench_config_{driver}{suffix}.py"
        config.write_text(gateway_config(driver.partition("-")[0], store, origin, ack))
        argv = [
            *self.gateway_command(),
            "start",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        server = self.proc(f"gateway-{driver}{suffix}", argv, SERVER_CORE, cwd=ROOT).start()
        return server, backends

    def start_bottender(self, port: int, origin: str, *, sync: bool) -> Proc:
        assert self.tools.node and self.tools.bottender_cli
        env = {
            "NODE_ENV": "production",
            "TELEGRAM_ACCESS_TOKEN": TELEGRAM_TOKEN,
            "LINE_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_CHANNEL_SECRET": LINE_SECRET,
            "BENCH_FAKE_ORIGIN": origin,
            "BENCH_BOTTENDER_SYNC": "true" if sync else "false",
            "BENCH_MAX_SIZE": str(GROWTH_MAX_SIZE),
        }
        name = "bottender" if sync else "bottender-async"
        return self.proc(
            name,
            [self.tools.node, str(self.tools.bottender_cli), "start", "--port", str(port)],
            SERVER_CORE,
            cwd=BENCH / "peers" / "bottender",
            env=env,
        ).start()

    def start_aiogram(self, port: int, origin: str) -> Proc:
        assert self.tools.aiogram_python
        return self.proc(
            "aiogram",
            [
                str(self.tools.aiogram_python),
                str(BENCH / "peers" / "aiogram_bot.py"),
                "--port",
                str(port),
                "--origin",
                origin,
                "--token",
                TELEGRAM_TOKEN,
            ],
            SERVER_CORE,
            cwd=ROOT,
        ).start()

    # ---------------------------------------------------------------------- load

    def load(
        self, url: str, platform: str, *, duration: float, watch: int | None
    ) -> dict[str, Any]:
        self.seq += 1
        base = self.seq * 1_000_000_000
        bodies_file = None
        if platform == "line":
            count = max(2000, int(duration * LINE_BODIES_PER_SECOND))
            nonce = f"{self.seq:05d}{secrets.token_hex(4)}"
            bodies_file = write_line_bodies(
                self.work / "line_bodies.tsv", secret=LINE_SECRET, count=count, nonce=nonce
            )
        target = f"{url}/webhooks/{platform}"
        if self.settings.loadgen == "wrk" and self.tools.wrk:
            script = BENCH / "wrk" / f"{platform}.lua"
            env = {
                **os.environ,
                "BENCH_WRK_DIR": str(BENCH / "wrk"),
                "BENCH_UPDATE_BASE": str(base),
                "BENCH_CHATS": str(SPREAD_CHATS),
                "BENCH_CHAT": str(watch or 0),
                "BENCH_PATH": f"/webhooks/{platform}",
                "BENCH_THREADS": "1",
                "BENCH_BODIES": str(bodies_file or ""),
            }
            argv = [
                self.tools.wrk,
                "-t1",
                f"-c{self.settings.connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ]
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
            )
            for line in proc.stdout.splitlines():
                if line.startswith("BENCH_JSON "):
                    result = json.loads(line[len("BENCH_JSON ") :])
                    result["generator"] = "wrk"
                    return result
            raise RuntimeError(f"wrk gave no result: {proc.stdout[-500:]} {proc.stderr[-500:]}")
        if platform == "line":
            assert bodies_file is not None
            bodies: Iterator[loadgen.Body] = loadgen.line_bodies(str(bodies_file))
        else:
            bodies = loadgen.telegram_bodies(base=base, chats=SPREAD_CHATS, hot_chat=watch or 0)
        result = loadgen.run_sync(
            target, bodies, connections=self.settings.connections, duration=duration
        )
        result["generator"] = "python"
        return result

    def wait_quiet(self, pids: list[int]) -> float:
        """Wait (bounded) until other people's processes leave the CPUs alone; seconds waited."""
        waited = 0.0
        while waited < self.settings.quiet_wait:
            if CpuMeter.sample(pids, 1.0) < NOISE_CORES:
                break
            waited += 1.0
        return waited

    def run_case(
        self,
        target: Target,
        url: str,
        platform: str,
        scenario: str,
        rnd: int,
        server: Proc,
        pids: list[int],
    ) -> dict[str, Any]:
        if self.settings.warmup > 0:
            self.load(
                url,
                platform,
                duration=self.settings.warmup,
                watch=self.next_chat() if scenario == "hot" else None,
            )
            self.fake_settle()
        best: dict[str, Any] | None = None
        for attempt in range(1 + self.settings.retries):
            waited = self.wait_quiet(pids)
            record = self.measure(target, url, platform, scenario, rnd, server, pids)
            record["attempt"] = attempt + 1
            record["quiet_wait_s"] = waited
            if best is None or record["foreign_cores"] < best["foreign_cores"]:
                best = record
            if record["foreign_cores"] < NOISE_CORES:
                break
            print(
                f"bench: other processes used {record['foreign_cores']:.2f} cores during the"
                " run; measuring again",
                flush=True,
            )
        assert best is not None
        return best

    def measure(
        self,
        target: Target,
        url: str,
        platform: str,
        scenario: str,
        rnd: int,
        server: Proc,
        pids: list[int],
    ) -> dict[str, Any]:
        hot = self.next_chat() if scenario == "hot" else None
        self.fake_reset(hot)
        with CpuMeter(pids) as meter:
            result = self.load(url, platform, duration=self.settings.duration, watch=hot)
        # Answered first, an "immediate" target drains the hot chat's backlog after the run.
        stats = self.fake_settle(120.0 if target.name.endswith("-immediate") else 20.0)
        ok = result["requests"] - result["errors"]["status"]
        seconds = result["duration_us"] / 1e6
        record: dict[str, Any] = {
            "target": target.name,
            "platform": platform,
            "scenario": scenario,
            "round": rnd,
            "rps": ok / seconds if seconds else 0.0,
            "p50_ms": result["latency_us"]["p50"] / 1000,
            "p99_ms": result["latency_us"]["p99"] / 1000,
            "ok": ok,
            "sent": result["sent"],
            "errors": result["errors"],
            "wraps": result["wraps"],
            "generator": result["generator"],
            "platform_calls": sum(stats["calls"].values()),
            "rss_mb": server.rss_mb(),
            "foreign_cores": round(meter.foreign, 3),
            "bench_cores": round(meter.ours, 3),
        }
        if hot:
            watch = stats["watch"]
            # Every handled update sent "Count: n": the counts must be exactly 1..N (no two
            # updates read the same count) and N must cover every update answered 200.
            record["hot"] = watch
            record["lost"] = (watch["send_calls"] - watch["distinct_counts"]) + max(
                0, ok - watch["send_calls"]
            )
            record["no_loss"] = bool(
                watch["gapless"]
                and watch["max_count"] >= ok
                and watch["max_count"] <= result["sent"]
            )
        return record

    @staticmethod
    def wait_ready(server: Proc, port: int, health: str) -> None:
        """Wait until the server answers; Bottender 1.x has no health route: its port."""
        if health:
            server.wait_http(f"http://127.0.0.1:{port}{health}")
        else:
            server.wait_port(port)

    def run_target(self, target: Target, rnd: int) -> None:
        port = free_port()
        server, backends = target.start(port, self.fake_origin, rnd)
        try:
            self.wait_ready(server, port, target.health)
            pids = [server.pid, *(b.pid for b in backends)]
            if self.fake:
                pids.append(self.fake.pid)
            for platform, scenario in target.cases:
                record = self.run_case(
                    target, f"http://127.0.0.1:{port}", platform, scenario, rnd, server, pids
                )
                self.runs.append(record)
                print(report.run_line(record), flush=True)
            self.servers.append(
                {"target": target.name, "round": rnd, "peak_rss_mb": server.peak_rss_mb()}
            )
        except Exception as exc:  # a target failing must not sink the whole run
            self.note(f"{target.name} (round {rnd}) failed: {exc}".splitlines()[0])
            print(f"bench: {target.name} failed: {exc}", flush=True)
        finally:
            server.stop()
            for backend in backends:
                backend.stop()

    # -------------------------------------------------------------- memory growth

    def run_growth(
        self,
        name: str,
        start: Callable[[int, str], tuple[Proc, list[Proc]]],
        health: str = "/healthz",
    ) -> None:
        port = free_port()
        server, backends = start(port, self.fake_origin)
        url = f"http://127.0.0.1:{port}/webhooks/telegram"
        record: dict[str, Any] = {"target": name, "steps": []}
        try:
            self.wait_ready(server, port, health)
            self.seq += 1
            base = self.seq * 1_000_000_000
            # a few requests on one chat so every lazy import and pool is in place
            loadgen.run_sync(
                url, loadgen.telegram_bodies(base=base, hot_chat=1), connections=4, total=200
            )
            self.fake_settle()
            record["baseline_rss_mb"] = server.rss_mb()
            sessions = 0
            for step in GROWTH_STEPS:
                chat_ids = iter(range(10_000_000 + sessions, 10_000_000 + step))
                self.fake_reset()
                result = loadgen.run_sync(
                    url,
                    loadgen.telegram_bodies(base=base + sessions + 1000, chat_ids=chat_ids),
                    connections=64,
                    total=step - sessions,
                )
                stats = self.fake_settle()
                sessions = step
                errors = sum(result["errors"].values())
                record["steps"].append(
                    {
                        "sessions": step,
                        "rss_mb": server.rss_mb(),
                        "errors": errors,
                        "sent_messages": stats["calls"].get("sendMessage", 0),
                        "requests": result["requests"],
                    }
                )
                print(
                    f"bench: {name}: {step} sessions -> RSS {server.rss_mb():.1f} MB"
                    f" (errors {errors})",
                    flush=True,
                )
            record["peak_rss_mb"] = server.peak_rss_mb()
            self.growth.append(record)
        except Exception as exc:
            self.note(f"memory growth of {name} failed: {exc}".splitlines()[0])
            print(f"bench: growth {name} failed: {exc}", flush=True)
        finally:
            server.stop()
            for backend in backends:
                backend.stop()


def gateway_config(driver: str, store: dict[str, Any], origin: str, ack: str = "deadline") -> str:
    return (
        '"""Generated by the bench (bench/harness.py); overwritten on every run."""\n'
        'app = "examples.counter:app"\n'
        'initial_state = {"count": 0}\n'
        f"session = {{'driver': {driver!r}, 'expires_in': None,"
        f" 'stores': {{{driver!r}: {store!r}}}}}\n"
        "channels = {\n"
        f"    'telegram': {{'enabled': True, 'path': '/webhooks/telegram',"
        f" 'access_token': {TELEGRAM_TOKEN!r}, 'origin': {origin!r}, 'ack': {ack!r}}},\n"
        f"    'line': {{'enabled': True, 'path': '/webhooks/line', 'access_token': {LINE_TOKEN!r},"
        f" 'channel_secret': {LINE_SECRET!r}, 'origin': {origin!r}, 'ack': {ack!r}}},\n"
        "}\n"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds: memory driver and floors, 1 s runs, no peers",
    )
    parser.add_argument("--runs", type=int, default=3, help="repeats; medians are reported")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--only",
        help="comma-separated targets (floor1,floor2,gateway-memory,"
        "gateway-redis,gateway-redis-immediate,bottender,bottender-async,aiogram,...)",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip Bottender and aiogram")
    parser.add_argument("--no-growth", action="store_true", help="skip the memory-growth phase")
    parser.add_argument("--no-install", action="store_true", help="never install anything")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds to wait at most for other processes to go idle before a run",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-measure a run during which other processes were busy",
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--out",
        type=Path,
        help="markdown report (default bench/RESULTS.md;"
        " bench/.work/smoke/RESULTS.md with --smoke)",
    )
    parser.add_argument("--json", type=Path, help="raw results (default next to --out)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    if args.smoke:
        args.runs, args.duration, args.warmup = 1, 1.0, 0.0
        args.no_peers, args.no_growth = True, True
    out = args.out or (WORK / "smoke" / "RESULTS.md" if args.smoke else BENCH / "RESULTS.md")
    json_out = args.json or out.with_suffix(".json")
    # Each invocation works in its own directory, so a smoke test can run beside a full run.
    if args.out and out.resolve().parent != BENCH:
        out_dir = out.parent / f"{out.stem}-work"
    else:
        out_dir = WORK / ("smoke" if args.smoke else "full")
    out_dir.mkdir(parents=True, exist_ok=True)
    tools = gather(install=not args.no_install, peers=not args.no_peers, loadgen=args.loadgen)
    if tools.pinned:
        os.sched_setaffinity(0, {LOAD_CORE})  # wrk, the fake API and stores inherit core 1
    loadgen_name = "python" if args.loadgen == "python" or not tools.wrk else "wrk"
    if args.loadgen == "wrk" and not tools.wrk:
        print("bench: wrk requested but unavailable", file=sys.stderr)
        return 2
    settings = Settings(
        args.runs,
        args.duration,
        args.warmup,
        args.connections,
        loadgen_name,
        args.smoke,
        not args.no_growth,
        quiet_wait=0.0 if args.smoke else args.quiet_wait,
        retries=0 if args.smoke else args.retries,
    )
    bench = Bench(tools, settings, out_dir)
    only = set(args.only.split(",")) if args.only else None
    bench.start_fake()
    try:
        targets = bench.targets(only, peers=not args.no_peers)
        print("bench: targets: " + ", ".join(t.name for t in targets), flush=True)
        for rnd in range(1, args.runs + 1):
            # Rounds interleave the targets, so drift over the run touches all of them alike.
            for target in targets:
                bench.run_target(target, rnd)
        if settings.growth:
            names = {t.name for t in targets}
            if "gateway-memory" in names or not only:
                bench.run_growth(
                    "gateway-memory",
                    lambda port, origin: bench.start_gateway("memory", port, origin, 0),
                )
            if tools.bottender_cli and (not only or "bottender" in names):
                bench.run_growth(
                    "bottender",
                    lambda port, origin: (bench.start_bottender(port, origin, sync=True), []),
                    health="",
                )
            if tools.aiogram_python and (not only or "aiogram" in names):
                bench.run_growth(
                    "aiogram", lambda port, origin: (bench.start_aiogram(port, origin), [])
                )
    finally:
        if bench.fake:
            bench.fake.stop()
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    data = {
        "command": command.strip(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine_info(),
        "versions": tools.versions,
        "pinned": tools.pinned,
        "settings": settings.__dict__,
        "notes": bench.notes,
        "runs": bench.runs,
        "servers": bench.servers,
        "growth": bench.growth,
        "targets": {t.name: t.label for t in targets},
    }
    data["summary"] = report.summarize(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(data, indent=1))
    out.write_text(report.markdown(data))
    print(f"bench: wrote {out} and {json_out} in {data['elapsed_s']} s", flush=True)
    return 0 if bench.runs else 1
