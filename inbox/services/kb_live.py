"""The knowledge-base page's live parts: "Test answer" and what the action server serves.

Test answer asks the live bot, never a copy of it: Rasa's `POST /model/parse` (the NLU model the bot
runs, with the short-lived JWT of services/rasa.py) and then the action server's `POST /kb/explain`
with that parse (the knowledge base, settings and hand-off decision the actions use; X-Action-Token).
The status comes from the action server's `GET /kb/status` (actions/CONTRACT.md): which version of
data/knowledge_base.yml and escalation.yml it serves, and why a saved edit was not taken (with its line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from inbox.services.rasa import rasa_jwt

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

MAX_QUESTION_CHARS = 500  # a WhatsApp question, not an essay; the action server takes up to 2,000
TOKEN_HEADER = "X-Action-Token"

# The action's hand-off reasons, as the page says them.
BECAUSE_LABELS = {
    "nlu_low_confidence": "Low confidence: the NLU is not sure what the customer means (pattern 1)",
    "kb_not_confident": "Knowledge base not confident: no entry reaches the answer threshold (pattern 1)",
    "customer_request": "The customer asks for a person (pattern 2)",
    "topic": "A topic that always goes to a person (pattern 3)",
}


class KbLiveError(Exception):
    """Rasa or the action server could not answer; the message says which and what to check."""


@dataclass
class KbLiveClient:
    rasa_url: str
    rasa_jwt_secret: str | None
    action_server_url: str
    action_server_token: str | None
    http: httpx.Client

    def test_answer(self, question: str) -> dict[str, Any]:
        question = " ".join(question.split())
        if not question:
            raise ValueError("Type a question to test.")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"Keep the question under {MAX_QUESTION_CHARS} characters.")
        parse = self._parse(question)
        explained = self._action_server("POST", "/kb/explain", json={"text": question, "parse": parse})
        if explained.get("handoff"):
            because = explained["handoff"].get("because")
            explained["handoff"]["label"] = BECAUSE_LABELS.get(because, because)
        return explained

    def status(self) -> dict[str, Any]:
        return self._action_server("GET", "/kb/status")

    def _parse(self, text: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {rasa_jwt(self.rasa_jwt_secret)}"} if self.rasa_jwt_secret else {}
        try:
            response = self.http.post(f"{self.rasa_url.rstrip('/')}/model/parse", json={"text": text}, headers=headers)
        except httpx.TransportError as error:
            raise KbLiveError(f"Rasa is not reachable at {self.rasa_url} ({error.__class__.__name__}).") from error
        if response.status_code in (401, 403):
            raise KbLiveError(
                "Rasa refused the request: check that RASA_JWT_SECRET is the secret Rasa was started with."
            )
        if not response.is_success:
            raise KbLiveError(f"Rasa answered HTTP {response.status_code}.")
        return response.json()

    def _action_server(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        if not self.action_server_token:
            raise KbLiveError("ACTION_SERVER_TOKEN is not set: the inbox cannot ask the action server.")
        try:
            response = self.http.request(
                method, f"{self.action_server_url}{path}", headers={TOKEN_HEADER: self.action_server_token}, **kwargs
            )
        except httpx.TransportError as error:
            raise KbLiveError(
                f"The action server is not reachable at {self.action_server_url} ({error.__class__.__name__})."
            ) from error
        if response.status_code == 403:
            raise KbLiveError("The action server refused the request: ACTION_SERVER_TOKEN differs from its own.")
        if not response.is_success:
            raise KbLiveError(f"The action server answered HTTP {response.status_code}.")
        return response.json()


def kb_live_client(inbox: Inbox) -> KbLiveClient:
    settings = inbox.settings

    def secret(value):
        return value.get_secret_value() if value else None

    return KbLiveClient(
        rasa_url=settings.rasa_url,
        rasa_jwt_secret=secret(settings.rasa_jwt_secret),
        action_server_url=settings.action_server_base_url,
        action_server_token=secret(settings.action_server_token),
        http=inbox.http,
    )
