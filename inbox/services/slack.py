"""Slack pings through an incoming webhook (SLACK_WEBHOOK_URL); off when it is not set.

Sent from a background thread so that a slow Slack never slows a hand-off down.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

logger = logging.getLogger(__name__)


def _worth_retrying(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code == 429 or error.response.status_code >= 500
    return isinstance(error, httpx.TransportError)


class SlackNotifier:
    def __init__(self, webhook_url: str | None, http: httpx.Client | None = None):
        self.webhook_url = webhook_url
        self._http = http or httpx.Client(timeout=5.0)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack")
        self._pending: set[Future] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    def notify(self, text: str) -> None:
        if not self.enabled:
            return
        future = self._executor.submit(self._send_logging_failures, text)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def wait_until_sent(self, timeout: float = 10.0) -> None:
        wait(list(self._pending), timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._http.close()

    def _send_logging_failures(self, text: str) -> None:
        try:
            self._send(text)
        except Exception as error:  # a lost ping must never break the inbox
            # Never the error's text: httpx puts the webhook URL, which is the secret, into it.
            logger.warning("Slack notification failed: %s", describe_failure(error))

    @retry(
        retry=retry_if_exception(_worth_retrying),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.5, max=4),
        reraise=True,
    )
    def _send(self, text: str) -> None:
        response = self._http.post(self.webhook_url, json={"text": text})
        response.raise_for_status()


def describe_failure(error: BaseException) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        return f"Slack answered HTTP {error.response.status_code}"
    return error.__class__.__name__


def slack_link(url: str, label: str) -> str:
    return f"<{url}|{label}>"


def slack_escape(text: str) -> str:
    """Slack's mrkdwn needs &, < and > escaped in user-provided text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
