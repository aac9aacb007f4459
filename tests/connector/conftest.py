"""Fixtures for the WhatsApp connector tests: real processes talking real HTTP.

- `sandbox`: the WhatsApp sandbox (`python -m whatsapp_sandbox`) playing Meta.
- `host`: the connector in a Sanic server (tests/connector/host_app.py) with a scripted bot,
  sending through the sandbox and forwarding statuses to `inbox` (a recording HTTP server).
Each test uses its own customer numbers, so one set of processes serves the whole session.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from tests.connector.support import (
    Host,
    Process,
    RecordingInbox,
    SandboxClient,
    free_port,
    python_env,
    start_host,
)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("connector")


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
