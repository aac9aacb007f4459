"""Fixtures for the WhatsApp connector tests: real processes talking real HTTP.

- `sandbox`: the WhatsApp sandbox (`python -m whatsapp_sandbox`) playing Meta.
- `host`: the connector in a Sanic server (tests/connector/host_app.py) with a scripted bot,
  sending through the sandbox and forwarding statuses to `inbox` (a recording HTTP server).
Each test uses its own customer numbers, so one set of processes serves the whole session.
- `rasa`: a real `rasa run` with this connector, the sandbox and the action server
  (tests/connector/rasa_server.py), started once for the session's Rasa tests, in a thread as soon as
  collection shows a test needs it (`EarlyRasa`), so the model loads while the tests before it run.
- `store_url`: a fresh, empty database for the WhatsApp store, once on SQLite and once on
  PostgreSQL (a new database on the server in TEST_POSTGRES_URL; scripts/test.sh starts one and
  sets WHATSAPP_REQUIRE_POSTGRES=1, so in CI a missing server fails instead of skipping).
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.connector.rasa_server import RasaServer, running_rasa
from tests.connector.support import (
    Host,
    Process,
    RecordingInbox,
    SandboxClient,
    free_port,
    python_env,
    start_host,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = os.environ.get("TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("WHATSAPP_REQUIRE_POSTGRES") == "1":
            pytest.fail("WHATSAPP_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL (TEST_POSTGRES_URL) for the store tests")
    server_url = make_url(server).set(drivername="postgresql")  # psycopg2, as in the Rasa environment
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    database = f"wa_store_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
    try:
        yield server_url.set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("connector")


class EarlyRasa:
    """`running_rasa` entered in a thread as soon as the session knows a test will need it.

    Loading the model in `rasa run` takes ~30-70 s of mostly one core; the tests collected before the first
    Rasa test (actions, components, most of the connector's) run meanwhile instead of waiting for it. The
    server is the same one the `rasa` fixture starts otherwise, and stops at the same point (the fixture's
    teardown). TEST_EARLY_RASA=0: started by the first test that needs it, as before."""

    def __init__(self, run_dir: Path) -> None:
        self._context = running_rasa(run_dir)
        self._server: Optional[RasaServer] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._enter, name="early-rasa", daemon=True)
        self._thread.start()

    def _enter(self) -> None:
        try:
            self._server = self._context.__enter__()
        except BaseException as error:  # pytest.fail in running_rasa raises a BaseException
            self._error = error

    def server(self) -> RasaServer:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._server is not None
        return self._server

    def close(self) -> None:
        self._thread.join()
        if self._error is None:
            self._context.__exit__(None, None, None)


_early_rasa: Dict[str, EarlyRasa] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get("TEST_EARLY_RASA", "1") == "0" or session.config.option.collectonly:
        return
    if any("rasa" in getattr(item, "fixturenames", ()) for item in session.items):
        _early_rasa["rasa"] = EarlyRasa(session.config._tmp_path_factory.mktemp("connector-rasa"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    early = _early_rasa.pop("rasa", None)  # the fixture never ran (e.g. stopped by -x before it)
    if early is not None:
        early.close()


@pytest.fixture(scope="session")
def rasa(run_dir: Path) -> Iterator[RasaServer]:
    early = _early_rasa.get("rasa")
    if early is None:
        with running_rasa(run_dir) as server:
            yield server
        return
    try:
        yield early.server()
    finally:
        _early_rasa.pop("rasa", None)
        early.close()


@pytest.fixture(scope="session")
def inbox() -> Iterator[RecordingInbox]:
    recording = RecordingInbox()
    yield recording
    recording.close()


@pytest.fixture(scope="session")
def stack(run_dir: Path, inbox: RecordingInbox) -> Iterator[Dict[str, Any]]:
    host_port, sandbox_port = free_port(), free_port()
    sandbox_process = Process(
        "sandbox",
        [sys.executable, "-m", "whatsapp_sandbox"],
        python_env(
            SANDBOX_PORT=str(sandbox_port),
            SANDBOX_WEBHOOK_URL=f"http://127.0.0.1:{host_port}/webhooks/whatsapp/webhook",
            SANDBOX_STATUS_DELAYS="0.02,0.05,0.1",
        ),
        run_dir,
    ).start(f"http://127.0.0.1:{sandbox_port}/sandbox/api/config")
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    store_path = run_dir / "host-store.db"
    host_process = start_host(run_dir, "host", host_port, sandbox_url, store_path, inbox.url)
    try:
        yield {
            "sandbox": SandboxClient(sandbox_url),
            "host": Host(host_process, host_port, store_path),
            "sandbox_url": sandbox_url,
        }
    finally:
        host_process.stop()
        sandbox_process.stop()


@pytest.fixture
def sandbox(stack: Dict[str, Any]) -> Iterator[SandboxClient]:
    client: SandboxClient = stack["sandbox"]
    yield client
    client.clear_failures()


@pytest.fixture
def host(stack: Dict[str, Any]) -> Host:
    return stack["host"]


@pytest.fixture(autouse=True)
def no_outcomes_kept_from_another_test():
    """connectors/send_keys.py keeps, per process, the outcomes of sends the store could not record; tests reuse
    inbound message ids, so each starts without them."""
    from connectors import send_keys

    send_keys._unsaved_outcomes.clear()
    yield
    send_keys._unsaved_outcomes.clear()
