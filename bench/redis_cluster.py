"""A 3-master Redis Cluster for the bench's ``gateway-redis-cluster`` target.

Three ``redis-server --cluster-enabled yes`` (no replicas: the target compares
the redis driver on one Redis with the same driver spread over three masters),
the slots split in three with ``CLUSTER ADDSLOTS``, joined with ``CLUSTER MEET``.
Ready when every node reports ``cluster_state:ok``.

The ports come from tests/fixtures/cluster_nodes.py, as for the test suite's
cluster: every node port and bus port (port + 10000) distinct and held until
the nodes listen, so no node starts on a port another node (or anything else)
already has. A cluster that does not settle is reported with each node's
CLUSTER INFO and CLUSTER NODES.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis import Redis

from bench.procs import Proc
from tests.fixtures.cluster_nodes import ReservedPorts, describe, node_pid, poll

MASTERS = 3
SLOTS = 16384
SETTLE_TIMEOUT = 30.0


def start_cluster(
    binary: str, workdir: Path, make_proc: Callable[[str, list[str]], Proc]
) -> tuple[list[Proc], str]:
    """Start and join the masters; the processes and a URL of one node."""
    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[Proc] = []
    try:
        ports = _start_nodes(binary, workdir, make_proc, procs)
        _join(ports)
    except BaseException:
        for proc in procs:
            proc.stop()
        raise
    return procs, f"redis://127.0.0.1:{ports[0]}"


def _start_nodes(
    binary: str, workdir: Path, make_proc: Callable[[str, list[str]], Proc], procs: list[Proc]
) -> list[int]:
    """Start a node on each reserved port (appended to ``procs``); their ports once all listen."""
    reserved = ReservedPorts(MASTERS)
    try:
        for index, port in enumerate(reserved.ports):
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
        for proc, port in zip(procs, reserved.ports, strict=True):
            proc.wait_port(port)
            if node_pid(port) != proc.pid:
                raise RuntimeError(f"{proc.name}: 127.0.0.1:{port} is another process's")
    finally:
        reserved.release()  # every node listens by now (or start-up failed)
    return reserved.ports


def _join(ports: list[int]) -> None:
    """Split the slots among the nodes, introduce them, wait until every one says ok."""
    clients = [Redis(host="127.0.0.1", port=port) for port in ports]
    try:
        for index, client in enumerate(clients):
            first, last = index * SLOTS // MASTERS, (index + 1) * SLOTS // MASTERS
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        outcome = poll(lambda: all(_state_ok(client) for client in clients), SETTLE_TIMEOUT)
        if outcome is not True:
            raise RuntimeError(
                "the bench's Redis Cluster did not reach cluster_state:ok within "
                f"{SETTLE_TIMEOUT:.0f} s (last error: {outcome}):\n{describe(ports)}"
            )
    finally:
        for client in clients:
            client.close()


def _state_ok(client: Redis) -> bool:
    return b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")
