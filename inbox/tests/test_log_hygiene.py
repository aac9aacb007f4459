"""Secrets never reach the inbox's log (issue 13, item 3): a real `python -m inbox serve` is started
with a secret in every setting that has one, a hand-off pings Slack, an agent replies and resolves
(the resume call to Rasa), a customer known only by a BSUID is answered, and its whole output is
searched for each secret and for full phone numbers and BSUIDs (masked at INFO and above)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from inbox import migrate
from inbox.db import Database
from inbox.services.agents import AgentDirectory
from inbox.services.slack import SlackNotifier
from inbox.settings import REPO_ROOT
from inbox.tests.conftest import PASSWORD, handoff_payload
from inbox.tests.fakes import GRAPH_TOKEN, PHONE_NUMBER_ID, RASA_JWT_SECRET, free_port

SLACK_PATH_SECRET = "T0KESAR/B0LANE/slack-path-secret-xoxb-4242"
EVENTS_DB_PASSWORD = "events-db-password-8181"
BOT_TOKEN = "log-test-bot-token-7373"
SESSION_SECRET = "log-test-session-secret-6464646464"
PHONE = "919876543210"
BSUID = "US.13491208655302741918"


def wait_for(condition, what: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def inbox_process(tmp_path, external_services, password_hash):
    external_services.reset()
    database_url = f"sqlite:///{tmp_path / 'inbox.db'}"
    database = Database(database_url)
    migrate.upgrade(database)
    with database.write() as session:
        AgentDirectory(session).create(
            login="anita",
            name="Anita Desai",
            password=PASSWORD,
            password_hash=password_hash,
            teams=["Returns"],
            status="online",
        )
    database.dispose()
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "INBOX_ENV": "test",
        "DATABASE_URL": database_url,
        "INBOX_VAR_DIR": str(tmp_path),
        "INBOX_PORT": str(port),
        "INBOX_BOT_TOKEN": BOT_TOKEN,
        "INBOX_SESSION_SECRET": SESSION_SECRET,
        "INBOX_BUSINESS_HOURS": "mon-sun 00:00-24:00",
        "RASA_URL": external_services.url,
        "RASA_JWT_SECRET": RASA_JWT_SECRET,
        # Nothing listens there: the consumer logs its start and its waiting, both with the URL.
        "RASA_EVENTS_DB_URL": f"postgresql+psycopg://rasa:{EVENTS_DB_PASSWORD}@127.0.0.1:{free_port()}/events",
        "SLACK_WEBHOOK_URL": f"{external_services.url}/slack/{SLACK_PATH_SECRET}",
        "WHATSAPP_API_BASE_URL": f"{external_services.url}/v21.0",
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_ACCESS_TOKEN": GRAPH_TOKEN,
    }
    log_path = tmp_path / "inbox.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inbox", "serve", "--access-log"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _up(url) or process.poll() is not None, "the inbox to start")
            assert process.poll() is None, log_path.read_text()
            yield url, log_path
        finally:
            process.terminate()
            process.wait(timeout=15)


def _written_now() -> list[dict]:
    """The customer wrote just now (a real clock runs here): their 24-hour window is open."""
    return [{"role": "customer", "text": "I want a refund for #2812", "timestamp": datetime.now(UTC).isoformat()}]


def test_no_secret_reaches_the_log_over_start_up_hand_off_slack_reply_and_resolve(inbox_process, external_services):
    url, log_path = inbox_process
    bot = {"Authorization": f"Bearer {BOT_TOKEN}"}
    handoff = httpx.post(f"{url}/api/v1/handoffs", json=handoff_payload(conversation_id=PHONE, transcript=_written_now()), headers=bot)
    assert handoff.status_code == 201, handoff.text
    conversation_id = handoff.json()["inbox_conversation_id"]
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as agent:
        agent.get("/login")
        form = {"csrftoken": agent.cookies["csrftoken"]}
        assert agent.post("/login", data={**form, "login": "anita", "password": PASSWORD}).status_code == 303
        agent.post(f"/conversations/{conversation_id}/reply", data={**form, "text": "Checking your refund now."})
        assert agent.post(f"/conversations/{conversation_id}/resolve", data=form).status_code == 303
        # A customer known only by a business-scoped user id: hand-off, a refused reply (logged), search.
        bsuid_handoff = handoff_payload(
            handoff_id="hf_log_bsuid",
            conversation_id=BSUID,
            customer={"bsuid": BSUID, "username": "kesar.fan"},
            transcript=_written_now(),
        )
        bsuid_conversation = httpx.post(f"{url}/api/v1/handoffs", json=bsuid_handoff, headers=bot).json()
        external_services.graph_answers.append((400, {"error": {"code": 131047, "message": "Re-engagement"}}))
        reply = {**form, "text": "Hello there"}
        agent.post(f"/conversations/{bsuid_conversation['inbox_conversation_id']}/reply", data=reply)
        # The access log has the query string: a number typed into search is masked there.
        assert agent.get("/conversations", params={"q": PHONE}).status_code == 200
        assert agent.get("/conversations", params={"q": BSUID}).status_code == 200
    wait_for(lambda: external_services.slack_messages, "the Slack ping")
    assert [call["role"] for call in external_services.rasa_requests] == ["admin"]
    assert external_services.graph_requests, "the reply went out"

    log = wait_for(lambda: (text := log_path.read_text()) and "resolve" in text and text, "the access log")
    # The log is not empty of what matters: the consumer's start, each request, the database.
    assert "event-stream consumer started (postgresql+psycopg://rasa:***@" in log
    assert f"/conversations/{conversation_id}/resolve" in log
    assert "q=%2B91+98%E2%80%A2" in log or "+91 98•••••210" in log  # the search was logged, masked
    assert "reply" in log and "failed" in log and "24-hour window" in log
    assert any(body["body"].get("recipient") == BSUID for body in external_services.graph_requests)
    secrets = {
        "Slack webhook path": SLACK_PATH_SECRET,
        "events database password": EVENTS_DB_PASSWORD,
        "bot token": BOT_TOKEN,
        "session secret": SESSION_SECRET,
        "Rasa JWT secret": RASA_JWT_SECRET,
        "Rasa JWT sent": external_services.rasa_requests[0]["authorization"].removeprefix("Bearer "),
        "WhatsApp access token": GRAPH_TOKEN,
        "agent password": PASSWORD,
        "full phone number": PHONE,
        "phone number as shown": "98765 43210",
        "business-scoped user id": BSUID,
    }
    leaked = {name for name, value in secrets.items() if value in log}
    assert leaked == set(), log


def test_a_failing_slack_webhook_is_logged_without_its_url(external_services, caplog):
    secret_url = f"{external_services.url}/no-such-hook/{SLACK_PATH_SECRET}"  # answers 404
    notifier = SlackNotifier(secret_url)
    with caplog.at_level(logging.DEBUG):
        notifier.notify("SLA breached")
        notifier.wait_until_sent()
    notifier.close()
    inbox_log = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("inbox"))
    assert "Slack notification failed: Slack answered HTTP 404" in inbox_log
    assert SLACK_PATH_SECRET not in inbox_log
