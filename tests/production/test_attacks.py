"""The production profile attacked from outside the proxy (issue 13, "Found" items 1, 2, 5, 7): what is not
exposed answers 404, what is exposed refuses what it must, and hostile input breaks nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import statistics
import subprocess
import threading
import time

import httpx
import jwt
import pytest

from tests.e2e.harness import ROOT
from tests.e2e.test_patterns import KB_QUESTIONS, assert_handed_off, assert_kb_answer
from tests.production.harness import listening_sockets, wait_until

WEBHOOK = "/webhooks/whatsapp/webhook"


def signed(production, body: bytes) -> dict[str, str]:
    signature = hmac.new(production.env["WHATSAPP_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


# ----- item 2: only the webhook and the inbox are exposed; nothing listens beyond 127.0.0.1 -----------------

NOT_EXPOSED = [
    ("POST", "/webhooks/rest/webhook"),  # the REST channel (absent from the profile anyway)
    ("GET", "/"), ("GET", "/status"), ("GET", "/version"), ("POST", "/model/parse"),  # Rasa's HTTP API
    ("GET", "/webhooks/whatsapp/"), ("POST", "/webhooks/whatsapp/webhook/extra"),
    ("POST", "/webhook"), ("GET", "/health"), ("GET", "/actions"),  # the action server
    ("POST", "/api/v1/handoffs"), ("POST", "/api/v1/whatsapp/statuses"),  # the inbox's machine API
    ("GET", "/sandbox/api/config"), ("GET", "/.env"), ("GET", "/../../etc/passwd"),
]


@pytest.mark.parametrize("method,path", NOT_EXPOSED)
def test_only_the_webhook_and_the_inbox_are_exposed(production, method, path):
    with production.client() as client:
        response = client.request(method, path, json={"sender": "919600000001", "message": "/restart"})
    if path == "/":  # the inbox's front page (sign-in first), not Rasa's "Hello from Rasa"
        assert response.status_code in (302, 303, 401) and "rasa" not in response.text.lower(), response.text[:200]
        return
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    assert response.headers.get("X-Proxy-Refused") == "not-found", response.headers


def test_rasa_tracker_api_is_not_reachable_through_the_proxy(production, customer):
    """/conversations/... belongs to the inbox at the proxy; Rasa's tracker API of the same path stays inside."""
    assert customer.say("hi")
    with production.client() as client:
        for method in ("GET", "POST", "PUT"):
            response = client.request(method, f"/conversations/{customer.wa_id}/tracker", json=[])
            assert response.status_code in (302, 303, 401, 404, 405), response.status_code
            assert "sender_id" not in response.text and "events" not in response.text


def test_rest_channel_is_absent_at_rasa_itself(production):
    response = httpx.post(production.url("rasa") + "/webhooks/rest/webhook",
                          json={"sender": "919600000002", "message": "/restart"}, timeout=30)
    assert response.status_code == 404


def test_rasa_http_api_needs_a_jwt_signed_with_the_secret(production):
    """Even from inside the machine: no query-string token, no JWT of another secret."""
    url = f"{production.url('rasa')}/conversations/919600000003/tracker"
    forged = jwt.encode({"user": {"username": "x", "role": "admin"}}, "not-the-secret-" + "x" * 32, algorithm="HS256")
    for request in ({}, {"params": {"token": production.env["RASA_JWT_SECRET"]}},
                    {"headers": {"Authorization": f"Bearer {forged}"}}):
        assert httpx.get(url, timeout=30, **request).status_code == 401, request
    assert httpx.get(url, headers=production.rasa_headers(), timeout=30).status_code == 200


def test_rasa_refuses_bodies_over_its_own_limit_even_from_inside(production):
    """Behind the proxy's limits, Rasa's own listener is capped too (SANIC_REQUEST_MAX_SIZE, 8 MiB)."""
    response = httpx.post(f"{production.url('rasa')}/conversations/919600000004/tracker/events",
                          content=b"[" + b" " * (9 * 1024 * 1024) + b"]", headers=production.rasa_headers(),
                          timeout=60)
    assert response.status_code == 413


def test_every_service_listens_on_127_0_0_1_only(production):
    sockets = listening_sockets(production.profile_pids())
    ports = {port for _, port in sockets}
    for name in ("rasa", "actions", "inbox", "proxy"):
        assert production.ports[name] in ports, (name, sockets)
    assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets
    for name in ("redis",):
        assert {a for a, _ in listening_sockets(production.pids_of(name))} == {"127.0.0.1"}
    assert {a for a, _ in listening_sockets(production.postgres.pids())} == {"127.0.0.1"}
    print(f"\nlistening sockets of the profile: {sorted(sockets, key=lambda s: s[1])}")


def forged_action_call(sender: str) -> dict:
    event = {"event": "user", "text": "agent please", "parse_data": {"intent": {"name": "request_human"}}}
    return {"next_action": "action_handoff", "sender_id": sender, "version": "3.6.21", "domain": {},
            "tracker": {"sender_id": sender, "slots": {}, "latest_message": {"text": "agent please"},
                        "events": [event], "paused": False, "followup_action": None, "active_loop": {},
                        "latest_action_name": "action_listen"}}


def test_forged_tracker_without_the_shared_secret_is_refused(production, inbox_db):
    sender = "919600009999"
    url = production.url("actions") + "/webhook"
    for headers in ({}, {"X-Action-Token": "guess"}, {"X-Action-Token": production.env["ACTION_SERVER_TOKEN"][:-1]}):
        response = httpx.post(url, json=forged_action_call(sender), headers=headers, timeout=30)
        assert response.status_code == 403, response.text[:300]
    # The action server's health check (for monitoring) needs no secret and says nothing.
    assert httpx.get(production.url("actions") + "/health", timeout=10).json() == {"status": "ok"}
    assert inbox_db.conversation(sender) is None


def test_restart_text_to_a_handed_off_conversation_does_not_wake_the_bot(production, customer, inbox_db):
    assert_handed_off(customer.say("agent please"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    for text in ("/restart", "/session_start", " /restart"):
        customer.send(text)
    # The connector drops the leading slash (Rasa would read "/restart" as the restart intent and un-pause).
    wait_until(lambda: [text for role, text in inbox_db.messages(conversation["id"]) if role == "customer"][-3:]
               == ["restart", "session_start", "restart"], 30, "the three messages reaching the agent")
    assert customer.silence(4) == []
    tracker = httpx.get(f"{production.url('rasa')}/conversations/{customer.wa_id}/tracker",
                        headers=production.rasa_headers(), timeout=30).json()
    assert tracker["paused"] is True


# ----- item 5: hostile bodies -------------------------------------------------------------------------------

def test_bodies_over_the_limit_are_refused_at_the_proxy(production):
    with production.client() as client:
        huge = b'{"object":"whatsapp_business_account","entry":[' + b" " * (5 * 1024 * 1024) + b"]}"
        response = client.post(WEBHOOK, content=huge, headers=signed(production, huge))
        assert (response.status_code, response.headers.get("X-Proxy-Refused")) == (413, "too-large")
        response = client.post("/login", data={"login": "meera", "password": "x" * 40_000})
        assert (response.status_code, response.headers.get("X-Proxy-Refused")) == (413, "too-large")
        response = client.post("/conversations/1/reply", data={"text": "x" * 300_000})
        assert (response.status_code, response.headers.get("X-Proxy-Refused")) == (413, "too-large")


def test_deeply_nested_signed_webhook_is_accepted_and_breaks_nothing(production, customer):
    deep = ("[" * 10_000 + "]" * 10_000).encode()
    body = b'{"object":"whatsapp_business_account","entry":' + deep + b"}"
    with production.client() as client:
        response = client.post(WEBHOOK, content=body, headers=signed(production, body))
    assert response.status_code == 200, response.text[:300]  # Meta would redeliver anything else for days
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))


# ----- item 1: a whitespace bomb does not freeze the inbox ---------------------------------------------------

def test_whitespace_bomb_leaves_the_inbox_responsive(production, customer, inbox_db):
    bomb = "my order" + " " * 4_000 + "x"  # 4,096 characters: the longest text WhatsApp delivers
    timings: list[float] = []
    statuses: list[int] = []
    answered_before_mirrored: list[bool] = []
    mirrored = threading.Event()

    def sign_in_page_while_the_bomb_is_processed():
        with production.client() as client:
            while not mirrored.is_set():
                started = time.perf_counter()
                statuses.append(client.get("/login").status_code)
                timings.append(time.perf_counter() - started)
                answered_before_mirrored.append(not mirrored.is_set())
                mirrored.wait(0.1)  # an agent's pace, under the proxy's per-address rate limit

    poller = threading.Thread(target=sign_in_page_while_the_bomb_is_processed)
    poller.start()
    started = time.perf_counter()
    try:
        customer.send(bomb)
        wait_until(lambda: any(role == "customer" and text.startswith("my order") for role, text in
                               inbox_db.messages((inbox_db.conversation(customer.wa_id) or {"id": 0})["id"])),
                   60, "the whitespace bomb mirrored into the inbox")
        processed = time.perf_counter() - started
    finally:
        mirrored.set()
        poller.join()
    replies = customer.replies(1, timeout=60)
    assert replies, "the customer got no reply"
    assert set(statuses) == {200}, statuses
    assert any(answered_before_mirrored), "no sign-in page was answered while the bomb was being processed"
    print(f"\nwhitespace bomb (4,096 chars) mirrored into the inbox after {processed * 1000:.0f} ms; "
          f"GET /login through the proxy meanwhile: {len(timings)} requests, median "
          f"{statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms")


# ----- item 7: logins and sessions ----------------------------------------------------------------------------

def test_guessing_a_password_does_not_lock_out_its_owner(production, agent_login):
    refused_by = None
    with production.client(source_address="127.0.0.2") as attacker:
        attacker.get("/login")
        for attempt in range(1, 61):
            response = attacker.post("/login", data={"login": "priya", "password": f"guess-{attempt}",
                                                      "csrftoken": attacker.cookies.get("csrftoken") or ""})
            if response.status_code == 429:
                refused_by = response.headers.get("X-Proxy-Refused") or "inbox"
                break
            assert response.status_code == 401, response.status_code
    assert refused_by, "60 wrong passwords from one address were never slowed down"
    agent_login("priya")  # the owner, from her own address, gets in
    print(f"\npassword guessing from 127.0.0.2 refused (429) after {attempt - 1} wrong passwords, by {refused_by}")


def test_a_copied_session_cookie_stops_working_after_sign_out(production, agent_login):
    agent = agent_login("priya")
    thief = production.client()
    for cookie in agent.http.cookies.jar:
        thief.cookies.set(cookie.name, cookie.value)
    assert thief.get("/conversations").status_code == 200
    response = agent._post("/logout", {})
    assert response.status_code in (302, 303)
    after = thief.get("/conversations")
    assert after.status_code in (302, 303, 401) and "/login" in after.headers.get("location", "/login")


def test_session_cookies_are_secure_and_https_is_enforced(production):
    with production.client() as client:
        page = client.get("/login")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "nginx/" not in page.headers.get("server", "")
    assert all("secure" in header.lower() for header in page.headers.get_list("set-cookie")), page.headers
    old = ssl.create_default_context(cafile=str(production.ca_file))
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(httpx.ConnectError):
        httpx.get(production.url("proxy") + "/login", verify=old, timeout=10)


def test_rate_limit_per_address(production):
    with production.client(source_address="127.0.0.3") as client:
        for count in range(1, 501):
            response = client.get("/static/inbox.js")
            if response.status_code == 429:
                break
    assert response.headers.get("X-Proxy-Refused") == "rate-limited", "500 requests in a row were never limited"
    with production.client() as other:
        assert other.get("/login").status_code == 200  # other addresses are not affected
    print(f"\nper-address rate limit: 429 after {count} back-to-back requests")


def test_demo_credentials_and_missing_settings_are_refused(production, inbox_db):
    run = lambda **env: subprocess.run(  # noqa: E731
        ["bash", "scripts/production.sh", "--check"], cwd=ROOT, capture_output=True, text=True,
        env={**production.env, "PROXY_RUN_DIR": str(production.data_dir / "check"), **env})
    assert run().returncode == 0
    refused = run(INBOX_DEMO_PASSWORD="demo-1234", WHATSAPP_ACCESS_TOKEN="sandbox-abc", ACTION_SERVER_TOKEN="short",
                  INBOX_PUBLIC_URL="http://support.example.com")
    assert refused.returncode == 2
    for reason in ("INBOX_DEMO_PASSWORD is set", "WHATSAPP_ACCESS_TOKEN is the local sandbox's",
                   "ACTION_SERVER_TOKEN is shorter than 32", "INBOX_PUBLIC_URL must start with https://"):
        assert reason in refused.stderr, refused.stderr
    missing = run(REDIS_PASSWORD="", DATABASE_URL="", PROXY_TLS_KEY="")
    assert missing.returncode == 2
    assert "missing environment variables: DATABASE_URL REDIS_PASSWORD PROXY_TLS_KEY" in missing.stderr, missing.stderr
    # No demo agents in the production inbox: their names and any password are refused.
    assert {row["login"] for row in inbox_db.query("select login from agents")} == {"meera", "priya"}
    with production.client() as client:
        client.get("/login")
        for login in ("admin", "anita", "rahul"):
            response = client.post("/login", data={"login": login, "password": "demo-" + "x" * 8,
                                                    "csrftoken": client.cookies.get("csrftoken") or ""})
            assert response.status_code == 401, (login, response.status_code)
