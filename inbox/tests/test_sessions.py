"""Sessions and logins (issue 13, item 7): sign-out revokes, password changes revoke the others,
nobody can lock `admin` out, Secure cookies and a safe INBOX_ENV in production."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from inbox.context import Inbox
from inbox.services import bootstrap
from inbox.settings import REPO_ROOT, Settings
from inbox.tests.conftest import PASSWORD, csrf_cookie, login, post_form
from inbox.web.app import create_app

NEW_PASSWORD = "a-brand-new-passphrase"


def signed_in(client: TestClient) -> bool:
    response = client.get("/conversations", headers={"Accept": "text/html"})
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


@pytest.fixture
def another_browser(client):
    with TestClient(client.app, follow_redirects=False, client=("198.51.100.7", 41000)) as browser:
        yield browser


def test_a_copied_session_cookie_stops_working_after_sign_out(client, agents, another_browser):
    login(client, "anita")
    assert signed_in(client)
    another_browser.cookies.update(dict(client.cookies))  # someone copied the cookie
    assert signed_in(another_browser)
    assert post_form(client, "/logout").status_code == 303
    assert not signed_in(another_browser)
    assert not signed_in(client)


def test_signing_out_in_one_browser_leaves_the_others_signed_in(client, agents, another_browser):
    login(client, "anita")
    login(another_browser, "anita")
    post_form(client, "/logout")
    assert not signed_in(client)
    assert signed_in(another_browser)


def test_changing_the_password_needs_the_old_one_and_signs_out_every_other_browser(client, agents, another_browser):
    login(client, "anita")
    login(another_browser, "anita")
    assert "Change password" in client.get("/me/password").text

    wrong = post_form(
        client,
        "/me/password",
        {"current_password": "not-my-password", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 401 and "The current password is wrong." in wrong.text
    short = post_form(
        client, "/me/password", {"current_password": PASSWORD, "new_password": "short", "repeat_password": "short"}
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    assert signed_in(another_browser)  # nothing changed yet

    changed = post_form(
        client,
        "/me/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    page = client.get("/conversations", headers={"Accept": "text/html"})  # this browser stays in
    assert page.status_code == 200 and "Every other browser you were signed in on is signed out." in page.text
    assert not signed_in(another_browser)
    assert login(another_browser, "anita").status_code == 401  # the old password is gone
    assert login(another_browser, "anita", NEW_PASSWORD).status_code == 303


def test_guessing_at_admin_from_one_address_cannot_lock_admin_out(client, agents):
    app = client.app
    with (
        TestClient(app, follow_redirects=False, client=("203.0.113.66", 40000)) as guesser,
        TestClient(app, follow_redirects=False, client=("198.51.100.7", 41000)) as real_admin,
    ):
        assert [login(guesser, "admin", f"guess-{number}").status_code for number in range(6)] == [401] * 5 + [429]
        assert login(guesser, "admin").status_code == 429  # the guesser's address waits out the minute
        assert login(real_admin, "admin").status_code == 303  # the owner, elsewhere, signs in
        assert signed_in(real_admin)


def test_production_cookies_are_secure_only(settings, clock, agents):
    production = Inbox(settings.model_copy(update={"inbox_env": "production"}), clock=clock)
    try:
        with TestClient(
            create_app(production, run_background_workers=False), base_url="https://inbox.test", follow_redirects=False
        ) as browser:
            page = browser.get("/login")
            assert "secure" in page.headers["set-cookie"].lower()
            answer = browser.post(
                "/login", data={"login": "anita", "password": PASSWORD, "csrftoken": csrf_cookie(browser)}
            )
            assert answer.status_code == 303
            session_cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("inbox_session="))
            assert "secure" in session_cookie.lower() and "httponly" in session_cookie.lower()
    finally:
        production.close()
    with pytest.raises(ValidationError, match="INBOX_SECURE_COOKIES=false is refused in production"):
        Settings(inbox_env="production", inbox_secure_cookies=False)


def run_inbox(*args: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inbox", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", **environment},
        timeout=60,
    )


def test_a_postgresql_start_without_inbox_env_is_refused_with_a_clear_message(tmp_path):
    database_url = "postgresql+psycopg://inbox:db-password-5150@127.0.0.1:9/inbox"
    result = run_inbox("serve", DATABASE_URL=database_url, INBOX_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "Configuration refused: INBOX_ENV is not set but DATABASE_URL is a PostgreSQL database" in result.stderr
    assert "db-password-5150" not in result.stdout + result.stderr
    assert not (tmp_path / "inbox_demo_credentials.txt").exists()
    # Without a database URL (the local demo on SQLite), unset still means development.
    assert Settings(inbox_var_dir=tmp_path).inbox_env == "development"


def test_production_refuses_demo_credentials(settings, clock, tmp_path):
    with pytest.raises(ValidationError, match="INBOX_DEMO_PASSWORD is set"):
        Settings(inbox_env="production", inbox_demo_password="demo-password")

    # A database that a development start seeded with the demo agents does not start in production.
    database_url = f"sqlite:///{tmp_path / 'was-a-demo.db'}"
    demo = Inbox(settings.model_copy(update={"database_url": database_url, "inbox_demo_password": None}), clock=clock)
    try:
        from inbox import migrate

        migrate.upgrade(demo.db)
        bootstrap.prepare(demo)
        assert bootstrap.seed_demo_agents(demo)
    finally:
        demo.close()
    result = run_inbox(
        "serve",
        DATABASE_URL=database_url,
        INBOX_ENV="production",
        INBOX_SESSION_SECRET="a-production-session-secret-of-some-length",
        INBOX_VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "Refusing to start in production: the demo agents of the local demo" in result.stderr
