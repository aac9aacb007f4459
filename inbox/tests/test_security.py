"""Every route refuses the unauthenticated; customer text is text; passwords are argon2id."""

import re

from sqlalchemy import select
from starlette.routing import Mount
from starlette.testclient import TestClient

from inbox.models import Agent
from inbox.tests.conftest import BOT_TOKEN, handoff_payload, login, post_handoff
from inbox.web.app import create_app

XSS_SCRIPT = "<script>alert('pwned')</script>"
XSS_IMG = '<img src=x onerror="alert(1)">'


def all_routes(app):
    """Every (method, path) the app serves, from FastAPI's own route table (the OpenAPI view of it,
    which also covers routers included with prefixes), plus the static mount."""
    for template, operations in app.openapi()["paths"].items():
        for method in operations:
            yield method.upper(), template, re.sub(r"\{[^}]+\}", "1", template)
    mounts = [route for route in app.router.routes if isinstance(route, Mount)]
    assert [mount.path for mount in mounts] == ["/static"]
    yield "GET", "/static", "/static/inbox.css"


def test_every_route_refuses_the_unauthenticated(inbox, agents):
    app = create_app(inbox, run_background_workers=False)
    routes = list(all_routes(app))
    assert len(routes) > 25
    allowed = set()
    with TestClient(app, follow_redirects=False) as anonymous:
        for method, template, path in routes:
            for accept in ("application/json", "text/html"):
                anonymous.cookies.clear()
                response = anonymous.request(
                    method, path, headers={"Accept": accept}, data={"x": "1"} if method == "POST" else None
                )
                if response.status_code < 300:
                    allowed.add((method, template))
                    continue
                if response.status_code == 303:
                    assert response.headers["location"].startswith("/login"), (method, path)
                else:
                    assert response.status_code in (401, 403), (method, path, response.status_code)
                assert "Priya" not in response.text
    # Only the login form and the static assets (CSS, JS) are served without a session; posting the
    # login form needs the CSRF cookie that the form sets.
    assert allowed == {("GET", "/login"), ("GET", "/static")}


def test_an_agent_session_does_not_open_the_bot_api_and_the_bot_token_does_not_open_pages(client, agents):
    login(client, "anita")
    with_csrf = {"X-CSRFToken": client.cookies.get("csrftoken")}
    assert client.post("/api/v1/handoffs", json=handoff_payload(), headers=with_csrf).status_code == 401
    client.cookies.clear()
    response = client.get("/conversations", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    assert response.status_code == 401


def test_statuses_api_needs_the_bot_token(client):
    body = {"statuses": [{"id": "wamid.x", "status": "read"}]}
    assert client.post("/api/v1/whatsapp/statuses", json=body).status_code == 401
    assert (
        client.post("/api/v1/whatsapp/statuses", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    )


def test_customer_text_is_rendered_as_text_everywhere(client, agents):
    payload = handoff_payload(
        customer={"whatsapp_id": "919876543210", "name": XSS_IMG},
        summary=XSS_SCRIPT,
        transcript=[
            {"role": "customer", "text": XSS_SCRIPT, "timestamp": "2026-11-25T05:24:40Z"},
            {"role": "customer", "text": XSS_IMG, "timestamp": "2026-11-25T05:24:50Z"},
        ],
    )
    conversation_id = post_handoff(client, payload).json()["inbox_conversation_id"]
    login(client, "anita")
    for url in (
        f"/conversations/{conversation_id}",
        "/conversations?view=all",
        "/conversations?q=alert",
        f"/conversations/{conversation_id}/transcript",
        f"/conversations/{conversation_id}/panel",
    ):
        page = client.get(url).text
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page or "&lt;img src=x" in page, url


def test_pages_carry_a_strict_content_security_policy(client, agents):
    login(client, "anita")
    policy = client.get("/conversations").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "object-src 'none'" in policy


def test_passwords_are_stored_as_argon2id_hashes(inbox, agents):
    with inbox.db.read() as session:
        hashes = list(session.scalars(select(Agent.password_hash)))
    assert hashes and all(value.startswith("$argon2id$") for value in hashes)


def test_the_session_cookie_is_http_only(client, agents):
    response = login(client, "anita")
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("inbox_session=")
    )
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
