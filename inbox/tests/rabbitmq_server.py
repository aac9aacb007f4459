"""A throwaway RabbitMQ (Debian's rabbitmq-server) for tests: deploy/cluster/rabbitmq.sh on free ports with its
own node name and data directory. Standard library only, so tests/cluster (the Rasa environment) uses it too."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from tests.free_ports import free_port as free_test_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "cluster" / "rabbitmq.sh"
INSTALLED = Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()


def free_port() -> int:
    """A free port whose Erlang neighbours (port + 20000, + 20001, see rabbitmq.sh) are free as well."""
    return free_test_port(erlang_neighbours=True)


class RabbitMQServer:
    def __init__(self, data_dir: Path, port: int | None = None, log_path: Path | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.user = "kesar"
        self.password = secrets.token_urlsafe(24)
        self.log_path = log_path or data_dir.parent / f"rabbitmq-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"RABBITMQ_DIR": str(self.data_dir), "RABBITMQ_PORT": str(self.port),
                "RABBITMQ_USER": self.user, "RABBITMQ_PASSWORD": self.password}

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/%2F"

    def start(self, timeout: float = 90) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(["bash", str(SCRIPT)], env={**os.environ, **self.env}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_up(timeout)

    def wait_up(self, timeout: float) -> None:
        """Until the AMQP port accepts connections (the broker opens it once it is ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"rabbitmq-server not up after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: RabbitMQ syncs its durable queues and stops)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()
