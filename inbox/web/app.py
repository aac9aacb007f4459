"""The FastAPI application: middleware, routers, error pages, background workers."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from contextlib import asynccontextmanager

from asgi_csrf import asgi_csrf
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from inbox.context import Inbox
from inbox.services.auto_resolve import AutoResolver
from inbox.services.csat import CsatSurveys
from inbox.services.event_stream_rabbitmq import event_stream_consumer
from inbox.services.media import MediaFetcher, storage_for
from inbox.services.privacy import install_masking_filter
from inbox.services.replies import AgentReplies
from inbox.services.sessions import SESSION_LIFETIME
from inbox.services.sla import SlaMonitor
from inbox.services.snooze import Snoozing
from inbox.settings import INBOX_DIR
from inbox.web import (
    database_down,
    routes_admin,
    routes_api,
    routes_auth,
    routes_conversations,
    routes_follow_ups,
    routes_kb,
    routes_live,
    routes_media,
    routes_reports,
    routes_window,
)
from inbox.web.auth import LoginRateLimiter, NotAllowed, NotAuthenticated
from inbox.web.multipart_csrf import MultipartCsrf
from inbox.web.rendering import is_htmx, redirect, render

logger = logging.getLogger(__name__)

# Every form of the agent screens fits (a 10,000-character note in Devanagari is about 90 KB
# url-encoded). A larger body is answered 413 as soon as it passes the limit, before the CSRF check
# or anything else buffers it; the machine API has its own limit (routes_api.API_BODY_LIMIT_BYTES).
PAGE_BODY_LIMIT_BYTES = 256 * 1024

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _wants_html(request: Request) -> bool:
    return (
        not request.url.path.startswith("/api/")
        and "text/html" in request.headers.get("accept", "")
        and not is_htmx(request)
    )


class SecurityHeaders:
    """CSP, nosniff, Referrer-Policy and (not for /static/) Cache-Control: no-store on every response that does
    not set its own. Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs each
    request through a task group and a memory stream, a cost paid on every status post of the connector (issue
    16); this only adds the headers to the response's start message."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BackgroundWorkers:
    """Threads of the `serve` process: the event-stream consumer (when inline), the SLA monitor and the
    recovery loop of interrupted agent replies."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        jobs = [
            ("sla-monitor", SlaMonitor(self.inbox).run_forever),
            ("reply-recovery", AgentReplies(self.inbox).run_forever),
            ("csat-recovery", CsatSurveys(self.inbox).run_forever),
            ("media-fetcher", MediaFetcher(self.inbox).run_forever),
            ("snooze-wake", Snoozing(self.inbox).run_forever),
            ("auto-resolve", AutoResolver(self.inbox).run_forever),
        ]
        if self.inbox.settings.inbox_consumer == "inline":
            jobs.append(("event-consumer", event_stream_consumer(self.inbox).run_forever))
        for name, target in jobs:
            thread = threading.Thread(target=target, args=(self.stop,), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def shutdown(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


def create_app(inbox: Inbox, *, run_background_workers: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        install_masking_filter()  # uvicorn has configured its loggers by now
        storage_for(inbox)  # a misconfigured media storage (S3 bucket, credentials) stops start-up, clearly
        workers = BackgroundWorkers(inbox)
        if run_background_workers:
            workers.start()
        yield
        workers.shutdown()

    app = FastAPI(
        title="Kesar Lane inbox",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        max_body_size=PAGE_BODY_LIMIT_BYTES,
    )
    app.state.inbox = inbox
    app.state.login_limiter = LoginRateLimiter()

    routers = (routes_auth, routes_conversations, routes_api, routes_admin, routes_reports, routes_live, routes_media)
    for module in (*routers, routes_window, routes_follow_ups, routes_kb):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(INBOX_DIR / "static")), name="static")

    @app.exception_handler(NotAuthenticated)
    async def _not_authenticated(request: Request, _error: NotAuthenticated):
        if _wants_html(request):
            return redirect(f"/login?next={request.url.path}")
        # htmx follows HX-Redirect: an expired session inside the page lands on the login form.
        headers = {"HX-Redirect": "/login"} if is_htmx(request) else None
        return JSONResponse({"detail": "Sign in first."}, status_code=401, headers=headers)

    # The database down: a clear 503 that hands the composer's text back (web/database_down.py).
    app.add_exception_handler(DBAPIError, database_down.database_unavailable)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, _error: NotAllowed):
        return JSONResponse({"detail": "Only admins can do this."}, status_code=403)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        if _wants_html(request) and error.status_code in (404, 422):
            return render(
                request, "error.html", {"status": error.status_code, "detail": error.detail}, error.status_code
            )
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    app.add_middleware(SecurityHeaders)

    settings = inbox.settings
    session_secret = settings.session_secret
    csrf_secret = hmac.new(session_secret.encode(), b"inbox-csrf", hashlib.sha256).hexdigest()
    # Added last = runs first: sessions and CSRF wrap everything, including error pages.
    app.add_middleware(
        asgi_csrf,
        signing_secret=csrf_secret,
        always_protect={"/login"},
        cookie_secure=settings.secure_cookies,
        cookie_samesite="Lax",
    )
    # In front of asgi-csrf: multipart posts (the attachment form) with or without JavaScript.
    app.add_middleware(MultipartCsrf, signing_secret=csrf_secret)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie="inbox_session",
        max_age=int(SESSION_LIFETIME.total_seconds()),
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    return app
