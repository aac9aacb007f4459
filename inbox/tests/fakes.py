"""Small real HTTP servers standing in for Meta's Graph API, Rasa's HTTP API and Slack in the
API tests (the browser tests use the real WhatsApp sandbox)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from tests.free_ports import free_port  # noqa: F401  (re-exported to the suites)

GRAPH_TOKEN = "test-whatsapp-token"
PHONE_NUMBER_ID = "106540352242922"
RASA_JWT_SECRET = "test-rasa-jwt-secret-long-enough-for-hs256"




class ThreadedServer:
    """Runs an ASGI app with uvicorn in a background thread."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _rasa_jwt_role(authorization: str) -> str | None:
    """The role of a valid HS256 bearer JWT signed with RASA_JWT_SECRET, like Rasa started with
    `--jwt-secret` checks it; None for anything else."""
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer":
        return None
    try:
        payload = jwt.decode(token, RASA_JWT_SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None
    return (payload.get("user") or {}).get("role")


@dataclass
class FakeExternalServices:
    graph_requests: list[dict] = field(default_factory=list)
    graph_answers: list[tuple[int, dict]] = field(default_factory=list)  # queued non-default answers
    rasa_requests: list[dict] = field(default_factory=list)
    rasa_answers: list[int] = field(default_factory=list)
    slack_messages: list[dict] = field(default_factory=list)
    server: ThreadedServer | None = None

    def reset(self) -> None:
        for collected in (
            self.graph_requests,
            self.graph_answers,
            self.rasa_requests,
            self.rasa_answers,
            self.slack_messages,
        ):
            collected.clear()

    @property
    def url(self) -> str:
        return self.server.url

    def app(self) -> Starlette:
        async def graph_send(request: Request):
            body = await request.json()
            self.graph_requests.append(
                {
                    "phone_number_id": request.path_params["phone_number_id"],
                    "authorization": request.headers.get("authorization"),
                    "body": body,
                }
            )
            if request.headers.get("authorization") != f"Bearer {GRAPH_TOKEN}":
                return JSONResponse({"error": {"code": 190, "message": "Invalid OAuth access token"}}, status_code=401)
            if "status" in body:  # a read receipt / typing indicator: Meta answers {"success": true}
                return JSONResponse({"success": True})
            if self.graph_answers:
                status, answer = self.graph_answers.pop(0)
                return JSONResponse(answer, status_code=status)
            # Meta's answer names a phone recipient by wa_id and a BSUID recipient by user_id.
            contact = (
                {"input": body["to"], "wa_id": body["to"]}
                if "to" in body
                else {"input": body["recipient"], "user_id": body["recipient"]}
            )
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [contact],
                    "messages": [{"id": f"wamid.test{len(self.graph_requests)}"}],
                }
            )

        async def rasa_events(request: Request):
            self.rasa_requests.append(
                {
                    "sender_id": request.path_params["sender_id"],
                    "url": str(request.url),
                    "authorization": request.headers.get("authorization", ""),
                    "role": _rasa_jwt_role(request.headers.get("authorization", "")),
                    "events": await request.json(),
                }
            )
            if self.rasa_requests[-1]["role"] != "admin":  # what Rasa's requires_auth lets through
                return JSONResponse({"reason": "NotAuthenticated"}, status_code=401)
            status = self.rasa_answers.pop(0) if self.rasa_answers else 200
            return JSONResponse({"sender_id": request.path_params["sender_id"], "events": []}, status_code=status)

        async def slack(request: Request):
            self.slack_messages.append(await request.json())
            return PlainTextResponse("ok")

        return Starlette(
            routes=[
                Route("/v21.0/{phone_number_id}/messages", graph_send, methods=["POST"]),
                Route("/conversations/{sender_id}/tracker/events", rasa_events, methods=["POST"]),
                Route("/slack", slack, methods=["POST"]),
                Route("/slack/{secret_path:path}", slack, methods=["POST"]),
            ]
        )

    def start(self) -> FakeExternalServices:
        self.server = ThreadedServer(self.app()).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()
