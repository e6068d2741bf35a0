"""A 3-master Redis Cluster for the bench's ``gateway-redis-cluster`` target.

Three ``redis-server --cluster-enabled yes`` (no replicas: the target compares
the redis driver on one Redis with the same driver spread over three masters),
the slots split in three with ``CLUSTER ADDSLOTS``, joined with ``CLUSTER MEET``.
Ready when every node reports ``cluster_state:ok``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from bench.procs import Proc

MASTERS = 3
SLOTS = 16384


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def start_cluster(
    binary: str, workdir: Path, make_proc: Callable[[str, list[str]], Proc]
) -> tuple[list[Proc], str]:
    """Start and join the masters; the processes and a URL of one node."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = [cluster_port() for _ in range(MASTERS)]
    procs = []
    for index, port in enumerate(ports):
        for stale in workdir.glob(f"nodes-{port}.conf"):
            stale.unlink()
        argv = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{port}.conf",
        ]  # fmt: skip
        procs.append(make_proc(f"cluster-{index}", argv).start())
    for proc, port in zip(procs, ports, strict=True):
        proc.wait_port(port)
    clients = [Redis(host="127.0.0.1", port=port) for port in ports]
    try:
        for index, client in enumerate(clients):
            first, last = index * SLOTS // MASTERS, (index + 1) * SLOTS // MASTERS
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        _wait(
            lambda: all(
                b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients
            )
        )
    finally:
        for client in clients:
            client.close()
    return procs, f"redis://127.0.0.1:{ports[0]}"


def _state_ok(client: Redis) -> bool:
    return b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the bench's Redis Cluster did not reach cluster_state:ok")
