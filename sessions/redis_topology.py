"""Which Redis the driver talks to: one server, a Redis Cluster, or a Sentinel-watched master.

The session scripts are the same on all three; what differs is how a client
finds the node that owns a key, and what it does when that node fails over:

* one server: ``url`` or ``host``/``port``/``password``/``db``;
* Redis Cluster: ``cluster=True`` with ``url`` (any node), or ``startup_nodes``
  (``[["10.0.0.1", 7000], ...]``). redis-py's ``RedisCluster`` maps each key's
  slot to its master, follows MOVED/ASK, and re-reads the slot map after a
  failover;
* Sentinel: ``sentinels=[[host, port], ...]`` and ``service_name``. Every new
  connection asks the sentinels for the current master, and a connection to a
  master that was demoted (READONLY) is dropped, so a failover is followed on
  the next try.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from bottender.sessions.leases import redact_url

#: How many times redis-py re-reads the cluster's slot map and resends a batch
#: that failed on a lost connection or CLUSTERDOWN, before the event gets its 503.
CLUSTER_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Topology:
    """The connection settings of a RedisStore, checked once at construction."""

    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = None
    db: int = 0
    cluster: bool = False
    startup_nodes: tuple[tuple[str, int], ...] = ()
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    sentinel_password: str | None = None

    @classmethod
    def of(
        cls,
        *,
        startup_nodes: Sequence[Sequence[Any]] | None,
        sentinels: Sequence[Sequence[Any]] | None,
        **settings: Any,
    ) -> Topology:
        topology = cls(
            startup_nodes=_addresses(startup_nodes, "startup_nodes"),
            sentinels=_addresses(sentinels, "sentinels"),
            **settings,
        )
        topology._check()
        return topology

    def _check(self) -> None:
        if self.startup_nodes and not self.cluster:
            object.__setattr__(self, "cluster", True)  # startup_nodes only make sense there
        if self.cluster and self.sentinels:
            raise ValueError("choose either cluster/startup_nodes or sentinels, not both")
        if self.sentinels and not self.service_name:
            raise ValueError("sentinels need service_name (the name the sentinels monitor)")
        if self.service_name and not self.sentinels:
            raise ValueError("service_name needs sentinels ([[host, port], ...])")
        if self.cluster and self.db:
            raise ValueError("a Redis Cluster has only db 0")

    @property
    def kind(self) -> str:
        return "cluster" if self.cluster else "sentinel" if self.sentinels else "single"

    @property
    def display(self) -> str:
        """Where the store is, for messages and logs (password hidden)."""
        if self.sentinels:
            where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"redis+sentinel://{where}/{self.service_name}"
        if self.startup_nodes and not self.url:
            where = ",".join(f"{host}:{port}" for host, port in self.startup_nodes)
            return f"redis+cluster://{where}"
        if self.url:
            return redact_url(self.url) + (" (cluster)" if self.cluster else "")
        return f"redis://{self.host}:{self.port}/{self.db}" + (" (cluster)" if self.cluster else "")

    def connect(self, **options: Any) -> Redis | RedisCluster:
        """A client for this topology; nothing is contacted until its first command."""
        if self.cluster:
            return self._cluster(options)
        if self.sentinels:
            sentinel = Sentinel(
                list(self.sentinels),
                sentinel_kwargs={
                    "password": self.sentinel_password,
                    "socket_connect_timeout": options["socket_connect_timeout"],
                    "socket_timeout": options["socket_timeout"],
                },
            )
            return sentinel.master_for(
                self.service_name, password=self.password, db=self.db, **options
            )
        if self.url:
            return Redis.from_url(self.url, **options)
        return Redis(host=self.host, port=self.port, password=self.password, db=self.db, **options)

    def _cluster(self, options: dict[str, Any]) -> RedisCluster:
        options = {k: v for k, v in options.items() if k != "retry"}
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=CLUSTER_RETRIES)
        if self.startup_nodes:
            nodes = [ClusterNode(host, port) for host, port in self.startup_nodes]
            if self.url:
                parts = urlsplit(self.url)
                nodes.insert(0, ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379))
            return RedisCluster(startup_nodes=nodes, password=self.password, retry=retry, **options)
        if self.url:
            return RedisCluster.from_url(self.url, retry=retry, **options)
        return RedisCluster(
            host=self.host, port=self.port, password=self.password, retry=retry, **options
        )


def _addresses(value: Sequence[Sequence[Any]] | None, name: str) -> tuple[tuple[str, int], ...]:
    """``[["host", port], "host:port", ...]`` as ``((host, port), ...)``; a clear error if not."""
    if not value:
        return ()
    if isinstance(value, str):
        value = [value]
    found = []
    for item in value:
        if isinstance(item, str):
            host, _, port = item.rpartition(":")
            item = (host, port)
        try:
            host, port = item
            found.append((str(host), int(port)))
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected [host, port] pairs, got {item!r}") from None
    return tuple(found)
