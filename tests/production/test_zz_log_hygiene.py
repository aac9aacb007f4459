"""Runs last (file name): after everything else in the session, no service's log holds a secret or, at INFO, a
customer's full phone number (issue 13, "Found" item 3)."""
from __future__ import annotations

import re

import pytest

# The customers of this suite (conftest: 9196 + 8 digits) and the forged sender of test_attacks.
FULL_PHONE = re.compile(r"(?<!\d)9196\d{8}(?!\d)")


def test_no_secret_and_no_full_phone_number_in_any_log(production, slack):
    assert slack.received, "no Slack ping was sent: the Slack URL was never exercised"
    secrets = {**production.secrets, **{f"password of {login}": pw for login, pw in production.passwords.items()}}
    logs = production.log_paths()
    assert {path.name for path in logs} >= {"profile.log", "proxy-access.log", "redis.log", "server.log"}, logs
    found = []
    for path in logs:
        text = path.read_text(errors="replace")
        found += [f"{name} in {path.name}" for name, value in secrets.items() if value in text]
        found += [f"full phone number in {path.name}: {line.strip()[:200]}"
                  for line in text.splitlines() if FULL_PHONE.search(line)][:5]
    sizes = ", ".join(f"{path.name} {path.stat().st_size // 1024} KiB" for path in logs)
    print(f"\nlogs searched for {len(secrets)} secrets and full phone numbers: {sizes}")
    assert not found, "\n".join(found)
