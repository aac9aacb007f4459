"""The cluster profile (deploy/cluster/Procfile.cluster) as real processes on free ports, each Procfile line its own
process so that one can be killed and started again: RabbitMQ, Redis, two action servers, two Rasa instances,
two inbox web processes, two event-stream consumers and the nginx load balancer; plus a throwaway PostgreSQL
(tests/production's) and the WhatsApp sandbox playing Meta, whose webhooks go to the load balancer."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from inbox.tests.rabbitmq_server import free_port as rabbitmq_free_port
from tests.e2e.harness import ROOT, Service, free_port
from tests.production.harness import FOREIGN_PREFIXES, VENV_PYTHON, PostgresCluster, wait_until

PROCFILE = ROOT / "deploy" / "cluster" / "Procfile.cluster"
DATABASES = {"tracker": "cluster_tracker", "inbox": "cluster_inbox", "whatsapp": "cluster_whatsapp"}


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """name -> command of each Procfile line."""
    lines = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([a-z0-9]+): (.+)$", line)
        if match:
            lines[match.group(1)] = match.group(2)
    return lines


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class ClusterSystem:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    postgres: PostgresCluster | None = None
    demo_password: str = ""

    @classmethod
    def configure(cls, data_dir: Path) -> ClusterSystem:
        system = cls(data_dir=data_dir)
        names = ("lb", "sandbox", "rasa1", "rasa2", "actions1", "actions2", "inbox1", "inbox2", "lb_rasa",
                 "lb_inbox", "lb_actions", "redis")
        ports = system.ports = {name: free_port() for name in names}
        ports["rabbitmq"] = rabbitmq_free_port()
        system.postgres = PostgresCluster(Path(subprocess.run(
            ["mktemp", "-d", "/tmp/cluster-postgres.XXXXXX"], check=True, capture_output=True, text=True
        ).stdout.strip()))
        token = lambda: secrets.token_urlsafe(24)  # noqa: E731
        system.demo_password = "demo-" + token()[:10]
        rabbitmq_password, redis_password = token(), token()
        base = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
        url = lambda port: f"http://127.0.0.1:{port}"  # noqa: E731
        system.env = {
            **base,
            "CLUSTER_DIR": str(data_dir), "RASA_MODEL": "models/kesar-lane.tar.gz",
            "RASA_JWT_SECRET": token(), "ACTION_SERVER_TOKEN": token(), "INBOX_BOT_TOKEN": token(),
            "INBOX_SESSION_SECRET": token(), "INBOX_DEMO_PASSWORD": system.demo_password,
            "WHATSAPP_VERIFY_TOKEN": token(), "WHATSAPP_APP_SECRET": token(),
            "WHATSAPP_ACCESS_TOKEN": "sandbox-" + token(), "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
            "WHATSAPP_API_BASE_URL": f"{url(ports['sandbox'])}/v21.0",
            "SANDBOX_PORT": str(ports["sandbox"]),
            "SANDBOX_WEBHOOK_URL": f"{url(ports['lb'])}/webhooks/whatsapp/webhook",
            "RASA_PORT_1": str(ports["rasa1"]), "RASA_PORT_2": str(ports["rasa2"]),
            "ACTION_SERVER_PORT_1": str(ports["actions1"]), "ACTION_SERVER_PORT_2": str(ports["actions2"]),
            "INBOX_PORT_1": str(ports["inbox1"]), "INBOX_PORT_2": str(ports["inbox2"]),
            "LB_PORT": str(ports["lb"]), "LB_RASA_PORT": str(ports["lb_rasa"]),
            "LB_INBOX_PORT": str(ports["lb_inbox"]), "LB_ACTIONS_PORT": str(ports["lb_actions"]),
            "RASA_PORTS": f"{ports['rasa1']} {ports['rasa2']}", "INBOX_PORTS": f"{ports['inbox1']} {ports['inbox2']}",
            "ACTION_SERVER_PORTS": f"{ports['actions1']} {ports['actions2']}",
            "RASA_URL": url(ports["lb_rasa"]), "INBOX_URL": url(ports["lb_inbox"]),
            "ACTION_SERVER_URL": f"{url(ports['lb_actions'])}/webhook",
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(ports["redis"]), "REDIS_PASSWORD": redis_password,
            "REDIS_LOCK_DB": "0",
            "RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_PORT": str(ports["rabbitmq"]), "RABBITMQ_USER": "kesar",
            "RABBITMQ_PASSWORD": rabbitmq_password, "RABBITMQ_DIR": str(data_dir / "rabbitmq"),
            "RABBITMQ_URL": f"amqp://kesar:{quote(rabbitmq_password)}@127.0.0.1:{ports['rabbitmq']}/%2F",
            "INBOX_ENV": "development", "INBOX_CONSUMER": "off", "INBOX_EVENT_BROKER": "rabbitmq",
            "INBOX_VAR_DIR": str(data_dir), "INBOX_PUBLIC_URL": url(ports["lb"]),
            "INBOX_BUSINESS_HOURS": "mon-sun 00:00-24:00",
            "KB_PATH": str(ROOT / "data" / "knowledge_base.yml"),
            "PROXY_TLS": "off", "PROXY_LISTEN": "127.0.0.1", "PROXY_PORT": str(ports["lb"]),
            "PROXY_SERVER_NAME": "_", "PROXY_RUN_DIR": str(data_dir / "lb"),
            "PROXY_ACCESS_LOG": str(data_dir / "lb-access.log"),
            "PROXY_NGINX": shutil.which("nginx") or "/usr/sbin/nginx",
            "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        }
        (data_dir / "redis.conf").write_text(
            f"port {ports['redis']}\nbind 127.0.0.1\nrequirepass {redis_password}\n"
            f'save ""\nappendonly no\ndir {data_dir}\ndaemonize no\nlogfile ""\n')
        (data_dir / "redis.conf").chmod(0o600)
        health = {
            "actions1": f"{url(ports['actions1'])}/health", "actions2": f"{url(ports['actions2'])}/health",
            "rasa1": f"{url(ports['rasa1'])}/", "rasa2": f"{url(ports['rasa2'])}/",
            "inbox1": f"{url(ports['inbox1'])}/login", "inbox2": f"{url(ports['inbox2'])}/login",
            "lb": f"{url(ports['lb'])}/login",
        }
        for name, command in procfile().items():
            # `exec`: the service is the process itself, so a kill hits it and not only a shell around it.
            system.services[name] = Service(name, ["bash", "-c", f"exec {command}"], health.get(name, ""),
                                            data_dir / f"{name}.log", start_timeout=420)
        system.services["sandbox"] = Service("sandbox", [VENV_PYTHON, "-m", "whatsapp_sandbox"],
                                             f"{url(ports['sandbox'])}/sandbox/api/config",
                                             data_dir / "sandbox.log")
        return system

    # ----- start / stop -------------------------------------------------------------------------------------

    def _make_databases(self) -> None:
        self.postgres.start()
        self.postgres.execute(*(f"CREATE DATABASE {name}" for name in DATABASES.values()))
        port = self.postgres.port
        self.env.update({
            "RASA_TRACKER_DB_HOST": "127.0.0.1", "RASA_TRACKER_DB_PORT": str(port),
            "RASA_TRACKER_DB_NAME": DATABASES["tracker"], "RASA_TRACKER_DB_USER": "postgres",
            "RASA_TRACKER_DB_PASSWORD": secrets.token_urlsafe(12),  # trust authentication
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASES['inbox']}",
            "WHATSAPP_STORE_URL": f"postgresql://postgres@127.0.0.1:{port}/{DATABASES['whatsapp']}",
        })

    def start_all(self) -> None:
        self._make_databases()
        subprocess.run([VENV_PYTHON, "deploy/cluster/render_lb.py"], env=self.env, cwd=ROOT, check=True,
                       capture_output=True)
        self.start("redis")
        self.start("rabbitmq")
        prepared = subprocess.run(["bash", "deploy/cluster/prepare.sh"], env=self.env, cwd=ROOT,
                                  capture_output=True, text=True)
        assert prepared.returncode == 0, prepared.stdout[-2000:] + prepared.stderr[-3000:]
        later = [name for name in self.services if name not in ("redis", "rabbitmq")]
        for name in later:
            self.services[name].start(self.env)
        for name in later:
            self.wait_up(name)

    def start(self, name: str) -> None:
        self.services[name].start(self.env)
        self.wait_up(name)

    def wait_up(self, name: str) -> None:
        service = self.services[name]
        if service.health_url:
            service.wait_up()
        elif name in ("redis", "rabbitmq"):
            wait_until(lambda: port_open(self.ports[name]), 120, f"{name} accepting connections")
        else:  # the consumers: running is all they show
            assert service.running, f"{name} exited; see {service.log_path}"

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up at all, as when a machine or a process dies."""
        service = self.services[name]
        os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait(timeout=30)

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"
