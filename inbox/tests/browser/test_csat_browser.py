"""Issue 17 in Debian's Chromium: after Resolve the satisfaction buttons arrive on the customer's phone
(the sandbox page), the customer taps "😞 Not good" and the answer lands on the dashboard; a snoozed
conversation wakes when the customer writes. No connector here: the tap and messages reach the inbox
through Rasa's event stream, with the metadata the connector puts there. Screenshots go to
docs/screenshots/ with UPDATE_SCREENSHOTS=1."""

# ruff: noqa: F811  (the fixtures imported below are the tests' parameters)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from inbox.models import Agent
from inbox.tests.browser.test_agent_browser import browser, hand_off, live_inbox, page, sign_in  # noqa: F401
from inbox.tests.browser.test_media_browser import sandbox  # noqa: F401
from inbox.tests.browser.screenshots import SCREENSHOTS
from inbox.tests.browser.test_window_browser import open_handoff

CUSTOMER = "919876543210"


def customer_messages(sandbox_url: str) -> list[dict]:
    return httpx.get(f"{sandbox_url}/sandbox/api/messages", params={"wa_id": CUSTOMER, "direction": "customer"}).json()[
        "messages"
    ]


def relay(inbox, message: dict, text: str, **whatsapp) -> None:
    """What the connector records in the tracker for a customer's message (connectors/README.md)."""
    metadata = {
        "whatsapp": {"wa_id": CUSTOMER, "profile_name": "Priya Sharma", "message_id": message["id"], **whatsapp}
    }
    inbox.test_broker.user(CUSTOMER, text, datetime.now(UTC), metadata=metadata)


def test_the_csat_buttons_reach_the_phone_and_a_not_good_lands_on_the_dashboard(page, live_inbox, sandbox, browser):
    conversation_id = open_handoff(live_inbox, datetime.now(UTC))
    sign_in(page)
    page.goto(f"/conversations/{conversation_id}")
    page.locator("#reply-text").fill("Your refund for #2812 has started.")
    page.get_by_role("button", name="Send to customer").click()
    expect(page.locator(".msg-agent").last.locator(".delivery")).to_contain_text("Sent to WhatsApp")
    page.get_by_role("button", name="Resolve and hand back to bot").click()
    expect(page.locator("#transcript")).to_contain_text("Satisfaction question sent")

    phone = browser.new_page()
    try:
        phone.goto(sandbox)
        phone.locator("#wa-id").fill(CUSTOMER)
        phone.get_by_role("button", name="Open chat").click()
        question = phone.locator(".bubble.business").last
        expect(question).to_contain_text("How did our team do?")
        for title in ("😊 Great", "😐 Okay", "😞 Not good"):
            expect(question.get_by_role("button", name=title)).to_be_visible()
        phone.locator(".phone").screenshot(path=str(SCREENSHOTS / "csat-buttons-on-phone.png"), caret="initial")
        question.get_by_role("button", name="😞 Not good").click()
        expect(question.get_by_role("button", name="😞 Not good")).to_be_disabled()
        phone.locator("#text").fill("It took three messages to get the refund started")
        phone.get_by_role("button", name="Send").click()
        expect(phone.locator(".bubble.customer")).to_have_count(2)
    finally:
        phone.close()

    tap, comment = [m for m in customer_messages(sandbox) if m["type"] in ("interactive", "text")][-2:]
    reply = tap["content"]["interactive"]["button_reply"]
    assert reply["id"].startswith("csat:") and reply["title"] == "😞 Not good"
    relay(live_inbox, tap, reply["title"], type="interactive", reply=reply, csat="answer")
    relay(live_inbox, comment, comment["content"]["text"]["body"], type="text", csat="comment")

    expect(page.locator("#transcript")).to_contain_text("Customer rated the conversation: Not good", timeout=15_000)
    # Two other customers the bot answered itself this month, so the headline numbers have data.
    for number, wait in ((1, 2), (2, 3)):
        customer, at = f"91980000000{number}", datetime.now(UTC) - timedelta(minutes=10 * number)
        live_inbox.test_broker.user(customer, "Do you ship to Pune?", at)
        match = {"entry_id": "shipping", "score": 0.9, "answered": True, "threshold": 0.55}
        live_inbox.test_broker.slot(customer, "kb_match", match, at)
        live_inbox.test_broker.bot(customer, "Yes, we ship across India in 3-5 days.", at + timedelta(seconds=wait))
    for _attempt in range(75):  # the inline consumer polls the event stream; the dashboard is not live
        page.goto("/dashboard")
        if page.locator("#bot-answers").text_content() == "2":
            break
        page.wait_for_timeout(200)
    expect(page.locator("#bot-answers")).to_have_text("2")
    expect(page.locator("#csat-flagged")).to_contain_text("It took three messages to get the refund started")
    expect(page.locator("#csat-by-agent")).to_contain_text("Anita Desai")
    expect(page.locator("#csat-response-rate")).to_have_text("100.0%")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-csat.png"), full_page=True, caret="initial")
    page.locator("#csat").screenshot(path=str(SCREENSHOTS / "dashboard-csat-section.png"), caret="initial")
    # Clearing a flag is the team lead's: Anita (an agent) has no button until she is made an admin.
    expect(page.locator("#csat-flagged")).to_contain_text("For the team lead")
    expect(page.locator("#csat-flagged").get_by_role("button", name="Mark seen")).to_have_count(0)
    with live_inbox.db.write() as session:
        session.scalars(select(Agent).where(Agent.login == "anita")).one().role = "admin"
    page.reload()
    page.locator("#csat-flagged").get_by_role("button", name="Mark seen").click()
    expect(page.locator("#csat-flagged")).not_to_contain_text("It took three messages")
    assert page.console_errors == []


def test_a_conversation_snoozed_until_the_customer_replies_wakes_on_their_message(page, live_inbox, sandbox):
    conversation_id = hand_off(live_inbox, requested_at=None)["inbox_conversation_id"]
    sign_in(page)
    page.goto(f"/conversations/{conversation_id}")
    page.wait_for_function("document.body.dataset.live === 'connected'")
    page.locator("#snooze-until").select_option("reply")
    page.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.locator("section.snooze")).to_contain_text("Snoozed until the customer replies")
    expect(page.locator("#transcript")).to_contain_text("Snoozed by Anita Desai until the customer replies.")

    page.goto("/follow-ups")
    expect(page.locator("#follow-ups-on-reply")).to_contain_text("Priya Sharma")
    page.goto(f"/conversations/{conversation_id}")
    page.wait_for_function("document.body.dataset.live === 'connected'")
    live_inbox.test_broker.user(CUSTOMER, "Here is the photo you asked for", datetime.now(UTC))
    expect(page.locator("#transcript")).to_contain_text("Back from snooze (the customer wrote)", timeout=15_000)
    expect(page.get_by_role("button", name="Resolve and hand back to bot")).to_be_visible()
    page.goto("/follow-ups")
    expect(page.locator("#follow-ups-on-reply")).to_contain_text("None.")

    # Snoozed again; answering from the reply box sends the reply and wakes the conversation.
    page.goto(f"/conversations/{conversation_id}")
    page.locator("#snooze-until").select_option("1h")
    page.get_by_role("button", name="Snooze", exact=True).click()
    expect(page.locator("#snoozed-reply-hint")).to_be_visible()
    page.locator("#reply-text").fill("Thanks, the replacement ships today.")
    page.get_by_role("button", name="Send to customer").click()
    expect(page.locator("#transcript")).to_contain_text("Back from snooze (Anita Desai wrote to the customer)")
    expect(page.locator(".msg-agent").last.locator(".delivery")).to_contain_text("Sent to WhatsApp")
    expect(page.locator("section.snooze")).to_contain_text("Snooze")
    assert page.console_errors == []
