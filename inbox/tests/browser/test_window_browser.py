"""The 24-hour window, templates, blue ticks and "typing…" in Debian's Chromium: the countdown runs
live and turns the composer into the template picker, a template reaches the customer's phone (the
sandbox page), and the phone shows blue ticks when the agent opens the conversation and "typing…"
while the agent types. Screenshots: docs/screenshots/ with UPDATE_SCREENSHOTS=1."""

# ruff: noqa: F811  (the fixtures imported below are the tests' parameters)
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from inbox.tests.browser.screenshots import SCREENSHOTS
from inbox.tests.browser.test_agent_browser import browser, hand_off, live_inbox, page, sign_in  # noqa: F401
from inbox.tests.browser.test_media_browser import sandbox  # noqa: F401  (stops despite webhook redeliveries)

CUSTOMER = "919876543210"


def open_handoff(inbox, customer_wrote_at: datetime, text: str = "My kurta from order #2812 came torn") -> int:
    transcript = [{"role": "customer", "text": text, "timestamp": customer_wrote_at.isoformat()}]
    return hand_off(inbox, requested_at=None, transcript=transcript)["inbox_conversation_id"]


class MovableClock:
    """The real clock, plus however far a test has moved it on."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def inbox_clock():
    """The live inbox's clock for this module's tests (live_inbox in test_agent_browser.py uses it)."""
    return MovableClock()


def test_the_window_counts_down_live_and_then_offers_only_templates(page, live_inbox, inbox_clock):
    # The customer wrote 23 h 59 min 40 s ago: 20 seconds of the window left.
    conversation_id = open_handoff(live_inbox, datetime.now(UTC) - timedelta(hours=24) + timedelta(seconds=20))
    page.clock.install()  # the page's timers run on real time until the test moves this clock on
    sign_in(page)
    page.goto(f"/conversations/{conversation_id}")
    countdown = page.locator("#service-window .window-countdown")
    expect(page.locator("#service-window")).to_contain_text("24-hour window open")
    expect(countdown).to_have_text(re.compile(r"^\d+ s left$"))
    first = countdown.text_content()
    expect(countdown).not_to_have_text(first)  # it ticks in the page, no reload
    page.locator("#service-window").screenshot(path=str(SCREENSHOTS / "window-countdown.png"), caret="initial")

    # At zero the composer becomes the template picker by itself. Instead of waiting the 20 s, both clocks
    # move on past the close: the server's (what it renders) and the page's (what the countdown reads).
    inbox_clock.ahead = timedelta(seconds=21)
    page.clock.fast_forward(21_000)
    expect(page.locator("#template-form")).to_be_visible()
    expect(page.locator("#service-window")).to_contain_text("24-hour window closed")
    expect(page.locator("#reply-form")).to_have_count(0)
    assert page.console_errors == []


def test_a_closed_window_offers_only_templates_and_the_template_reaches_the_phone(
    page,
    live_inbox,
    sandbox,
    browser,
):
    conversation_id = open_handoff(live_inbox, datetime.now(UTC) - timedelta(hours=26))
    sign_in(page)
    page.goto(f"/conversations/{conversation_id}")
    expect(page.locator("#service-window")).to_contain_text("24-hour window closed")
    expect(page.locator("#reply-form")).to_have_count(0)  # no free text: WhatsApp would refuse it (131047)

    page.locator("#template-key").select_option("order_update:en")
    expect(page.locator('.template-fields[data-template="support_follow_up:en"]')).to_be_hidden()  # only the chosen one
    fields = page.locator('.template-fields[data-template="order_update:en"]')
    values = fields.locator("input[name=value]")
    expect(values).to_have_count(3)
    expect(values.nth(0)).to_have_value("Priya")  # from the conversation
    expect(values.nth(1)).to_have_value("#2812")
    expect(values.nth(2)).to_have_value("Anita")
    values.nth(1).fill("#2812 (kurta)")  # editable before sending
    preview = fields.locator(".template-preview")
    expect(preview).to_contain_text("your order #2812 (kurta).")
    page.locator(".composer").screenshot(path=str(SCREENSHOTS / "window-templates.png"), caret="initial")
    page.get_by_role("button", name="Send template").click()
    sent = page.locator(".msg-agent").last
    expect(sent).to_contain_text("Hi Priya, we have an update on your order #2812 (kurta).")
    expect(sent.locator(".delivery")).to_contain_text("Sent to WhatsApp")

    # The customer's phone shows the filled template.
    phone = browser.new_page()
    try:
        phone.goto(sandbox)
        phone.locator("#wa-id").fill(CUSTOMER)
        phone.get_by_role("button", name="Open chat").click()
        expect(phone.locator(".bubble.business").last).to_contain_text(
            "Hi Priya, we have an update on your order #2812 (kurta). Please reply to this message so that Anita"
        )
        phone.locator(".phone").screenshot(path=str(SCREENSHOTS / "window-template-on-phone.png"), caret="initial")
    finally:
        phone.close()
    [template] = [
        message
        for message in httpx.get(f"{sandbox}/sandbox/api/messages", params={"wa_id": CUSTOMER}).json()["messages"]
        if message["type"] == "template"
    ]
    assert template["content"]["template"]["name"] == "order_update"
    assert page.console_errors == []


def test_the_phone_shows_blue_ticks_when_the_agent_opens_it_and_typing_while_the_agent_types(
    page,
    live_inbox,
    sandbox,
    browser,
):
    customer = "919812345678"
    phone = browser.new_page()
    try:
        phone.goto(sandbox)
        phone.locator("#wa-id").fill(customer)
        phone.get_by_role("button", name="Open chat").click()
        phone.locator("#text").fill("The zip on my jacket broke")
        phone.get_by_role("button", name="Send").click()
        ticks = phone.locator(".bubble.customer .ticks")
        expect(ticks).to_have_attribute("data-ticks", "delivered")  # two grey ticks

        # No connector here: the customer's message reaches the inbox through Rasa's event stream,
        # with its WhatsApp id as the connector puts it in the metadata.
        [written] = httpx.get(
            f"{sandbox}/sandbox/api/messages", params={"wa_id": customer, "direction": "customer"}
        ).json()["messages"]
        now = datetime.now(UTC)
        metadata = {"whatsapp": {"wa_id": customer, "profile_name": "Priya Sharma", "message_id": written["id"]}}
        live_inbox.test_broker.user(customer, "The zip on my jacket broke", now, metadata=metadata)
        conversation_id = hand_off(
            live_inbox,
            handoff_id="hf_ticks",
            conversation_id=customer,
            customer={"whatsapp_id": customer, "name": "Priya Sharma"},
            requested_at=None,
            transcript=[{"role": "customer", "text": "The zip on my jacket broke", "timestamp": now.isoformat()}],
        )["inbox_conversation_id"]

        sign_in(page)
        page.goto(f"/conversations/{conversation_id}")
        expect(page.locator("#transcript")).to_contain_text("The zip on my jacket broke")
        expect(ticks).to_have_attribute("data-ticks", "read")  # blue: the agent opened it
        expect(phone.locator("#typing")).to_be_hidden()

        page.locator("#reply-text").press_sequentially("Sorry about the zip")
        expect(phone.locator("#typing")).to_be_visible()
        phone.locator(".phone").screenshot(path=str(SCREENSHOTS / "window-ticks-typing.png"), caret="initial")
        page.get_by_role("button", name="Send to customer").click()
        expect(phone.locator(".bubble.business").last).to_contain_text("Sorry about the zip")
        expect(phone.locator("#typing")).to_be_hidden()  # the reply ends "typing…"
    finally:
        phone.close()
    assert page.console_errors == []


def test_the_phone_opens_a_chat_while_its_configuration_is_still_loading(sandbox, browser):  # noqa: F811
    # On a busy machine the sandbox page's configuration request can still be on its way when "Open chat" is
    # clicked; the chat must open anyway (before the fix the click reloaded the page and left the composer off).
    held = []
    phone = browser.new_page()
    try:
        phone.route("**/sandbox/api/config", lambda route: held.append(route))  # answered at the end of the test
        phone.goto(sandbox)
        phone.locator("#wa-id").fill(CUSTOMER)
        phone.get_by_role("button", name="Open chat").click()
        expect(phone.locator("#text")).to_be_enabled()
        assert held, "the configuration was answered before the click: the test proves nothing"
        expect(phone.locator("#business-number")).to_have_text("")
        held[0].continue_()
        expect(phone.locator("#business-number")).to_have_text(re.compile(r"^\+\d+$"))
    finally:
        phone.close()
