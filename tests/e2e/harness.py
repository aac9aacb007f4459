"""The four real services (Rasa, action server, inbox, WhatsApp sandbox) on free ports, with their own data
directory and secrets. Each can be stopped and started again (fault tests)."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import requests
from actions.knowledge_base import copy_knowledge_base
from tests.free_ports import free_port  # noqa: F401  (re-exported to the suites)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    log_path: Path
    start_timeout: float = 180.0
    process: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        log = open(self.log_path, "a")
        log.write(f"\n===== start {self.name} at {time.strftime('%H:%M:%S')} =====\n")
        log.flush()
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def wait_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if requests.get(self.health_url, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not up after {self.start_timeout}s: {self.health_url}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own process group (start_new_session)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class System:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    slack_url: str = ""

    @classmethod
    def configure(cls, data_dir: Path, slack_url: str) -> "System":
        ports = {name: free_port() for name in ("rasa", "actions", "inbox", "sandbox")}
        db = lambda name: f"sqlite:///{data_dir / name}"  # noqa: E731
        endpoints = data_dir / "endpoints.yml"
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{ports["actions"]}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{data_dir / "rasa_tracker.db"}"\n'
            f'event_broker:\n  type: SQL\n  dialect: "sqlite"\n  db: "{data_dir / "rasa_events.db"}"\n'
            "lock_store:\n  type: in_memory\n"
        )
        token = lambda: secrets.token_urlsafe(24)  # noqa: E731
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "WHATSAPP_", "RASA_", "SANDBOX_"))}
        env.update({
            "RASA_JWT_SECRET": token(),
            "INBOX_BOT_TOKEN": token(),
            "INBOX_SESSION_SECRET": token(),
            "INBOX_DEMO_PASSWORD": "demo-" + token()[:10],
            "WHATSAPP_VERIFY_TOKEN": token(),
            "WHATSAPP_APP_SECRET": token(),
            "WHATSAPP_ACCESS_TOKEN": "sandbox-" + token(),
            "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
            "RASA_PORT": str(ports["rasa"]),
            "ACTION_SERVER_PORT": str(ports["actions"]),
            "INBOX_PORT": str(ports["inbox"]),
            "SANDBOX_PORT": str(ports["sandbox"]),
            "RASA_URL": f"http://127.0.0.1:{ports['rasa']}",
            "INBOX_URL": f"http://127.0.0.1:{ports['inbox']}",
            "RASA_EVENTS_DB_URL": db("rasa_events.db"),
            "WHATSAPP_API_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}/v21.0",
            "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{ports['rasa']}/webhooks/whatsapp/webhook",
            "WHATSAPP_STORE_URL": db("whatsapp.db"),
            "DATABASE_URL": db("inbox.db"),
            "INBOX_VAR_DIR": str(data_dir),
            "INBOX_ENV": "development",
            "INBOX_BUSINESS_HOURS": "mon-sun 00:00-24:00",
            "SLACK_WEBHOOK_URL": slack_url,
            # A copy of the knowledge base and escalation.yml that a test may edit while the system runs
            # (the action server reloads them, actions/kb_reload.py).
            "KB_PATH": str(data_dir / "data" / "knowledge_base.yml"),
            "ESCALATION_SETTINGS": str(data_dir / "escalation.yml"),
            "KB_RELOAD_SECONDS": "0.5",
            "ACTION_SERVER_TOKEN": secrets.token_urlsafe(32),
            "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        })
        (data_dir / "data").mkdir(exist_ok=True)
        shutil.copy(ROOT / "escalation.yml", data_dir / "escalation.yml")
        copy_knowledge_base(ROOT / "data" / "knowledge_base.yml", data_dir / "data")
        venv_python = str(ROOT / ".venv" / "bin" / "python")
        system = cls(data_dir=data_dir, env=env, slack_url=slack_url)
        log = lambda name: data_dir / f"{name}.log"  # noqa: E731
        system.services = {
            "actions": Service("actions", [venv_python, "-m", "actions.server", "--dev",
                                           "--port", str(ports["actions"])],
                               f"http://127.0.0.1:{ports['actions']}/health", log("actions")),
            "rasa": Service("rasa", [venv_python, "-m", "connectors.rasa_start", "run", "--enable-api",
                                     # `=`: a secret may start with "-" (token_urlsafe), which argparse
                                     # would take for an option.
                                     f"--jwt-secret={env['RASA_JWT_SECRET']}", "--jwt-method", "HS256",
                                     "--port", str(ports["rasa"]),
                                     "--credentials", "credentials.yml", "--endpoints", str(endpoints),
                                     "--model", "models/kesar-lane.tar.gz"],
                            f"http://127.0.0.1:{ports['rasa']}/", log("rasa")),
            "inbox": Service("inbox", [str(ROOT / "inbox" / ".venv" / "bin" / "python"), "-m", "inbox", "serve"],
                             f"http://127.0.0.1:{ports['inbox']}/login", log("inbox")),
            "sandbox": Service("sandbox", [venv_python, "-m", "whatsapp_sandbox"],
                               f"http://127.0.0.1:{ports['sandbox']}/sandbox/api/config", log("sandbox")),
        }
        return system

    def rasa_headers(self) -> dict[str, str]:
        """Rasa's HTTP API takes an HS256 JWT of role admin (as the inbox's resume call sends it)."""
        token = jwt.encode({"user": {"username": "e2e-tests", "role": "admin"}, "exp": int(time.time()) + 300},
                           self.env["RASA_JWT_SECRET"], algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    def url(self, name: str) -> str:
        return {"rasa": self.env["RASA_URL"], "inbox": self.env["INBOX_URL"],
                "sandbox": f"http://127.0.0.1:{self.env['SANDBOX_PORT']}",
                "actions": f"http://127.0.0.1:{self.env['ACTION_SERVER_PORT']}"}[name]

    def start_all(self) -> None:
        try:
            for service in self.services.values():  # start all at once, then wait: Rasa's start-up dominates
                service.start(self.env)
            for service in self.services.values():
                service.wait_up()
        except BaseException:
            self.stop_all()  # one service that cannot start leaves none of the others running
            raise

    def stop(self, name: str) -> None:
        self.services[name].stop()

    def start(self, name: str) -> None:
        self.services[name].start(self.env)
        self.services[name].wait_up()

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
