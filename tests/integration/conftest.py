"""Real processes for integration tests: the action server as a subprocess, the trained model in-process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from tests.free_ports import free_port

ROOT = Path(__file__).resolve().parents[2]




def newest_model() -> Path:
    explicit = os.environ.get("RASA_MODEL")
    if explicit:
        return Path(explicit)
    model = ROOT / "models" / "kesar-lane.tar.gz"  # the name scripts/train.sh gives it
    if not model.exists():
        raise RuntimeError(f"No trained model at {model}: run `bash scripts/train.sh` first (the test command does).")
    return model


def load_agent(**kwargs):
    """The trained model in-process, loaded as the Rasa server loads it: with the start-up speed-ups of
    connectors/rasa_speedups.py (RASA_SPEEDUPS=0: as shipped)."""
    from rasa.core.agent import Agent

    from connectors import rasa_speedups

    rasa_speedups.install()
    return Agent.load(str(newest_model()), **kwargs)


@pytest.fixture(scope="session")
def agent():
    """`load_agent()` once per pytest worker, for the modules that only parse and predict with it, without endpoints
    (fast policies, outranked policies, NLU speed-ups, sequential runner, NLU hold-out): a load took 20-40 s in CI,
    once per module. Each of them restores what it patches on the agent (monkeypatch, or try/finally); the modules
    that hold conversations in a tracker store load their own."""
    return load_agent()


async def say(agent, sender: str, text: str) -> list:
    """The bot's reply texts to one customer message (a reply without text, e.g. an image, as "")."""
    return [m.get("text") or "" for m in await agent.handle_text(text, sender_id=sender) or []]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early with code {process.returncode}: {url}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"not up after {seconds}s: {url}")


@pytest.fixture(scope="session")
def action_server_url(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("actions") / "actions.log", "w")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"}
    env.pop("INBOX_URL", None)  # integration tests configure their own inbox, or none
    process = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
