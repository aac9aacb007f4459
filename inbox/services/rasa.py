"""Hands a conversation back to the bot through Rasa's HTTP API (actions/CONTRACT.md, "Resuming")."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

RESUME_EVENTS = [
    {"event": "resume"},
    {"event": "slot", "name": "escalation_reason", "value": None},
    {"event": "slot", "name": "escalation_topic", "value": None},
    {"event": "slot", "name": "handoff_id", "value": None},
    {"event": "slot", "name": "handoff_details", "value": None},
    {"event": "slot", "name": "bot_answer_count", "value": 0},
    {"event": "slot", "name": "turn_limit_reached", "value": False},
    # The bot must be listening again, or the customer's next message matches no dialogue rule.
    {"event": "action", "name": "action_listen"},
]


class RasaUnavailable(Exception):
    """Rasa could not be told; the conversation must stay with the humans."""


class _ServerError(Exception):
    def __init__(self, response: httpx.Response):
        self.response = response


@dataclass
class RasaClient:
    base_url: str
    token: str | None
    http: httpx.Client

    def resume_conversation(self, sender_id: str) -> None:
        try:
            response = self._post_events(sender_id)
        except _ServerError as exhausted:
            response = exhausted.response
        except httpx.TransportError as error:
            raise RasaUnavailable(f"Rasa is not reachable at {self.base_url} ({error.__class__.__name__}).") from error
        if response.status_code in (401, 403):
            raise RasaUnavailable(f"Rasa refused the request (HTTP {response.status_code}): check RASA_TOKEN.")
        if not response.is_success:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}: {response.text[:200]}")

    @retry(
        retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.25, max=1),
        reraise=True,
    )
    def _post_events(self, sender_id: str) -> httpx.Response:
        params = {"token": self.token} if self.token else {}
        response = self.http.post(
            f"{self.base_url.rstrip('/')}/conversations/{quote(sender_id, safe='')}/tracker/events",
            params=params,
            json=RESUME_EVENTS,
        )
        if response.status_code >= 500:
            raise _ServerError(response)
        return response
