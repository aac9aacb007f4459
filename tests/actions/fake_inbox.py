"""A local HTTP server that plays the inbox's hand-off API (inbox/API.md) for action tests."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aiohttp import web


@dataclass
class FakeInbox:
    """Answers according to `mode`; records every request it gets."""

    mode: str = "assigned"  # assigned | queued | fail_then_assign | down_500 | slow | bad_json | unauthorized | incomplete
    token: str = "bot-secret"
    # "slow" never answers until released (at stop): only the bot's own timeout can end its wait.
    released: asyncio.Event = field(default_factory=asyncio.Event)
    requests: List[Dict[str, Any]] = field(default_factory=list)
    headers: List[Dict[str, str]] = field(default_factory=list)
    _runner: Optional[web.AppRunner] = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {self.token}" or self.mode == "unauthorized":
            return web.json_response({"detail": "bad token"}, status=401)
        if self.mode == "down_500" or (self.mode == "fail_then_assign" and len(self.requests) == 1):
            return web.json_response({"detail": "database is locked"}, status=503)
        if self.mode == "slow":
            await self.released.wait()
        if self.mode == "bad_json":
            return web.Response(text="<html>oops</html>", status=200, content_type="text/html")
        if self.mode == "incomplete":
            return web.json_response({"status": "assigned"}, status=201)
        if self.mode == "queued":
            return web.json_response(
                {
                    "handoff_id": body["handoff_id"],
                    "conversation_id": body["conversation_id"],
                    "inbox_conversation_id": 7,
                    "status": "queued",
                    "assignee": None,
                    "team": None,
                    "eta_minutes": None,
                    "team_back_at": "2026-11-26T09:00:00+05:30",
                    "eta_text": "by 9:00 AM tomorrow",
                    "conversation_url": "http://inbox/conversations/7",
                },
                status=201,
            )
        return web.json_response(
            {
                "handoff_id": body["handoff_id"],
                "conversation_id": body["conversation_id"],
                "inbox_conversation_id": 42,
                "status": "assigned",
                "assignee": {"id": 3, "first_name": "Anita", "pronoun": "she"},
                "team": "Returns",
                "eta_minutes": 5,
                "team_back_at": None,
                "eta_text": "within 5 minutes",
                "conversation_url": "http://inbox/conversations/42",
            },
            status=201,
        )

    async def start(self) -> "FakeInbox":
        app = web.Application()
        app.router.add_post("/api/v1/handoffs", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self.released.set()
        if self._runner:
            await self._runner.cleanup()
