"""The HTTP edge: uvicorn's httptools protocol (before) beside the h11 edge protocol (now).

A short, standalone measurement behind the choice in server/edge.py, not part of
``bench/run.sh``. For each protocol it starts the gateway (counting bot, memory
store, Telegram, the fake platform API of bench/fake_api.py) in its own process
and measures:

* throughput and latency of valid webhooks (bench/loadgen.py, keep-alive), and
* one request with a huge header: how long until the server answered or closed,
  and the server's resident memory before and after it.

    .venv/bin/python -m bench.edge [--seconds 5] [--connections 32] [--header-mib 16]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench import loadgen
from bench.procs import Proc, free_port, wait_port

VARIANTS = {
    "httptools": "uvicorn's httptools protocol, no edge limits (before)",
    "edge": "h11 edge protocol with the default limits (now)",
}


def serve(variant: str, config_path: str, port: int) -> None:
    """The gateway as ``bottender start`` serves it, with or without the edge protocol."""
    import uvicorn

    from bottender.server.app import create_app
    from bottender.server.config import load_config
    from bottender.server.edge import uvicorn_options

    config = load_config(config_path)
    options = uvicorn_options(config.limits) if variant == "edge" else {"http": "httptools"}
    uvicorn.run(
        create_app(config),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        **options,
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def huge_header(port: int, mib: int) -> float:
    """Seconds until a request with a ``mib`` MiB header is answered or its connection closed."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        head = b"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nX-Padding: "
        try:
            sock.sendall(head + b"a" * (mib * 1024 * 1024) + b"\r\nContent-Length: 0\r\n\r\n")
            while sock.recv(65536):
                pass
        except OSError:
            pass
    return time.perf_counter() - started


def measure(variant: str, work: Path, api_port: int, args: argparse.Namespace) -> dict:
    config = work / f"config_{variant}.py"
    config.write_text(
        'app = "examples.counter:app"\n'
        'initial_state = {"count": 0}\n'
        'session = {"driver": "memory", "stores": {"memory": {"max_size": 200000}}}\n'
        'channels = {"telegram": {"enabled": True, "access_token": "1:T",'
        f' "origin": "http://127.0.0.1:{api_port}"}}}}\n'
    )
    port = free_port()
    argv = [sys.executable, "-m", "bench.edge", "--serve", variant, str(config), str(port)]
    proc = Proc(variant, argv, log=work / f"{variant}.log").start()
    try:
        assert wait_port(port), f"{variant} did not start"
        url = f"http://127.0.0.1:{port}/webhooks/telegram"
        loadgen.run_sync(url, loadgen.telegram_bodies(base=1), connections=8, total=200)  # warm
        run = loadgen.run_sync(
            url,
            loadgen.telegram_bodies(base=10_000_000),
            connections=args.connections,
            duration=args.seconds,
        )
        before = rss_kib(proc.pid)
        seconds = huge_header(port, args.header_mib)
        after = rss_kib(proc.pid)
    finally:
        proc.popen.terminate()  # type: ignore[union-attr]
        proc.popen.wait(10)  # type: ignore[union-attr]
    rate = run["requests"] / (run["duration_us"] / 1e6)
    return {
        "variant": VARIANTS[variant],
        "rps": rate,
        "p50_ms": run["latency_us"]["p50"] / 1000,
        "p99_ms": run["latency_us"]["p99"] / 1000,
        "errors": sum(run["errors"].values()),
        "header_s": seconds,
        "rss_mb": (before / 1024, after / 1024),
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--header-mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per protocol")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    api_port = free_port()
    api = Proc(
        "fake_api",
        [sys.executable, "-m", "bench.fake_api", "--port", str(api_port)],
        log=work / "fake_api.log",
    ).start()
    try:
        assert wait_port(api_port), "fake API did not start"
        # Alternated (A B B A…) so a neighbour's load on a shared machine hits both alike.
        order = [
            v for i in range(args.rounds) for v in (list(VARIANTS)[:: 1 if i % 2 == 0 else -1])
        ]
        rows = [measure(variant, work, api_port, args) for variant in order]
    finally:
        api.popen.terminate()  # type: ignore[union-attr]
    print(
        f"| protocol | req/s ({args.connections} conns, {args.seconds:.0f} s) | p50 ms | p99 ms"
        f" | errors | {args.header_mib} MiB header: seconds | RSS MB before -> after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['rps']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f}"
            f" | {row['errors']} | {row['header_s']:.2f} | {row['rss_mb'][0]:.0f} ->"
            f" {row['rss_mb'][1]:.0f} |"
        )


if __name__ == "__main__":
    main()
