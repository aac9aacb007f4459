"""Client for the inbox's hand-off API (contract: inbox/API.md).

The customer is waiting while this runs, so each attempt has a short timeout and only connection
errors, timeouts and 5xx answers are retried (the `handoff_id` makes retries safe). Anything else is
a definite answer. Retries come from aiohttp-retry rather than a hand-written loop.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

import aiohttp
from aiohttp_retry import ExponentialRetry, RetryClient

from actions.privacy import mask_text

logger = logging.getLogger(__name__)

HANDOFF_PATH = "/api/v1/handoffs"


class HandoffFailed(RuntimeError):
    """The inbox did not accept the hand-off; `reason` is safe to log."""

    def __init__(self, reason: str, status: Optional[int] = None) -> None:
        reason = mask_text(reason)  # the inbox's answer may echo the customer's phone number back
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class HandoffAccepted:
    status: str  # "assigned" | "queued"
    agent_first_name: Optional[str]
    agent_pronoun: str  # "she" | "he" | "they"
    eta_text: str
    eta_minutes: Optional[int]
    inbox_conversation_id: Optional[int]
    raw: Dict[str, Any]

    @classmethod
    def from_response(cls, body: Any) -> "HandoffAccepted":
        if not isinstance(body, dict):
            raise HandoffFailed("inbox answered with a body that is not a JSON object")
        assignee = body.get("assignee") or None
        eta_text = body.get("eta_text")
        status = body.get("status")
        if status not in ("assigned", "queued") or not isinstance(eta_text, str) or not eta_text:
            raise HandoffFailed(f"inbox answer lacks status/eta_text: {str(body)[:200]}")
        if status == "assigned" and not (isinstance(assignee, dict) and assignee.get("first_name")):
            raise HandoffFailed("inbox said 'assigned' without an assignee first_name")
        pronoun = (assignee or {}).get("pronoun") or "they"
        return cls(
            status=status,
            agent_first_name=(assignee or {}).get("first_name"),
            agent_pronoun=pronoun if pronoun in ("she", "he", "they") else "they",
            eta_text=eta_text,
            eta_minutes=body.get("eta_minutes"),
            inbox_conversation_id=body.get("inbox_conversation_id"),
            raw=body,
        )


class InboxClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_seconds: float = 2.0,
        attempts: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._retry = ExponentialRetry(
            attempts=max(1, attempts),
            start_timeout=0.2,
            max_timeout=1.0,
            statuses={500, 502, 503, 504},
            exceptions={aiohttp.ClientConnectionError, asyncio.TimeoutError},
            methods={"POST"},
            retry_all_server_errors=True,
        )

    @classmethod
    def from_env(cls, timeout_seconds: float = 2.0, attempts: int = 2) -> Optional["InboxClient"]:
        """None when INBOX_URL is not set (the hand-off then reaches the inbox via the event stream)."""
        url = os.environ.get("INBOX_URL", "").strip()
        if not url:
            return None
        return cls(url, os.environ.get("INBOX_BOT_TOKEN", ""), timeout_seconds, attempts)

    async def create_handoff(self, payload: Dict[str, Any]) -> HandoffAccepted:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                client = RetryClient(client_session=session, retry_options=self._retry)
                async with client.post(self.base_url + HANDOFF_PATH, json=payload, headers=headers) as response:
                    if response.status not in (200, 201):
                        detail = (await response.text())[:300]
                        raise HandoffFailed(f"inbox answered {response.status}: {detail}", response.status)
                    try:
                        body = await response.json(content_type=None)
                    except ValueError as error:
                        raise HandoffFailed("inbox answered with invalid JSON") from error
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise HandoffFailed(f"inbox unreachable: {type(error).__name__}: {error}") from error
        return HandoffAccepted.from_response(body)
