"""The knowledge-base page in a real browser (issue 17 items 4-5): Test answer shows what the bot would do,
and a save the action server refused is shown with its line. Rasa's /model/parse and the action server's
/kb endpoints are the fakes of test_kb_test_answer.py; tests/e2e/test_kb_live.py runs the same page
against the real bot."""

# ruff: noqa: F811  (the fixtures imported below are the tests' parameters)
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

from inbox.tests.browser.test_agent_browser import browser, live_inbox, page, sign_in  # noqa: F401
from inbox.tests.browser.test_media_browser import sandbox  # noqa: F401
from inbox.tests.browser.screenshots import SCREENSHOTS
from inbox.tests.test_kb_test_answer import ACTION_TOKEN, FakeBot, bot  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def kb_inbox(live_inbox, bot):
    """The live inbox asking the fake bot (settings read per request by services/kb_live.py)."""
    live_inbox.settings.rasa_url = bot.server.url
    live_inbox.settings.action_server_url = bot.server.url
    live_inbox.settings.action_server_token = SecretStr(ACTION_TOKEN)
    live_inbox.settings.__dict__.pop("action_server_base_url", None)  # a cached_property
    return live_inbox


def test_test_answer_and_a_refused_save_on_the_knowledge_base_page(kb_inbox, bot: FakeBot, page):
    sign_in(page)
    page.goto("/knowledge-base")
    # The action server refused the last save: what and where, and what the bot still serves.
    error = page.locator(".kb-file-error")
    expect(error).to_contain_text("Knowledge base: your last save was not taken (line 1705).")
    expect(error).to_contain_text("entry 'gift_wrap': `title` must be a non-empty string")
    expect(page.locator(".kb-version")).to_have_text("3f9a0c1d2e4b")

    page.get_by_label("A customer's question").fill("I want my money back")
    page.get_by_role("button", name="Test answer").click()
    result = page.locator("#kb-test-result")
    expect(result).to_contain_text("The bot hands off to a person.")
    expect(result).to_contain_text("A topic that always goes to a person (pattern 3)")
    expect(result.locator(".kb-test-intent")).to_have_text("request_refund")
    expect(result.locator("tr[data-entry-id=returns]")).to_contain_text("0.41")
    expect(result.locator("tr[data-entry-id=payments]")).to_contain_text("runner-up")
    assert bot.parses[-1] == {"text": "I want my money back"}
    assert page.console_errors == []
    page.screenshot(path=str(SCREENSHOTS / "kb-test-answer.png"), full_page=True)
