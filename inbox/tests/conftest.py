"""Fixtures: every database test runs on SQLite, and on PostgreSQL too when TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from starlette.testclient import TestClient

from inbox import migrate
from inbox.context import Inbox
from inbox.db import Database
from inbox.models import Base
from inbox.services import agents as agents_module
from inbox.services import bootstrap
from inbox.services.agents import AgentDirectory, hash_password
from inbox.settings import INBOX_DIR, Settings
from inbox.tests.fakes import GRAPH_TOKEN, PHONE_NUMBER_ID, RASA_JWT_SECRET, FakeExternalServices
from inbox.tests.rasa_events import RasaBrokerTable
from inbox.web.app import create_app

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
# The suite states every setting it needs. scripts/test.sh runs it with the local demo's environment
# (INBOX_DEMO_PASSWORD, DATABASE_URL, RASA_JWT_SECRET…), which must not leak into Settings().
for _name in Settings.model_fields:
    os.environ.pop(_name.upper(), None)
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]
BOT_TOKEN = "test-bot-token"
PASSWORD = "correct-horse-battery"
# A Wednesday, 11:00 in Kolkata: inside the default business hours.
WEDNESDAY_11AM = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
TABLES = [table.name for table in Base.metadata.sorted_tables]  # emptied between PostgreSQL tests


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def external_services():
    services = FakeExternalServices().start()
    yield services
    services.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, tmp_path_factory):
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("template") / "inbox.db"
        database = Database(f"sqlite:///{template}")
        migrate.upgrade(database)
        database.dispose()
        yield "sqlite", template
    else:
        database = Database(POSTGRES_URL)
        migrate.upgrade(database)
        database.dispose()
        yield "postgresql", POSTGRES_URL


@pytest.fixture
def database_url(backend, tmp_path) -> str:
    kind, source = backend
    if kind == "sqlite":
        copy = tmp_path / "inbox.db"
        shutil.copy(source, copy)
        return f"sqlite:///{copy}"
    database = Database(source)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    database.dispose()
    return source


@pytest.fixture
def broker(tmp_path) -> RasaBrokerTable:
    return RasaBrokerTable(tmp_path / "rasa_events.db")


@pytest.fixture
def settings(database_url, tmp_path, external_services, broker) -> Settings:
    return Settings(
        inbox_env="test",
        database_url=database_url,
        inbox_var_dir=tmp_path,
        inbox_bot_token=BOT_TOKEN,
        inbox_session_secret="test-session-secret-that-is-long-enough",
        inbox_public_url="http://inbox.test",
        whatsapp_api_base_url=f"{external_services.url}/v21.0",
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_access_token=GRAPH_TOKEN,
        rasa_url=external_services.url,
        rasa_jwt_secret=RASA_JWT_SECRET,
        slack_webhook_url=f"{external_services.url}/slack",
        kb_path=Path(__file__).parent / "fixtures" / "knowledge_base.yml",
        rasa_events_db_url=broker.url,
        inbox_consumer="off",
        inbox_assignment_config=INBOX_DIR / "config" / "assignment.yml",
        inbox_timezone=None,
        inbox_sla_minutes=None,
        inbox_business_hours=None,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(WEDNESDAY_11AM)


@pytest.fixture
def inbox(settings, clock, external_services):
    external_services.reset()
    instance = Inbox(settings, clock=clock)
    instance.whatsapp.sleep = lambda _seconds: None  # the quick retries of a send do not wait in tests
    bootstrap.prepare(instance)
    yield instance
    instance.close()


@pytest.fixture
def client(inbox):
    with TestClient(create_app(inbox, run_background_workers=False), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing():
    """argon2id at its lowest cost for the tests. The inbox's cost (argon2-cffi's defaults: 3 passes over
    64 MiB) makes each sign-in ~0.1-0.2 s of CPU on purpose, and the suite signs in hundreds of times; what the
    tests check (argon2id hashes, right and wrong passwords, rate limits) does not depend on the cost."""
    original = agents_module._hasher
    agents_module._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    agents_module._dummy_hash.cache_clear()
    yield
    agents_module._hasher = original
    agents_module._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def password_hash(quick_password_hashing) -> str:
    return hash_password(PASSWORD)  # hashed once per test run (the cost is not what the tests are about)


@pytest.fixture
def agents(inbox, password_hash) -> dict[str, int]:
    """anita (Returns), priya (Care, VIP), rahul (Escalations) online; admin Meera away."""
    people = [
        ("anita", "Anita Desai", "she", "agent", ["Returns", "General"], "online"),
        ("priya", "Priya Nair", "she", "agent", ["Care", "VIP"], "online"),
        ("rahul", "Rahul Mehta", "he", "agent", ["Escalations", "General"], "online"),
        ("admin", "Meera Iyer", "she", "admin", ["General"], "away"),
    ]
    ids = {}
    with inbox.db.write() as session:
        directory = AgentDirectory(session)
        for login, name, pronoun, role, teams, status in people:
            ids[login] = directory.create(
                login=login,
                name=name,
                password=PASSWORD,
                password_hash=password_hash,
                role=role,
                pronoun=pronoun,
                teams=teams,
                status=status,
            ).id
    return ids


def csrf_cookie(client: TestClient) -> str:
    return client.cookies.get("csrftoken") or ""


def login(client: TestClient, who: str, password: str = PASSWORD):
    client.get("/login")
    response = client.post("/login", data={"login": who, "password": password, "csrftoken": csrf_cookie(client)})
    return response


def post_form(client: TestClient, url: str, data: dict | None = None, **kwargs):
    return client.post(url, data={**(data or {}), "csrftoken": csrf_cookie(client)}, **kwargs)


def handoff_payload(**overrides) -> dict:
    payload = {
        "handoff_id": "hf_5c1d0e9a4b7f4f1e9a1b2c3d4e5f6a7b",
        "conversation_id": "919876543210",
        "channel": "whatsapp",
        "customer": {"whatsapp_id": "919876543210", "name": "Priya Sharma", "phone_number_id": PHONE_NUMBER_ID},
        "reason": "topic",
        "topic": "refund",
        "tags": ["refund"],
        "priority": "high",
        "summary": "Wants a refund for order #2812 (kurta arrived torn).",
        "order_numbers": ["#2812"],
        "transcript": [
            {"role": "customer", "text": "Hi, my kurta came torn", "timestamp": "2026-11-25T05:24:40Z"},
            {"role": "bot", "text": "Sorry to hear that…", "timestamp": "2026-11-25T05:24:41Z"},
            {"role": "customer", "text": "I want a refund for #2812", "timestamp": "2026-11-25T05:25:02Z"},
        ],
        "requested_at": "2026-11-25T05:25:03Z",
    }
    payload.update(overrides)
    return payload


def post_handoff(client: TestClient, payload: dict | None = None, token: str | None = BOT_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/handoffs", json=payload or handoff_payload(), headers=headers)
