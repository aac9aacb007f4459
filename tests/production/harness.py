"""The production profile (scripts/production.sh: deploy/Procfile.production behind nginx) as real processes on free
ports, with what it needs around it: a throwaway PostgreSQL cluster (tracker store, event broker, inbox and
connector store, each its own database owned by a role with a password), Redis with a password (lock store), a
self-signed certificate for the proxy, and the WhatsApp sandbox playing Meta's Graph API outside the profile (its
webhooks go to the proxy over HTTPS)."""
from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import jwt

from tests.e2e.harness import ROOT, Service, free_port

VENV_PYTHON = str(ROOT / ".venv" / "bin" / "python")
INBOX_PYTHON = str(ROOT / "inbox" / ".venv" / "bin" / "python")
START_POSTGRES = ROOT / "inbox" / "scripts" / "start_test_postgres.sh"
# The environment of the test run that must not leak into the profile (the local demo's settings).
FOREIGN_PREFIXES = ("INBOX_", "WHATSAPP_", "RASA_", "SANDBOX_", "PROXY_", "ACTION_SERVER_", "REDIS_", "SLACK_",
                    "DATABASE_URL", "SSL_CERT_", "REQUESTS_CA_BUNDLE")
AGENTS = {  # login: (name, pronoun, teams)
    "meera": ("Meera Iyer", "she", ["Returns", "Care", "Escalations", "VIP", "General"]),
    "priya": ("Priya Nair", "she", []),
}


def wait_until(condition, timeout: float, what: str, pause: float = 0.3):
    """Polls `condition()` until it returns something truthy (returned) or `timeout` s pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - a service still starting may refuse connections
            last_error = error
        time.sleep(pause)
    raise AssertionError(f"{what} not within {timeout}s (last error: {last_error!r})")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc/<pid>/stat's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # /proc/net/tcp* print each 32-bit word of the address in host (little-endian) order.
    return str(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))


def listening_sockets(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that one of `pids` holds open."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = TCP_LISTEN
                address, port = fields[1].split(":")
                found.add((_address(address), int(port, 16)))
    return found


@dataclass
class PostgresCluster:
    """A throwaway cluster from inbox/scripts/start_test_postgres.sh (trust auth, 127.0.0.1, a free port)."""
    data_dir: Path
    admin_url: str = ""  # postgresql://postgres@127.0.0.1:<port>/postgres

    def start(self) -> None:
        url = subprocess.run(["bash", str(START_POSTGRES)], env={**os.environ, "PG_DATA_DIR": str(self.data_dir)},
                             check=True, capture_output=True, text=True).stdout.strip()
        rest = url.split("@", 1)[1]  # 127.0.0.1:<port>/<db>
        self.admin_url = f"postgresql://postgres@{rest.rsplit('/', 1)[0]}/postgres"

    @property
    def port(self) -> int:
        return int(self.admin_url.rsplit(":", 1)[1].split("/")[0])

    def execute(self, *statements: str) -> None:
        import psycopg2

        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    def pids(self) -> list[int]:
        """The postmaster and its backends (what a pause stops)."""
        return descendants(int((self.data_dir / "postmaster.pid").read_text().split()[0]))

    def stop(self) -> None:
        subprocess.run(["bash", str(START_POSTGRES), "--stop", str(self.data_dir)], capture_output=True)


@dataclass
class ProductionSystem:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value that must never be logged
    passwords: dict[str, str] = field(default_factory=dict)  # agent login -> password
    services: dict[str, Service] = field(default_factory=dict)  # redis, sandbox, profile
    postgres: PostgresCluster | None = None
    ca_file: Path | None = None
    # tracker store, event broker, inbox, connector store: one database each, all owned by role `kesar`
    databases: dict[str, str] = field(default_factory=lambda: {
        name: f"prod_{name}" for name in ("tracker", "events", "inbox", "whatsapp")})

    @classmethod
    def configure(cls, data_dir: Path, slack_url: str) -> "ProductionSystem":
        system = cls(data_dir=data_dir)
        system.ports = {name: free_port() for name in ("rasa", "actions", "inbox", "sandbox", "proxy", "redis")}
        system.postgres = PostgresCluster(Path(subprocess.run(
            ["mktemp", "-d", "/tmp/production-postgres.XXXXXX"], check=True, capture_output=True, text=True
        ).stdout.strip()))
        token = lambda: secrets.token_urlsafe(32)  # noqa: E731
        db_password, redis_password = token(), token()
        # A Slack incoming-webhook URL is itself a secret (its path); the receiver answers any path.
        slack_secret = "T0PROD/B0PROD/" + secrets.token_hex(12)
        system.secrets = {
            "RASA_JWT_SECRET": token(), "ACTION_SERVER_TOKEN": token(), "INBOX_SESSION_SECRET": token(),
            "INBOX_BOT_TOKEN": token(), "WHATSAPP_VERIFY_TOKEN": token(), "WHATSAPP_APP_SECRET": token(),
            "WHATSAPP_ACCESS_TOKEN": "EAAG" + token(), "DB_PASSWORD": db_password, "REDIS_PASSWORD": redis_password,
            "SLACK_WEBHOOK_PATH": slack_secret,
        }
        system.passwords = {login: token() for login in AGENTS}
        databases = system.databases

        ports = system.ports
        base = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
        proxy_url = f"https://127.0.0.1:{ports['proxy']}"
        system.env = {
            **base,
            **{k: v for k, v in system.secrets.items() if k not in ("DB_PASSWORD", "SLACK_WEBHOOK_PATH")},
            "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
            "WHATSAPP_API_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}/v21.0",
            "RASA_PORT": str(ports["rasa"]), "ACTION_SERVER_PORT": str(ports["actions"]),
            "INBOX_PORT": str(ports["inbox"]), "INBOX_PUBLIC_URL": proxy_url,
            "RASA_TRACKER_DB_HOST": "127.0.0.1", "RASA_TRACKER_DB_NAME": databases["tracker"],
            "RASA_TRACKER_DB_USER": "kesar", "RASA_TRACKER_DB_PASSWORD": db_password,
            "RASA_EVENTS_DB_HOST": "127.0.0.1", "RASA_EVENTS_DB_NAME": databases["events"],
            "RASA_EVENTS_DB_USER": "kesar", "RASA_EVENTS_DB_PASSWORD": db_password,
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(ports["redis"]), "REDIS_PASSWORD": redis_password,
            "PROXY_LISTEN": "127.0.0.1", "PROXY_PORT": str(ports["proxy"]), "PROXY_TLS": "on",
            "PROXY_TLS_CERT": str(data_dir / "proxy-cert.pem"), "PROXY_TLS_KEY": str(data_dir / "proxy-key.pem"),
            "PROXY_RUN_DIR": str(data_dir / "proxy"), "PROXY_ACCESS_LOG": str(data_dir / "proxy-access.log"),
            "SLACK_WEBHOOK_URL": slack_url.rsplit("/slack/hook", 1)[0] + "/services/" + slack_secret,
            # Production keeps the real business hours; the tests run at any hour, so the team is always in.
            "INBOX_BUSINESS_HOURS": "mon-sun 00:00-24:00",
        }
        log = lambda name: data_dir / f"{name}.log"  # noqa: E731
        (data_dir / "redis.conf").write_text(
            f"port {ports['redis']}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {redis_password}\n"
            f'save ""\nappendonly no\ndir {data_dir}\ndaemonize no\nlogfile ""\n')
        (data_dir / "redis.conf").chmod(0o600)
        system.services = {
            # Service.wait_up polls HTTP; Redis and the profile's readiness are waited for in start_all.
            "redis": Service("redis", ["redis-server", str(data_dir / "redis.conf")], "", log("redis")),
            "sandbox": Service("sandbox", [VENV_PYTHON, "-m", "whatsapp_sandbox"],
                               f"http://127.0.0.1:{ports['sandbox']}/sandbox/api/config", log("sandbox")),
            "profile": Service("profile", ["bash", "scripts/production.sh"],
                               f"http://127.0.0.1:{ports['rasa']}/", log("profile"), start_timeout=300),
        }
        return system

    # ----- start / stop -------------------------------------------------------------------------------------

    def _make_certificate(self) -> None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", self.env["PROXY_TLS_KEY"], "-out", self.env["PROXY_TLS_CERT"],
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.ca_file = Path(self.env["PROXY_TLS_CERT"])

    def _make_databases(self) -> None:
        self.postgres.start()
        password = self.secrets["DB_PASSWORD"]
        self.postgres.execute(f"CREATE ROLE kesar LOGIN PASSWORD '{password}'",
                              *(f"CREATE DATABASE {name} OWNER kesar" for name in self.databases.values()))
        port = str(self.postgres.port)
        self.env.update({
            "RASA_TRACKER_DB_PORT": port, "RASA_EVENTS_DB_PORT": port,
            "DATABASE_URL": self.database_url("inbox"),
            "RASA_EVENTS_DB_URL": self.database_url("events"),
            "WHATSAPP_STORE_URL": self.database_url("whatsapp", driver="postgresql"),
        })

    def database_url(self, name: str, driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of one of `databases` as the role that owns it (password included)."""
        return (f"{driver}://kesar:{quote(self.secrets['DB_PASSWORD'])}@127.0.0.1:{self.postgres.port}/"
                f"{self.databases[name]}")

    def _create_agents(self) -> None:
        for login, (name, pronoun, teams) in AGENTS.items():
            subprocess.run([INBOX_PYTHON, "-m", "inbox", "create-admin", "--login", login, "--name", name,
                            "--pronoun", pronoun, "--password-stdin", *(f"--team={t}" for t in teams)],
                           input=self.passwords[login] + "\n", env={**self.env, "INBOX_ENV": "production"},
                           cwd=ROOT, check=True, capture_output=True, text=True)

    def start_all(self) -> None:
        self._make_certificate()
        self._make_databases()
        self.services["redis"].start(self.env)
        wait_until(self.redis_ping, 30, "Redis answering PING")
        self.services["sandbox"].start({**self.env, "SANDBOX_PORT": str(self.ports["sandbox"]),
                                        "SANDBOX_WEBHOOK_URL": self.url("proxy") + "/webhooks/whatsapp/webhook",
                                        "SSL_CERT_FILE": str(self.ca_file)})  # trusts our proxy's certificate
        self._create_agents()
        self.services["profile"].start(self.env)
        self.services["sandbox"].wait_up()
        self.services["profile"].wait_up()  # Rasa, the slowest
        verify = {"hub.mode": "subscribe", "hub.verify_token": self.env["WHATSAPP_VERIFY_TOKEN"], "hub.challenge": "42"}
        with self.client() as client:
            wait_until(lambda: client.get("/webhooks/whatsapp/webhook", params=verify).text == "42", 60,
                       "the webhook verification through the proxy")
            wait_until(lambda: client.get("/login").status_code == 200, 60, "the inbox through the proxy")
        with httpx.Client(timeout=5) as direct:
            wait_until(lambda: direct.get(self.url("actions") + "/health").status_code == 200, 120,
                       "the action server")

    def stop_all(self) -> None:
        for name in ("profile", "sandbox", "redis"):
            self.services[name].stop()
        if self.postgres is not None:
            self.postgres.stop()

    # ----- access -------------------------------------------------------------------------------------------

    def url(self, name: str) -> str:
        port = self.ports[name]
        return f"https://127.0.0.1:{port}" if name == "proxy" else f"http://127.0.0.1:{port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, source_address: str | None = None, **kwargs) -> httpx.Client:
        """An HTTPS client of the proxy as a stranger on the internet sees it; `source_address` (e.g. 127.0.0.2)
        makes the connection come from another client address (loopback has the whole 127/8)."""
        transport = httpx.HTTPTransport(verify=self.ssl_context(), local_address=source_address)
        return httpx.Client(base_url=self.url("proxy"), transport=transport, timeout=kwargs.pop("timeout", 30),
                            **kwargs)

    def rasa_headers(self) -> dict[str, str]:
        token = jwt.encode({"user": {"username": "production-tests", "role": "admin"}, "exp": int(time.time()) + 300},
                           self.env["RASA_JWT_SECRET"], algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    def redis_ping(self) -> bool:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.ports["redis"], password=self.env["REDIS_PASSWORD"],
                           socket_timeout=2).ping()

    def profile_pids(self) -> list[int]:
        return descendants(self.services["profile"].process.pid)

    def log_paths(self) -> list[Path]:
        """Every log the system wrote: the profile (all its services, via honcho), the proxy's access log,
        Redis, PostgreSQL. (The sandbox plays Meta and is not part of the profile.)"""
        paths = [self.data_dir / name for name in ("profile.log", "proxy-access.log", "redis.log")]
        paths += sorted(self.postgres.data_dir.glob("*.log")) + sorted(self.postgres.data_dir.glob("log/*"))
        return [path for path in paths if path.is_file()]

    # ----- faults -------------------------------------------------------------------------------------------

    def pids_of(self, name: str) -> list[int]:
        if name == "postgres":
            return self.postgres.pids()
        if name == "redis":
            return descendants(self.services["redis"].process.pid)
        raise ValueError(f"no pause for {name!r} (postgres or redis)")

    @contextlib.contextmanager
    def paused(self, name: str):
        """Freezes PostgreSQL or Redis (SIGSTOP: connections stay open, nothing answers) until the block ends."""
        pids = self.pids_of(name)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
