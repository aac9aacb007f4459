"""A real `rasa run` with the WhatsApp connector, the sandbox as Meta and the action server: one per
test session (the `rasa` fixture in conftest.py), shared by test_rasa_server.py, test_rasa_reactions.py and
test_rasa_satisfaction.py. Each test talks as its own customer, so sharing one process is safe and saves a
Rasa start (model load and TensorFlow import, ~30-50 s on 2 cores) per module.

Uses the newest model in models/ (or RASA_MODEL) and the project in RASA_PROJECT_DIR (default:
the repository root, whose actions/ package runs as the action server). The credentials file
is written here (rest + this connector) and the endpoints file names only the action server,
so the test keeps its trackers in memory and never touches var/.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from tests.connector.support import ROOT, Process, SandboxClient, free_port, python_env, wait_until

RASA_TOKEN = "connector-test-token"


def newest_model() -> Optional[Path]:
    configured = os.environ.get("RASA_MODEL")
    if configured:
        return Path(configured)
    # The model scripts/train.sh produces; other files in models/ may be experiments.
    model = ROOT / "models" / "kesar-lane.tar.gz"
    return model if model.exists() else None


class RasaServer:
    def __init__(self, url: str, sandbox: SandboxClient) -> None:
        self.url = url
        self.sandbox = sandbox

    def tracker_events(self, sender_id: str) -> List[Dict[str, Any]]:
        answer = requests.get(f"{self.url}/conversations/{sender_id}/tracker", params={"token": RASA_TOKEN}, timeout=10)
        answer.raise_for_status()
        return answer.json()["events"]

    def user_events(self, sender_id: str) -> List[Dict[str, Any]]:
        return [event for event in self.tracker_events(sender_id) if event["event"] == "user"]

    def saved_tracker(self, sender_id: str) -> List[Dict[str, Any]]:
        """Events once the turn is saved (replies go out just before Rasa saves the tracker)."""
        def turn_saved() -> Optional[List[Dict[str, Any]]]:
            events = self.tracker_events(sender_id)
            has_user_turn = any(event["event"] == "user" for event in events)
            return events if has_user_turn and events[-1]["event"] in ("action", "bot") else None
        return wait_until(turn_saved) or self.tracker_events(sender_id)


@contextmanager
def running_rasa(run_dir: Path) -> Iterator[RasaServer]:
    model = newest_model()
    if model is None or not model.exists():
        pytest.fail("no trained model: run `bash scripts/train.sh` (the test command does) or set RASA_MODEL")
    project = Path(os.environ.get("RASA_PROJECT_DIR", ROOT))
    rasa_port, sandbox_port, actions_port = free_port(), free_port(), free_port()
    credentials = run_dir / "credentials.yml"
    credentials.write_text("rest:\nconnectors.whatsapp.WhatsAppInput:\n")
    endpoints = run_dir / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n')

    started: List[Process] = []
    try:
        sandbox_process = Process("e2e-sandbox", [sys.executable, "-m", "whatsapp_sandbox"], python_env(
            SANDBOX_PORT=str(sandbox_port),
            SANDBOX_WEBHOOK_URL=f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/webhook",
            SANDBOX_STATUS_DELAYS="0.02,0.05,0.1"), run_dir)
        started.append(sandbox_process.start(f"http://127.0.0.1:{sandbox_port}/sandbox/api/config"))
        if (project / "actions" / "__init__.py").exists():
            actions = Process("e2e-actions", [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(actions_port)],
                              python_env(PYTHONPATH=f"{project}{os.pathsep}{ROOT}"), run_dir, cwd=project)
            started.append(actions.start(f"http://127.0.0.1:{actions_port}/health", timeout=120))
        server = Process("e2e-rasa", [
            sys.executable, "-m", "rasa", "run", "--enable-api", "--auth-token", RASA_TOKEN, "--model", str(model),
            "--credentials", str(credentials), "--endpoints", str(endpoints), "--port", str(rasa_port)],
            python_env(
                PYTHONPATH=f"{ROOT}{os.pathsep}{project}",
                WHATSAPP_API_BASE_URL=f"http://127.0.0.1:{sandbox_port}/v21.0",
                WHATSAPP_STORE_URL=f"sqlite:///{run_dir / 'e2e-store.db'}",
            ), run_dir, cwd=project)
        started.append(server.start(f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/", timeout=300))
        rasa_url = f"http://127.0.0.1:{rasa_port}"
        # "up" is not "model loaded": wait until Rasa reports a model.
        assert wait_until(lambda: requests.get(f"{rasa_url}/status", params={"token": RASA_TOKEN}, timeout=5)
                          .json().get("model_id"), timeout=120)
        yield RasaServer(rasa_url, SandboxClient(f"http://127.0.0.1:{sandbox_port}"))
    finally:
        for process in reversed(started):
            process.stop()
