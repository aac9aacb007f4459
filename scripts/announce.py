"""Waits until every service answers, then prints where to go and how to log in; then idles.

Runs as the last Procfile entry, so the banner appears after the services' start-up logs. It must
keep running: honcho stops everything when any process exits.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request

CHECKS = {
    "action server": f"http://127.0.0.1:{os.environ.get('ACTION_SERVER_PORT', '5055')}/health",
    "Rasa": f"http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}/",
    "inbox": f"http://127.0.0.1:{os.environ.get('INBOX_PORT', '8080')}/login",
    "WhatsApp sandbox": f"http://127.0.0.1:{os.environ.get('SANDBOX_PORT', '8090')}/sandbox/api/config",
}


def is_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except Exception:
        return False


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    deadline = time.monotonic() + float(os.environ.get("STARTUP_TIMEOUT_SECONDS", "300"))
    waiting = dict(CHECKS)
    while waiting and time.monotonic() < deadline:
        for name, url in list(waiting.items()):
            if is_up(url):
                print(f"{name} is up ({url})", flush=True)
                del waiting[name]
        time.sleep(1)
    if waiting:
        print(f"Still not answering after start-up timeout: {', '.join(waiting)} — see their logs above.", flush=True)
    sandbox = f"http://127.0.0.1:{os.environ.get('SANDBOX_PORT', '8090')}/"
    inbox = f"http://127.0.0.1:{os.environ.get('INBOX_PORT', '8080')}/"
    print(
        "\n"
        "  ┌──────────────────────────────────────────────────────────────────────\n"
        "  │ Kesar Lane support assistant is running (Ctrl-C stops everything)\n"
        f"  │  Customer (WhatsApp sandbox): {sandbox}\n"
        f"  │  Agent inbox:                 {inbox}\n"
        f"  │    logins: anita, priya, rahul (agents), admin — password: {os.environ.get('INBOX_DEMO_PASSWORD', 'see inbox log')}\n"
        f"  │  Rasa HTTP API:               http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}/ (JWT: inbox/.venv/bin/python -m inbox rasa-jwt)\n"
        "  │ Local demo only: secrets were generated into var/local.env.\n"
        "  └──────────────────────────────────────────────────────────────────────\n",
        flush=True,
    )
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
