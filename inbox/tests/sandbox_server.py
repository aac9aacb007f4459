"""The project's WhatsApp sandbox as a subprocess (the Rasa environment's Python), for tests that
need Meta's Graph API with media: upload, media ids, expiring download URLs."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from inbox.settings import REPO_ROOT
from inbox.tests.fakes import GRAPH_TOKEN, PHONE_NUMBER_ID, free_port

SANDBOX_PYTHON = Path(os.environ.get("SANDBOX_PYTHON", REPO_ROOT / ".venv" / "bin" / "python"))


def available() -> bool:
    return SANDBOX_PYTHON.exists() and (REPO_ROOT / "whatsapp_sandbox").is_dir()


@contextmanager
def running_sandbox():
    port = free_port()
    environment = {
        **os.environ,
        "WHATSAPP_APP_SECRET": "media-test-secret",
        "WHATSAPP_ACCESS_TOKEN": GRAPH_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "SANDBOX_PORT": str(port),
        "SANDBOX_STATUS_DELAYS": "off",
        # No connector: customer messages reach the inbox through the event stream the test writes.
        "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/webhooks/whatsapp/webhook",
    }
    process = subprocess.Popen(
        [str(SANDBOX_PYTHON), "-m", "whatsapp_sandbox"], cwd=REPO_ROOT, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/sandbox/api/config", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the sandbox did not start: {process.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # webhook redeliveries to the absent connector may hold it up
            process.kill()
            process.wait(timeout=10)
