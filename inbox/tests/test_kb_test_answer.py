"""Test answer and the live knowledge-base status on the knowledge-base page (issue 17 items 4-5), against
small real HTTP servers standing in for Rasa's /model/parse and the action server's /kb endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from inbox.context import Inbox
from inbox.services import bootstrap
from inbox.tests.conftest import login, post_form
from inbox.tests.fakes import ThreadedServer, _rasa_jwt_role
from inbox.web.app import create_app

ACTION_TOKEN = "action-server-token-" + "x" * 24

EXPLAINED = {
    "text": "I want my money back",
    "question": "I want my money back",
    "intent": {"name": "request_refund", "confidence": 0.91},
    "intent_ranking": [{"name": "request_refund", "confidence": 0.91}],
    "threshold": 0.55,
    "matches": [
        {
            "entry_id": "returns",
            "title": "Returns & refunds",
            "score": 0.41,
            "similarity": 0.7,
            "above_threshold": False,
        },
        {"entry_id": "payments", "title": "Payments", "score": 0.03, "similarity": 0.4, "above_threshold": False},
    ],
    "outcome": "handoff",
    "handoff": {"reason": "topic", "because": "topic", "topic": "refund", "tags": ["refund"], "priority": "high"},
    "knowledge_base_version": "3f9a0c1d2e4b",
}
STATUS = {
    "knowledge_base": {
        "path": "data/knowledge_base.yml",
        "loaded_at": "2026-12-01T20:41:07Z",
        "version": "3f9a0c1d2e4b",
        "entries": 15,
        "active_entries": 15,
        "error": {
            "message": "data/knowledge_base.yml: entry 'gift_wrap': `title` must be a non-empty string",
            "line": 1705,
            "seen_at": "2026-12-01T20:45:00Z",
        },
    },
    "escalation_settings": {
        "path": "escalation.yml",
        "loaded_at": "2026-12-01T20:41:05Z",
        "version": "aa",
        "answer_threshold": 0.55,
        "turn_limit": 3,
        "error": None,
    },
    "pid": 1,
}


@dataclass
class FakeBot:
    """Rasa's /model/parse (JWT checked like Rasa does) and the action server's /kb endpoints (token)."""

    parses: list[dict] = field(default_factory=list)
    explains: list[dict] = field(default_factory=list)
    server: ThreadedServer | None = None

    def app(self) -> Starlette:
        async def parse(request: Request):
            if _rasa_jwt_role(request.headers.get("authorization", "")) is None:
                return JSONResponse({"reason": "NotAuthenticated"}, status_code=401)
            text = (await request.json())["text"]
            self.parses.append({"text": text})
            return JSONResponse(
                {"text": text, "intent": EXPLAINED["intent"], "intent_ranking": EXPLAINED["intent_ranking"]}
            )

        def token_ok(request: Request) -> bool:
            return request.headers.get("x-action-token") == ACTION_TOKEN

        async def explain(request: Request):
            if not token_ok(request):
                return JSONResponse({"error": "forbidden"}, status_code=403)
            self.explains.append(await request.json())
            return JSONResponse({**EXPLAINED, "text": self.explains[-1]["text"]})

        async def status(request: Request):
            if not token_ok(request):
                return JSONResponse({"error": "forbidden"}, status_code=403)
            return JSONResponse(STATUS)

        return Starlette(
            routes=[
                Route("/model/parse", parse, methods=["POST"]),
                Route("/kb/explain", explain, methods=["POST"]),
                Route("/kb/status", status, methods=["GET"]),
            ]
        )


@pytest.fixture(scope="module")
def bot():
    fake = FakeBot()
    fake.server = ThreadedServer(fake.app()).start()
    yield fake
    fake.server.stop()


def _client(settings, clock, bot, **overrides):
    updated = settings.model_copy(
        update={
            "rasa_url": bot.server.url,
            "action_server_url": f"{bot.server.url}/webhook",
            "action_server_token": SecretStr(ACTION_TOKEN),
            **overrides,
        }
    )
    inbox = Inbox(updated, clock=clock)
    bootstrap.prepare(inbox)
    return inbox, TestClient(create_app(inbox, run_background_workers=False), follow_redirects=False)


@pytest.fixture
def signed_in(settings, clock, bot, agents):
    bot.parses.clear()
    bot.explains.clear()
    inbox, client = _client(settings, clock, bot)
    with client:
        login(client, "anita")
        yield client
    inbox.close()


def test_test_answer_shows_intent_entries_and_why_it_hands_off(signed_in, bot):
    page = post_form(
        signed_in, "/knowledge-base/test", {"question": "  I want my   money back "}, headers={"HX-Request": "true"}
    )
    assert page.status_code == 200
    html = page.text
    assert "The bot hands off to a person." in html and "A topic that always goes to a person (pattern 3)" in html
    assert "request_refund" in html and "0.91" in html
    assert "Returns &amp; refunds" in html and "0.41" in html and "runner-up" in html
    # Rasa parsed the question (JWT accepted) and the action server explained Rasa's own parse.
    assert bot.parses == [{"text": "I want my money back"}]
    assert bot.explains[0]["parse"]["intent"]["name"] == "request_refund"


def test_test_answer_as_json(signed_in):
    answer = post_form(
        signed_in, "/knowledge-base/test", {"question": "I want my money back"}, headers={"Accept": "application/json"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["matches"][0]["entry_id"] == "returns" and body["handoff"]["label"].startswith("A topic")


def test_an_empty_question_is_refused_with_a_reason(signed_in):
    answer = post_form(signed_in, "/knowledge-base/test", {"question": "   "}, headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.json()["detail"] == "Type a question to test."


def test_agents_must_be_signed_in(settings, clock, bot, agents):
    inbox, client = _client(settings, clock, bot)
    with client:
        client.get("/login")
        answer = post_form(client, "/knowledge-base/test", {"question": "cod?"}, headers={"Accept": "application/json"})
        assert answer.status_code == 401
        assert client.get("/knowledge-base/status", headers={"Accept": "application/json"}).status_code == 401
    inbox.close()
    assert bot.parses == [] or all(p["text"] != "cod?" for p in bot.parses)


def test_test_answer_is_rate_limited_per_agent(settings, clock, bot, agents):
    inbox, client = _client(settings, clock, bot, inbox_kb_test_per_minute=2)
    with client:
        login(client, "anita")
        codes = [
            post_form(
                client, "/knowledge-base/test", {"question": "cod?"}, headers={"Accept": "application/json"}
            ).status_code
            for _ in range(3)
        ]
    inbox.close()
    assert codes == [200, 200, 429]


def test_a_wrong_action_server_token_is_explained(settings, clock, bot, agents):
    inbox, client = _client(settings, clock, bot, action_server_token=SecretStr("not-the-token"))
    with client:
        login(client, "anita")
        answer = post_form(client, "/knowledge-base/test", {"question": "cod?"}, headers={"HX-Request": "true"})
    inbox.close()
    assert answer.status_code == 200 and "ACTION_SERVER_TOKEN differs" in answer.text


def test_the_page_shows_a_failed_save_with_its_line(signed_in):
    assert 'hx-get="/knowledge-base/status"' in signed_in.get("/knowledge-base").text
    status = signed_in.get("/knowledge-base/status", headers={"HX-Request": "true"}).text
    assert "Knowledge base: your last save was not taken (line 1705)." in status
    assert "entry &#39;gift_wrap&#39;: `title` must be a non-empty string" in status
    assert 'knowledge base version <code class="kb-version">3f9a0c1d2e4b</code>' in status
    assert signed_in.get("/knowledge-base/status", headers={"Accept": "application/json"}).json() == STATUS
