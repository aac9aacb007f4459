"""Media in Debian's Chromium: a customer's photo arrives live in the open conversation and opens large;
an agent sends a PDF that arrives on the sandbox's phone page. Prints the time from the customer's
message reaching Rasa's event stream to its preview on the agent's screen. Screenshots go to
docs/screenshots/ with UPDATE_SCREENSHOTS=1 (the agent guide in inbox/README.md shows them)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect

from inbox.tests import sandbox_server
from inbox.tests.browser.screenshots import SCREENSHOTS
from inbox.tests.browser.test_agent_browser import browser, hand_off, live_inbox, page, sign_in  # noqa: F401
from inbox.tests.test_media import PDF, png

CUSTOMER = "919876543210"


@pytest.fixture(scope="module")
def sandbox():
    # Killed if a graceful stop hangs (webhook redeliveries to the absent connector).
    with sandbox_server.running_sandbox() as url:
        yield url


def _open_handoff(inbox) -> int:
    """A hand-off whose customer wrote just now: the 24-hour window is open, the composer offers files."""
    now = datetime.now(UTC).isoformat()
    transcript = [{"role": "customer", "text": "My jacket's zip broke", "timestamp": now}]
    return hand_off(inbox, requested_at=None, transcript=transcript)["inbox_conversation_id"]


def _customer_photo(sandbox_url: str, caption: str) -> dict:
    body = {"media": {"type": "image", "mime_type": "image/jpeg", "caption": caption,
                      "data_base64": base64.b64encode(png(320, 200)).decode()}}  # fmt: skip
    sent = httpx.post(f"{sandbox_url}/sandbox/api/customers/{CUSTOMER}/messages", json=body).json()
    messages = httpx.get(
        f"{sandbox_url}/sandbox/api/messages", params={"wa_id": CUSTOMER, "direction": "customer"}
    ).json()
    return next(m["content"] for m in messages["messages"] if m["id"] == sent["message_id"])


def test_a_customer_photo_arrives_live_and_opens_large(page, live_inbox, sandbox):  # noqa: F811
    sign_in(page)
    page.goto(f"/conversations/{_open_handoff(live_inbox)}")
    page.wait_for_function("document.body.dataset.live === 'connected'")

    message = _customer_photo(sandbox, "the zip on my jacket broke")
    whatsapp = {"wa_id": CUSTOMER, "profile_name": "Priya Sharma", "phone_number_id": "106540352242922",
                "message_id": message["id"], "type": "image", "timestamp": str(int(time.time())),
                "media": {k: message["image"][k] for k in ("id", "mime_type", "sha256", "caption")}}  # fmt: skip
    started = time.monotonic()
    # What the connector records in Rasa for the photo (the webhook's user event), on the event stream.
    live_inbox.test_broker.publish(CUSTOMER, {"event": "user", "timestamp": datetime.now(UTC).timestamp(),
                                              "text": "[image] the zip on my jacket broke", "input_channel": "whatsapp",
                                              "metadata": {"whatsapp": whatsapp}})  # fmt: skip
    preview = page.locator("#transcript .msg-customer .media-image img").last
    expect(preview).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 320", arg=preview.element_handle())
    elapsed = time.monotonic() - started
    print(
        f"\ncustomer photo: user event on the stream -> preview shown in the agent's browser: {elapsed * 1000:.0f} ms"
    )
    expect(page.locator("#transcript .msg-customer").last).to_contain_text("the zip on my jacket broke")
    page.screenshot(path=str(SCREENSHOTS / "media-customer-photo.png"))

    preview.click()
    large = page.locator("dialog#media-viewer img")
    expect(large).to_be_visible()
    width = "(img) => img.getBoundingClientRect().width"
    assert large.evaluate(width) > preview.evaluate(width)  # larger than the preview
    page.screenshot(path=str(SCREENSHOTS / "media-photo-large.png"))
    page.keyboard.press("Escape")
    expect(large).to_be_hidden()
    assert page.console_errors == []


def test_an_agent_sends_a_pdf_that_arrives_on_the_customers_phone(page, live_inbox, sandbox, browser):  # noqa: F811
    sign_in(page)
    page.goto(f"/conversations/{_open_handoff(live_inbox)}")
    page.locator("#attach summary").click()
    page.locator("#attach-file").set_input_files(
        files=[{"name": "return-label.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.locator("#attach-caption").fill("Your return label")
    page.get_by_role("button", name="Send file").click()
    sent = page.locator(".msg-agent").last
    expect(sent).to_contain_text("return-label.pdf")
    expect(sent.locator(".delivery")).to_contain_text("Sent to WhatsApp")
    page.screenshot(path=str(SCREENSHOTS / "media-agent-pdf.png"))

    phone = browser.new_page(base_url=sandbox)
    try:
        phone.goto("/")
        phone.locator("#wa-id").fill(CUSTOMER)
        phone.get_by_role("button", name="Open chat").click()
        document = phone.locator(".bubble a.sent-document").last
        expect(document).to_contain_text("return-label.pdf")
        href = document.get_attribute("href")
        assert httpx.get(f"{sandbox}{href}").content == PDF
        phone.screenshot(path=str(SCREENSHOTS / "media-sandbox-pdf.png"))
    finally:
        phone.close()
    assert page.console_errors == []


def test_the_customer_sends_a_photo_and_a_location_from_the_phone_page(browser, sandbox):  # noqa: F811
    from inbox.tests.fakes import GRAPH_TOKEN

    phone = browser.new_page(base_url=sandbox)
    try:
        phone.goto("/")
        phone.locator("#wa-id").fill("919811122233")
        phone.get_by_role("button", name="Open chat").click()
        phone.locator("#text").fill("the broken zip")  # the caption
        phone.locator("#send-file").set_input_files(
            files=[{"name": "zip.png", "mimeType": "image/png", "buffer": png(120, 80)}]
        )
        photo = phone.locator(".bubble.customer img.sent-image").last
        expect(photo).to_be_visible()
        phone.get_by_role("button", name="Location").click()
        expect(phone.locator(".bubble.customer").last).to_contain_text("[location]")
        phone.screenshot(path=str(SCREENSHOTS / "media-sandbox-customer-photo.png"))
    finally:
        phone.close()
    sent = httpx.get(f"{sandbox}/sandbox/api/messages", params={"wa_id": "919811122233", "direction": "customer"})
    image, location = sent.json()["messages"][-2:]
    assert image["content"]["image"]["caption"] == "the broken zip" and location["type"] == "location"
    # Meta's way: the webhook's media id -> a URL that needs the access token -> the bytes.
    token = {"Authorization": f"Bearer {GRAPH_TOKEN}"}
    info = httpx.get(f"{sandbox}/v21.0/{image['content']['image']['id']}", headers=token).json()
    assert httpx.get(info["url"], headers=token).content == png(120, 80)
