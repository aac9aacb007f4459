"""The connector inside a real `rasa run`, with the sandbox as Meta and the action server.

Uses the newest model in models/ (or RASA_MODEL) and the project in RASA_PROJECT_DIR (default:
the repository root, whose actions/ package runs as the action server). The credentials file
is written here (rest + this connector) and the endpoints file names only the action server,
so the test keeps its trackers in memory and never touches var/.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from tests.connector.support import (
    PHONE_NUMBER_ID,
    ROOT,
    Process,
    SandboxClient,
    free_port,
    new_wa_id,
    python_env,
    wait_until,
)

RASA_TOKEN = "connector-test-token"
UNREADABLE_REPLY_START = "Thanks! I can only read text for now"
CONTRACT_KEYS = {"wa_id", "user_id", "username", "profile_name", "phone_number_id", "message_id", "type", "timestamp"}


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


@pytest.fixture(scope="module")
def rasa(run_dir: Path) -> Iterator[RasaServer]:
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


def test_a_customer_message_is_answered_and_carries_whatsapp_metadata(rasa):
    wa_id = new_wa_id()
    sent = rasa.sandbox.customer_says(wa_id, text="hi", profile_name="Priya Sharma")
    assert sent["webhook_status"] == 200
    replies = rasa.sandbox.wait_for_business(wa_id, timeout=30)
    assert replies, "no reply reached the sandbox"
    [user_event] = [event for event in rasa.saved_tracker(wa_id) if event["event"] == "user"]
    whatsapp = user_event["metadata"]["whatsapp"]
    assert set(whatsapp) == CONTRACT_KEYS
    assert (whatsapp["wa_id"], whatsapp["profile_name"], whatsapp["phone_number_id"], whatsapp["message_id"]) == (
        wa_id, "Priya Sharma", PHONE_NUMBER_ID, sent["message_id"])
    # Meta sends every customer's business-scoped user id (the sandbox makes one per number).
    assert whatsapp["user_id"] == sent["customer"]["user_id"] and whatsapp["username"] is None
    assert user_event["input_channel"] == "whatsapp" and user_event["message_id"] == sent["message_id"]


def test_an_image_is_recorded_and_answered_politely_without_a_prediction(rasa):
    wa_id = new_wa_id()
    rasa.sandbox.customer_says(wa_id, media={"type": "image", "caption": "torn kurta", "mime_type": "image/jpeg"})
    [reply] = rasa.sandbox.wait_for_business(wa_id, timeout=30)
    assert reply["content"]["text"]["body"].startswith(UNREADABLE_REPLY_START)

    events = rasa.saved_tracker(wa_id)
    user_index = next(i for i, e in enumerate(events) if e["event"] == "user")
    user_event = events[user_index]
    assert user_event["text"] == "[image] torn kurta"
    media = user_event["metadata"]["whatsapp"]["media"]
    assert media["caption"] == "torn kurta" and media["mime_type"] == "image/jpeg" and media["id"]
    after = events[user_index + 1:]
    assert [e["event"] for e in after] == ["bot"]  # no action was predicted or run
    assert after[0]["text"].startswith(UNREADABLE_REPLY_START)


def test_a_handed_off_conversation_stays_silent_even_for_slash_commands(rasa):
    wa_id = new_wa_id()
    rasa.sandbox.customer_says(wa_id, text="hi")
    rasa.sandbox.wait_for_business(wa_id, timeout=30)
    answered = len(rasa.sandbox.business_messages(wa_id))
    requests.post(f"{rasa.url}/conversations/{wa_id}/tracker/events", params={"token": RASA_TOKEN},
                  json=[{"event": "pause"}], timeout=10).raise_for_status()

    rasa.sandbox.customer_says(wa_id, media={"type": "image", "caption": "see"})
    rasa.sandbox.customer_says(wa_id, text="/restart")
    assert wait_until(lambda: [e["text"] for e in rasa.user_events(wa_id)][-2:] == ["[image] see", "restart"], timeout=30)
    time.sleep(1.0)
    assert len(rasa.sandbox.business_messages(wa_id)) == answered
    assert rasa.tracker_events(wa_id)[-1]["event"] == "user"  # still paused: nothing predicted after


def test_rasa_http_api_can_send_proactively_on_whatsapp(rasa):
    """`trigger_intent?output_channel=whatsapp` (e.g. a follow-up) reaches the customer."""
    wa_id = new_wa_id()
    rasa.sandbox.customer_says(wa_id, text="hi")
    answered = len(rasa.sandbox.wait_for_business(wa_id, timeout=30))
    domain = requests.get(f"{rasa.url}/domain", params={"token": RASA_TOKEN}, headers={"Accept": "application/json"},
                          timeout=10).json()
    intents = [next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]]
    answer = requests.post(f"{rasa.url}/conversations/{wa_id}/trigger_intent",
                           params={"token": RASA_TOKEN, "output_channel": "whatsapp"},
                           json={"name": "greet" if "greet" in intents else intents[0]}, timeout=30)
    assert answer.status_code == 200
    assert "messages" not in answer.json()  # sent on WhatsApp, not collected into the response
    assert len(rasa.sandbox.wait_for_business(wa_id, at_least=answered + 1, timeout=30)) > answered


def test_stop_and_start_from_whatsapp_switch_marketing_consent(rasa):
    """STOP is plain text on WhatsApp; the bot records the opt-out (actions/CONTRACT.md) and says so."""
    wa_id = new_wa_id()

    def consent() -> Any:
        tracker = requests.get(f"{rasa.url}/conversations/{wa_id}/tracker", params={"token": RASA_TOKEN}, timeout=10).json()
        return tracker["slots"].get("marketing_opt_in")

    rasa.sandbox.customer_says(wa_id, text="STOP")
    rasa.sandbox.wait_for_business(wa_id, timeout=30)
    assert wait_until(lambda: consent() is False, timeout=10)
    replies = len(rasa.sandbox.business_messages(wa_id))
    rasa.sandbox.customer_says(wa_id, text="START")
    rasa.sandbox.wait_for_business(wa_id, at_least=replies + 1, timeout=30)
    assert wait_until(lambda: consent() is True, timeout=10)
