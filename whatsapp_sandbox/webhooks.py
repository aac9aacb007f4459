"""Webhooks the sandbox sends to the connector, shaped and signed like Meta's."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any, Dict, List, Optional

import aiohttp

from whatsapp_sandbox.settings import SandboxSettings
from whatsapp_sandbox.state import SandboxCustomer

logger = logging.getLogger(__name__)

# Meta keeps retrying a webhook that is not answered 200; the sandbox does a short version.
REDELIVERY_PAUSES_SECONDS = (1, 2, 4, 8, 15, 30, 60, 120)


def new_message_id() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def new_media_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, settings: SandboxSettings) -> None:
        self._settings = settings
        self._session: Optional[aiohttp.ClientSession] = None
        self._redeliveries: "set[asyncio.Task]" = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop_redelivering(self) -> None:
        """Cancel pending redeliveries: aiohttp's graceful stop would otherwise wait for their pauses."""
        for task in self._redeliveries:
            task.cancel()
        await asyncio.gather(*self._redeliveries, return_exceptions=True)

    async def close(self) -> None:
        await self.stop_redelivering()
        if self._session is not None:
            await self._session.close()

    def _envelope(self, value: Dict[str, Any]) -> Dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self._settings.display_phone_number,
                "phone_number_id": self._settings.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self._settings.business_account_id, "changes": [{"value": value, "field": "messages"}]}],
        }

    def customer_message(self, customer: SandboxCustomer, message: Dict[str, Any]) -> Dict[str, Any]:
        """Like Meta since business-scoped user ids: `from_user_id` and `contacts[].user_id` always,
        `from` and `contacts[].wa_id` only when the customer's phone is shared, `profile.username`
        when they have one."""
        profile: Dict[str, Any] = {"name": customer.profile_name}
        if customer.username:
            profile["username"] = customer.username
        contact: Dict[str, Any] = {"profile": profile}
        sender: Dict[str, Any] = {}
        if customer.shared_phone:
            contact["wa_id"] = sender["from"] = customer.shared_phone
        contact["user_id"] = sender["from_user_id"] = customer.user_id
        return self._envelope({"contacts": [contact], "messages": [{**sender, **message}]})

    def status(
        self,
        message_id: str,
        customer: SandboxCustomer,
        status: str,
        errors: Optional[List[Dict[str, Any]]] = None,
        *,
        sent_to_phone: bool = True,
        callback_data: Optional[str] = None,
    ) -> Dict[str, Any]:
        """A status like Meta's: `recipient_id` (the phone) only when the message was sent to the
        phone or the customer shares it, `recipient_user_id` except on a failed send to a phone;
        `contacts` on sent/delivered/read, with the username on delivered/read."""
        phone = customer.phone if sent_to_phone else customer.shared_phone
        status_object: Dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(int(time.time()))}
        if phone:
            status_object["recipient_id"] = phone
        if status != "failed" or not sent_to_phone:
            status_object["recipient_user_id"] = customer.user_id
        if status in ("sent", "delivered"):
            conversation_id = hashlib.md5(customer.user_id.encode()).hexdigest()
            status_object["conversation"] = {"id": conversation_id, "origin": {"type": "service"}}
            status_object["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
        if callback_data is not None:  # the sender's `biz_opaque_callback_data`, echoed like Meta
            status_object["biz_opaque_callback_data"] = callback_data
        if errors:
            status_object["errors"] = errors
        value: Dict[str, Any] = {"statuses": [status_object]}
        if status != "failed":
            contact: Dict[str, Any] = {"user_id": customer.user_id}
            if phone:
                contact["wa_id"] = phone
            if customer.username and status in ("delivered", "read"):
                contact["profile"] = {"username": customer.username}
            value["contacts"] = [contact]
        return self._envelope(value)

    async def post(self, payload: Dict[str, Any]) -> Optional[int]:
        """Post once; returns the connector's HTTP status, or None if it was unreachable."""
        assert self._session is not None
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(self._settings.app_secret, body)}
        try:
            async with self._session.post(self._settings.webhook_url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("Webhook to %s failed: %r", self._settings.webhook_url, error)
            return None

    def redeliver_later(self, payload: Dict[str, Any], on_result: Any = None) -> None:
        """Like Meta: keep trying a webhook that was not answered 200 (shortened schedule)."""

        async def redeliver() -> None:
            for pause in REDELIVERY_PAUSES_SECONDS:
                await asyncio.sleep(pause)
                status = await self.post(payload)
                if on_result is not None:
                    await on_result(status)
                if status == 200:
                    return
            logger.error("Gave up redelivering a webhook to %s", self._settings.webhook_url)

        task = asyncio.create_task(redeliver())
        self._redeliveries.add(task)
        task.add_done_callback(self._redeliveries.discard)
