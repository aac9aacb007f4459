"""Hands a conversation back to the bot through Rasa's HTTP API (actions/CONTRACT.md, "Resuming")."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import jwt
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


# Rasa's HTTP API checks an HS256 JWT (`rasa run --jwt-secret … --jwt-method HS256`) in the
# Authorization header; the tracker endpoints need the role "admin" (rasa/server.py, requires_auth).
# A token lives a few minutes: one that leaks from somewhere is soon worthless, unlike a `?token=`
# that every access log along the way keeps.
JWT_USERNAME = "kesar-lane-inbox"
JWT_LIFETIME_SECONDS = 300


def rasa_jwt(secret: str, lifetime_seconds: int = JWT_LIFETIME_SECONDS) -> str:
    payload = {"user": {"username": JWT_USERNAME, "role": "admin"}, "exp": int(time.time()) + lifetime_seconds}
    return jwt.encode(payload, secret, algorithm="HS256")


class RasaUnavailable(Exception):
    """Rasa could not be told; the conversation must stay with the humans."""


class _ServerError(Exception):
    def __init__(self, response: httpx.Response):
        self.response = response


@dataclass
class RasaClient:
    base_url: str
    jwt_secret: str | None  # None: Rasa runs without authentication (never in production)
    http: httpx.Client

    def resume_conversation(self, sender_id: str) -> None:
        try:
            response = self._post_events(sender_id)
        except _ServerError as exhausted:
            response = exhausted.response
        except httpx.TransportError as error:
            raise RasaUnavailable(f"Rasa is not reachable at {self.base_url} ({error.__class__.__name__}).") from error
        if response.status_code in (401, 403):
            raise RasaUnavailable(
                f"Rasa refused the request (HTTP {response.status_code}): check that RASA_JWT_SECRET is the "
                "secret Rasa was started with (--jwt-secret)."
            )
        if not response.is_success:
            raise RasaUnavailable(f"Rasa answered HTTP {response.status_code}: {response.text[:200]}")

    @retry(
        retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.25, max=1),
        reraise=True,
    )
    def _post_events(self, sender_id: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {rasa_jwt(self.jwt_secret)}"} if self.jwt_secret else {}
        response = self.http.post(
            f"{self.base_url.rstrip('/')}/conversations/{quote(sender_id, safe='')}/tracker/events",
            headers=headers,
            json=RESUME_EVENTS,
        )
        if response.status_code >= 500:
            raise _ServerError(response)
        return response
