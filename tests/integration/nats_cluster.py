"""A three-node JetStream cluster on loopback: real nats-server processes with routes between them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from council.common.embedded import EmbeddedNats, free_port, nats_server_binary

__all__ = ["NatsCluster"]


class _Node(EmbeddedNats):
    """One cluster member: an embedded server with a name and routes to the others."""

    def __init__(self, store_dir: Path, name: str, cluster_port: int, routes: list[str]) -> None:
        super().__init__(store_dir)
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes

    def start(self, timeout: float = 15.0) -> _Node:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [
            nats_server_binary(),
            *("-js", "-a", self.host, "-p", str(self.port), "-sd", str(self.store_dir), "-n", self.name),
            *("--cluster_name", "council-test", "--cluster", f"nats://{self.host}:{self.cluster_port}"),
            *("--routes", ",".join(self.routes)),
        ]
        with (self.store_dir / "nats-server.log").open("ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_listening(timeout)
        return self


class NatsCluster:
    """Three routed nodes; ``urls`` lists every client URL, for a client that fails over."""

    def __init__(self, base: Path, size: int = 3) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            _Node(
                base / f"n{i}",
                f"n{i}",
                port,
                [f"nats://127.0.0.1:{other}" for other in cluster_ports if other != port],
            )
            for i, port in enumerate(cluster_ports)
        ]

    @property
    def urls(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self) -> NatsCluster:
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
