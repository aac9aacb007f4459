"""The agent's day in Debian's Chromium (Playwright): log in, a hand-off appears by itself, a note,
a quick reply that reaches the real WhatsApp sandbox, a live customer message, resolve; and
customer text that tries to run script stays text."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from inbox.context import Inbox
from inbox.services import bootstrap
from inbox.settings import INBOX_DIR, REPO_ROOT, Settings
from inbox.tests.conftest import BOT_TOKEN, PASSWORD, handoff_payload
from inbox.tests.fakes import GRAPH_TOKEN, PHONE_NUMBER_ID, RASA_JWT_SECRET, ThreadedServer
from inbox.tests.sandbox_server import running_sandbox
from inbox.web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SANDBOX_PYTHON = Path(os.environ.get("SANDBOX_PYTHON", REPO_ROOT / ".venv" / "bin" / "python"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    # CI (inbox/scripts/test.sh) sets INBOX_REQUIRE_BROWSER=1: there a missing piece fails loudly.
    if os.environ.get("INBOX_REQUIRE_BROWSER") == "1":
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)


if not Path(CHROMIUM).exists():
    _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
if not (REPO_ROOT / "whatsapp_sandbox").is_dir() or not SANDBOX_PYTHON.exists():
    _missing(f"the WhatsApp sandbox needs {SANDBOX_PYTHON} and whatsapp_sandbox/")

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402  (after the skips)


@pytest.fixture(scope="module")
def sandbox():
    """The project's WhatsApp sandbox (Graph-API compatible), started as its README says."""
    with running_sandbox() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def live_inbox(tmp_path, sandbox, external_services, password_hash, inbox_clock):
    """A real inbox server (SQLite, background workers on) sending through the sandbox, on `inbox_clock`
    (conftest.py: the real clock)."""
    from inbox.services.agents import AgentDirectory
    from inbox.tests.rasa_events import RasaBrokerTable

    broker = RasaBrokerTable(tmp_path / "rasa_events.db")
    settings = Settings(
        inbox_env="test",
        database_url=f"sqlite:///{tmp_path / 'inbox.db'}",
        inbox_var_dir=tmp_path,
        inbox_bot_token=BOT_TOKEN,
        inbox_session_secret="browser-test-session-secret",
        whatsapp_api_base_url=f"{sandbox}/v21.0",
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_access_token=GRAPH_TOKEN,
        rasa_url=external_services.url,
        rasa_jwt_secret=RASA_JWT_SECRET,
        slack_webhook_url=None,
        rasa_events_db_url=broker.url,
        inbox_consumer="inline",
        inbox_consumer_poll_seconds=0.2,
        inbox_assignment_config=INBOX_DIR / "config" / "assignment.yml",
        inbox_business_hours="mon-sun 00:00-24:00",  # the team is "open" whenever the tests run
        kb_path=Path(__file__).parent.parent / "fixtures" / "knowledge_base.yml",
    )
    from inbox import migrate

    inbox = Inbox(settings, clock=inbox_clock)
    migrate.upgrade(inbox.db)
    bootstrap.prepare(inbox)
    with inbox.db.write() as session:
        AgentDirectory(session).create(
            login="anita",
            name="Anita Desai",
            password=PASSWORD,
            password_hash=password_hash,
            pronoun="she",
            teams=["Returns"],
            status="online",
        )
    external_services.reset()
    server = ThreadedServer(create_app(inbox)).start()
    inbox.test_url = server.url
    inbox.test_broker = broker
    yield inbox
    server.stop()
    inbox.close()


@pytest.fixture
def page(browser, live_inbox):
    context = browser.new_context(base_url=live_inbox.test_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    # Console errors include Content-Security-Policy violations and failed requests.
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    yield page
    context.close()


def sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Login").fill("anita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".topbar .me")).to_contain_text("Anita Desai")


def hand_off(inbox, **overrides) -> dict:
    if "transcript" not in overrides:  # written just now: the customer's 24-hour window is open
        now = datetime.now(UTC)
        overrides["transcript"] = [
            {**item, "timestamp": (now - timedelta(seconds=30 - index)).isoformat()}
            for index, item in enumerate(handoff_payload()["transcript"])
        ]
    response = httpx.post(
        f"{inbox.test_url}/api/v1/handoffs",
        json=handoff_payload(**overrides),
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_agents_day(page, live_inbox, sandbox, external_services):
    sign_in(page)
    expect(page.locator("#conversation-list")).to_contain_text("No conversations here.")
    page.wait_for_function("document.body.dataset.live === 'connected'")

    # A hand-off arrives while the page is open: it shows up without a reload.
    answer = hand_off(live_inbox, requested_at=None)
    assert answer["assignee"]["first_name"] == "Anita"
    row = page.locator(f'li.row[data-conversation-id="{answer["inbox_conversation_id"]}"]')
    expect(row).to_contain_text("Priya Sharma")
    expect(row).to_contain_text("refund")
    expect(page.locator('[data-view="mine"] .count')).to_have_text("1")
    row.click()
    expect(page.locator("#transcript")).to_contain_text("I want a refund for #2812")
    expect(page.locator("#panel")).to_contain_text("#2812")

    # An internal note.
    page.locator("#note-text").fill("Photos of the tear came by email.")
    page.get_by_role("button", name="Add note").click()
    note = page.locator(".msg-note").last
    expect(note).to_contain_text("Photos of the tear came by email.")
    expect(note).to_contain_text("not sent to the customer")

    # A quick reply: "/ref" + Enter expands /refund with the customer's first name.
    reply_box = page.locator("#reply-text")
    reply_box.click()
    reply_box.press_sequentially("/ref")
    expect(page.locator("#quick-reply-menu li")).to_have_count(1)
    expect(page.locator("#quick-reply-menu")).to_contain_text("/refund")
    reply_box.press("Enter")
    expect(reply_box).to_have_value(
        "I've started your refund. It reaches your original payment method within 5–7 working days (UPI and cards), and I'll share the reference number here."
    )
    reply_box.press("End")
    reply_box.press_sequentially(" Sorry about the kurta, Priya!")
    page.get_by_role("button", name="Send to customer").click()
    sent = page.locator(".msg-agent").last
    expect(sent).to_contain_text("Sorry about the kurta, Priya!")
    expect(sent.locator(".delivery")).to_contain_text("Sent to WhatsApp")
    expect(reply_box).to_have_value("")

    # ...and it reached the sandbox, as the customer's phone would get it.
    messages = httpx.get(
        f"{sandbox}/sandbox/api/messages", params={"wa_id": "919876543210", "direction": "business"}
    ).json()["messages"]
    assert messages[-1]["content"]["text"]["body"].endswith("Sorry about the kurta, Priya!")
    assert messages[-1]["content"]["text"]["body"].startswith("I've started your refund.")

    # The customer writes again (through Rasa's event stream): it appears in the open conversation.
    live_inbox.test_broker.user("919876543210", "Thank you so much!", datetime.now(UTC))
    expect(page.locator("#transcript .msg-customer").last).to_contain_text("Thank you so much!")

    # Resolve and hand back to the bot.
    page.get_by_role("button", name="Resolve and hand back to bot").click()
    expect(page.locator("#panel .badge.resolved")).to_be_visible()
    expect(page.locator("#transcript")).to_contain_text("Resolved by Anita Desai and handed back to the bot.")
    assert external_services.rasa_requests[-1]["sender_id"] == "919876543210"
    assert external_services.rasa_requests[-1]["events"][0] == {"event": "resume"}
    assert page.console_errors == []


def test_a_reply_whatsapp_refuses_shows_the_reason_and_keeps_the_text(page, live_inbox, sandbox):
    sign_in(page)
    answer = hand_off(live_inbox, handoff_id="hf_window_closed")
    httpx.post(f"{sandbox}/sandbox/api/failures", json={"mode": "meta_error", "code": 131047}).raise_for_status()
    page.goto(f"/conversations/{answer['inbox_conversation_id']}")
    page.locator("#reply-text").fill("Are you still there?")
    page.get_by_role("button", name="Send to customer").click()
    expect(page.locator("#conversation .flash-error")).to_contain_text("24-hour window has closed")
    expect(page.locator(".msg-agent .delivery").last).to_contain_text("Not delivered")
    expect(page.locator("#reply-text")).to_have_value("Are you still there?")


def test_customer_text_that_tries_to_run_script_is_shown_as_text(page, live_inbox):
    script = "<script>window.__xss = 'script ran'</script>"
    image = "<img src=x onerror=\"window.__xss = 'onerror ran'\">"
    answer = hand_off(
        live_inbox,
        handoff_id="hf_xss",
        customer={"whatsapp_id": "919876543210", "name": image},
        summary=script,
        transcript=[
            {"role": "customer", "text": script, "timestamp": "2026-11-25T05:24:40Z"},
            {"role": "customer", "text": image, "timestamp": "2026-11-25T05:24:50Z"},
        ],
    )
    sign_in(page)
    page.goto(f"/conversations/{answer['inbox_conversation_id']}?view=all")
    texts = page.locator("#transcript .msg-customer .msg-text")
    expect(texts.nth(0)).to_have_text(script)
    expect(texts.nth(1)).to_have_text(image)
    expect(page.locator("#panel h2")).to_contain_text(image)
    expect(page.locator(f'li.row[data-conversation-id="{answer["inbox_conversation_id"]}"] .customer')).to_contain_text(
        image
    )
    assert page.locator("#transcript img, #panel img, .rows img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_a_customer_without_a_phone_number_is_shown_by_username_and_answered(page, live_inbox, sandbox):
    customer = httpx.post(f"{sandbox}/sandbox/api/customers", json={"username": "kesar.fan", "profile_name": ""}).json()
    bsuid = customer["user_id"]
    answer = hand_off(
        live_inbox,
        handoff_id="hf_no_phone",
        conversation_id=bsuid,
        customer={"whatsapp_id": bsuid, "name": None, "bsuid": bsuid, "username": "kesar.fan"},
    )
    sign_in(page)
    row = page.locator(f'li.row[data-conversation-id="{answer["inbox_conversation_id"]}"]')
    expect(row.locator(".customer")).to_contain_text("@kesar.fan")
    row.click()
    expect(page.locator("#panel h2")).to_contain_text("@kesar.fan")
    expect(page.locator("#panel")).to_contain_text("No phone number shared")
    page.locator("#reply-text").fill("Hi! Checking your refund now.")
    page.get_by_role("button", name="Send to customer").click()
    expect(page.locator(".msg-agent .delivery").last).to_contain_text("Sent")
    # The sandbox got it addressed to the BSUID ("recipient"), as WhatsApp would deliver it.
    messages = httpx.get(f"{sandbox}/sandbox/api/messages", params={"wa_id": bsuid, "direction": "business"}).json()
    assert messages["messages"][-1]["content"]["text"]["body"] == "Hi! Checking your refund now."
    assert page.console_errors == []
