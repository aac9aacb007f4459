"""The sandbox plays Meta: it validates sends like the Cloud API, signs its webhooks, and
serves a customer page that shows bot replies and lets the customer tap buttons."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time

import pytest
import requests

from tests.connector.support import (
    SECRETS,
    Process,
    SandboxClient,
    free_port,
    new_wa_id,
    python_env,
    start_host,
    texts,
    wait_until,
)
from whatsapp_sandbox.state import BUSINESS, CUSTOMER, SandboxCustomer, SandboxState, user_id_for_phone

GRAPH_TOKEN = {"Authorization": f"Bearer {SECRETS['WHATSAPP_ACCESS_TOKEN']}"}


def _customer(phone):
    return SandboxCustomer(user_id=user_id_for_phone(phone), phone=phone)


def send(stack, body, headers=GRAPH_TOKEN, phone_number_id=SECRETS["WHATSAPP_PHONE_NUMBER_ID"]):
    return requests.post(f"{stack['sandbox_url']}/v21.0/{phone_number_id}/messages", json=body, headers=headers, timeout=5)


def text_body(to, body):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def buttons_body(to, titles):
    return {"messaging_product": "whatsapp", "to": to, "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick one"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": f"id-{n}", "title": t}} for n, t in enumerate(titles)]}}}


def test_accepted_send_answers_like_meta_with_a_wamid(stack):
    wa_id = new_wa_id()
    answer = send(stack, text_body(wa_id, "hello"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": wa_id, "wa_id": wa_id}]
    assert body["messages"][0]["id"].startswith("wamid.")


@pytest.mark.parametrize("body, status, code, detail", [
    (text_body("919800000001", "x" * 4097), 400, 100, "4096"),
    (buttons_body("919800000001", ["A", "B", "C", "D"]), 400, 100, "at most 3"),
    (buttons_body("919800000001", ["This title is too long"]), 400, 100, "1 to 20"),
    (buttons_body("919800000001", ["Same", "Same"]), 400, 100, "unique"),
    ({"messaging_product": "whatsapp", "to": "919800000001", "type": "interactive", "interactive": {
        "type": "list", "body": {"text": "Pick"}, "action": {"button": "Choose", "sections": [{"rows": [
            {"id": f"r{n}", "title": f"Row {n}"} for n in range(11)]}]}}}, 400, 100, "at most 10 rows"),
    ({"to": "919800000001", "type": "text", "text": {"body": "hi"}}, 400, 100, "messaging_product"),
    (text_body("not-a-number", "hi"), 400, 100, "'to'"),
])
def test_invalid_sends_are_rejected_with_metas_error_shape(stack, body, status, code, detail):
    answer = send(stack, body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code and error["type"] == "OAuthException" and error["fbtrace_id"]
    assert detail in error["error_data"]["details"]


def test_wrong_token_and_wrong_phone_number_id_are_refused(stack):
    assert send(stack, text_body("919800000001", "hi"), headers={"Authorization": "Bearer nope"}).json()["error"]["code"] == 190
    assert send(stack, text_body("919800000001", "hi"), headers={}).status_code == 401
    assert send(stack, text_body("919800000001", "hi"), phone_number_id="999").status_code == 400


def test_customer_messages_are_signed_webhooks_and_replies_come_back(stack, sandbox, host):
    wa_id = new_wa_id()
    answer = sandbox.customer_says(wa_id, text="Is the ubtan face pack good for dry skin?", profile_name="Meera")
    assert answer["webhook_status"] == 200  # the connector checked the signature
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: Is the ubtan face pack good for dry skin?"]
    [event] = [e for e in host.journal(wa_id) if e["event"] == "user"]
    assert event["metadata"]["whatsapp"]["profile_name"] == "Meera"


def test_sent_delivered_and_read_statuses_are_posted_back_signed(stack, sandbox, host):
    wa_id = new_wa_id()
    sandbox.customer_says(wa_id, text="status please")
    [reply] = sandbox.wait_for_business(wa_id)
    recorded = wait_until(lambda: len(host.store.statuses(reply["id"])) == 3 and host.store.statuses(reply["id"]))
    assert [row["status"] for row in recorded] == ["sent", "delivered", "read"]


def test_simulated_131047_arrives_as_a_failed_status(stack, sandbox, host):
    wa_id = new_wa_id()
    sandbox.fail_next("failed_status", code=131047)
    answer = send(stack, text_body(wa_id, "late follow-up"))
    assert answer.status_code == 200
    wamid = answer.json()["messages"][0]["id"]
    [row] = wait_until(lambda: host.store.statuses(wamid))
    assert row["status"] == "failed" and '"code":131047' in row["errors"]


def test_a_message_typed_while_the_connector_is_down_is_redelivered(run_dir, stack):
    """Like Meta, the sandbox keeps retrying a webhook that did not get a 200."""
    connector_port, sandbox_port = free_port(), free_port()
    sandbox_process = Process("sandbox-redelivery", [sys.executable, "-m", "whatsapp_sandbox"], python_env(
        SANDBOX_PORT=str(sandbox_port),
        SANDBOX_WEBHOOK_URL=f"http://127.0.0.1:{connector_port}/webhooks/whatsapp/webhook",
        SANDBOX_STATUS_DELAYS="off"), run_dir).start(f"http://127.0.0.1:{sandbox_port}/sandbox/api/config")
    own_sandbox = SandboxClient(f"http://127.0.0.1:{sandbox_port}")
    connector = None
    try:
        wa_id = new_wa_id()
        answer = own_sandbox.customer_says(wa_id, text="anyone there?")
        assert answer["webhook_status"] is None and answer["redelivering"] is True
        connector = start_host(run_dir, "host-redelivery", connector_port, own_sandbox.base_url,
                               run_dir / "redelivery-store.db")
        assert texts(own_sandbox.wait_for_business(wa_id, timeout=20)) == ["echo: anyone there?"]
        [customer_message] = own_sandbox.messages(wa_id, direction="customer")["messages"]
        assert customer_message["webhook_status"] == 200
    finally:
        if connector is not None:
            connector.stop()
        sandbox_process.stop()


# --- the customer page in a real browser ------------------------------------------------------

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is needed for the page test")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _launch(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is needed for the page test")
def test_customer_page_shows_replies_as_text_and_taps_buttons(stack, host):
    wa_id = new_wa_id()
    hostile = '<img src=x onerror="window.__owned=1">'
    with playwright_api.sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page()
            page.goto(stack["sandbox_url"] + "/")
            page.fill("#wa-id", wa_id)
            page.fill("#profile-name", "Kavya <b>K</b>")
            page.click("#customer-form button[type=submit]")

            page.fill("#text", hostile)
            page.press("#text", "Enter")
            echo = page.locator(".bubble.business", has_text="echo:")
            echo.wait_for(timeout=15000)
            assert echo.inner_text().startswith(f"echo: {hostile}")
            assert page.locator(".bubble img").count() == 0
            assert page.evaluate("window.__owned") is None

            page.fill("#text", "menu")
            page.press("#text", "Enter")
            page.locator(".choices button", has_text="Talk to a human").click()
            page.locator(".bubble.customer", has_text="Talk to a human").wait_for(timeout=15000)

            page.fill("#text", "sizes")
            page.press("#text", "Enter")
            page.locator(".choices button", has_text="Choose").click()
            page.locator("#list-picker button", has_text="XL").click()
            page.locator(".bubble.business", has_text='echo: /inform{"size": "XL"}').wait_for(timeout=15000)
        finally:
            browser.close()

    user_texts = [e["text"] for e in host.journal(wa_id) if e["event"] == "user"]
    assert user_texts == [hostile, "menu", "/request_human", "sizes", '/inform{"size": "XL"}']
    assert host.journal(wa_id)[0]["metadata"]["whatsapp"]["profile_name"] == "Kavya <b>K</b>"


# --- long polls of the conversation log (the chat page, tests and benchmarks wait on them) -------


async def test_a_long_poll_is_answered_by_its_own_customers_message_only():
    state = SandboxState()
    await state.add(_customer("919800000001"), CUSTOMER, "wamid.in1", "text", {"text": {"body": "hi"}})
    poll = asyncio.create_task(state.wait_for(1, "919800000001", BUSINESS, timeout=5))
    await asyncio.sleep(0.05)
    await state.add(_customer("919800000002"), BUSINESS, "wamid.other", "text", {"text": {"body": "not for you"}})
    await state.update("wamid.in1", status="read")
    await asyncio.sleep(0.05)
    assert not poll.done()
    await state.add(_customer("919800000001"), BUSINESS, "wamid.out1", "text", {"text": {"body": "hello!"}})
    [reply] = await asyncio.wait_for(poll, 1)
    assert (reply.id, reply.seq) == ("wamid.out1", 3)


async def test_a_long_poll_with_nothing_new_times_out_empty_and_reset_ends_polls():
    state = SandboxState()
    started = time.monotonic()
    assert await state.wait_for(0, None, None, timeout=0.2) == []
    # It waited rather than answering at once. Not `>= 0.2`: event loops may run a timer up to their
    # clock resolution early (uvloop counts in whole milliseconds); CI once measured 0.1996 s.
    assert time.monotonic() - started >= 0.15
    poll = asyncio.create_task(state.wait_for(0, "919800000001", None, timeout=30))
    await asyncio.sleep(0.05)
    await state.reset()
    assert await asyncio.wait_for(poll, 1) == []
    assert not state._waiters  # nothing left behind


async def test_stopping_the_sandbox_ends_redeliveries_and_long_polls_instead_of_waiting_for_them():
    """Ctrl-C in the demo (or a test's SIGTERM) must not wait out a redelivery's pause or a phone page's
    long poll: aiohttp's graceful stop waits for pending work after the shutdown signal, up to 60 s."""
    from aiohttp import web

    from whatsapp_sandbox.app import STATE, WEBHOOKS, create_app
    from whatsapp_sandbox.settings import SandboxSettings

    port = free_port()
    settings = SandboxSettings(
        app_secret=SECRETS["WHATSAPP_APP_SECRET"], access_token=SECRETS["WHATSAPP_ACCESS_TOKEN"],
        phone_number_id=SECRETS["WHATSAPP_PHONE_NUMBER_ID"], port=port, status_delays=None,
        webhook_url=f"http://127.0.0.1:{free_port()}/webhooks/whatsapp/webhook",  # nobody listens: redelivery
    )  # fmt: skip
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        base = f"http://127.0.0.1:{port}/sandbox/api"
        answer = await asyncio.to_thread(
            requests.post, f"{base}/customers/919800000077/messages", json={"text": "hello?"}, timeout=10)
        assert answer.json()["redelivering"] is True
        poll = asyncio.create_task(asyncio.to_thread(
            requests.get, f"{base}/messages", params={"after": 1, "wait": 25}, timeout=60))
        for _ in range(1500):  # wait (up to 30 s) until the poll is open
            if app[STATE]._waiters:
                break
            await asyncio.sleep(0.02)
        assert app[STATE]._waiters, "the long poll never reached the sandbox"
        redeliveries = set(app[WEBHOOKS]._redeliveries)
        assert redeliveries  # the unanswered webhook is waiting for its next try
        await app.shutdown()  # what run_app does first on SIGTERM
        assert all(task.done() for task in redeliveries)
        assert (await poll).json()["messages"] == []  # answered, not held until the stop
    finally:
        await runner.cleanup()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is needed for the page test")
def test_customer_page_chats_as_a_customer_without_a_phone_number(stack, host):
    username = f"kavya.{new_wa_id()[-6:]}"
    with playwright_api.sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page()
            page.goto(stack["sandbox_url"] + "/")
            page.fill("#wa-id", "")
            page.fill("#username", username)
            page.check("#no-phone")
            page.click("#customer-form button[type=submit]")
            page.locator("#customer-ids", has_text="BSUID IN.").wait_for(timeout=15000)
            user_id = page.input_value("#wa-id")
            assert user_id.startswith("IN.") and f"@{username}" in page.inner_text("#customer-ids")
            page.fill("#text", "hello from a username")
            page.press("#text", "Enter")
            page.locator(".bubble.business", has_text="echo: hello from a username").wait_for(timeout=15000)
        finally:
            browser.close()

    [user_turn] = [e for e in host.journal(user_id) if e["event"] == "user"]
    assert user_turn["metadata"]["whatsapp"]["wa_id"] is None
    assert user_turn["metadata"]["whatsapp"]["username"] == username


async def test_read_receipt_waits_for_the_business_to_mark_that_message_read_and_says_how_far_the_log_was():
    """What the end-to-end tests wait on (tests/e2e/clients.py): a read call naming the customer's message,
    with or without typing, and the log's last seq when it came."""
    from aiohttp.test_utils import TestClient, TestServer

    from whatsapp_sandbox.app import STATE, create_app
    from whatsapp_sandbox.settings import SandboxSettings

    settings = SandboxSettings(
        app_secret=SECRETS["WHATSAPP_APP_SECRET"], access_token=SECRETS["WHATSAPP_ACCESS_TOKEN"],
        phone_number_id=SECRETS["WHATSAPP_PHONE_NUMBER_ID"], status_delays=None,
    )  # fmt: skip
    app = create_app(settings)
    state = app[STATE]
    customer = state.add_customer(_customer("919800000078"))
    async with TestClient(TestServer(app)) as client:
        graph = f"/v21.0/{SECRETS['WHATSAPP_PHONE_NUMBER_ID']}/messages"

        async def business(body):
            answer = await client.post(graph, json=body, headers=GRAPH_TOKEN)
            assert answer.status == 200, await answer.text()

        async def read_receipt(message_id, wait=0):
            return await client.get("/sandbox/api/read_receipt", params={"message_id": message_id, "wait": wait})

        assert (await read_receipt("wamid.nobody")).status == 404
        await state.add(customer, CUSTOMER, "wamid.in1", "text", {"text": {"body": "hi"}})
        started = time.monotonic()
        unread = await (await read_receipt("wamid.in1", wait=0.2)).json()
        assert time.monotonic() - started >= 0.15  # it waited for a read that did not come
        assert unread["message"]["business_reads"] == [] and unread["last_seq"] == 1

        poll = asyncio.create_task(read_receipt("wamid.in1", wait=10))
        await asyncio.sleep(0.1)
        await business(text_body("919800000078", "a reply is no read"))  # seq 2
        await asyncio.sleep(0.1)
        assert not poll.done()
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in1"}
        await business({**read, "typing_indicator": {"type": "text"}})  # "typing…": more may follow
        answered = await (await asyncio.wait_for(poll, 5)).json()
        assert answered["message"]["status"] == "read"
        assert answered["message"]["business_reads"] == [{"typing": True, "after_seq": 2}]

        await business(text_body("919800000078", "the answer"))  # seq 3
        await business(read)
        await state.add(customer, CUSTOMER, "wamid.in2", "text", {"text": {"body": "thanks"}})  # seq 4
        await business({**read, "message_id": "wamid.in2"})  # marks in1 read too, but names in2 only
        first = await (await read_receipt("wamid.in1")).json()
        assert first["message"]["business_reads"] == [{"typing": True, "after_seq": 2}, {"typing": False, "after_seq": 3}]
        second = await (await read_receipt("wamid.in2", wait=10)).json()
        assert second["message"]["business_reads"] == [{"typing": False, "after_seq": 4}]
        assert not state._read_waiters  # nothing left behind
