"""`python -m inbox create-admin` (production's first login) and the start-up demo seed."""

import subprocess
import sys

import pytest

from inbox.context import Inbox
from inbox.services import bootstrap
from inbox.settings import REPO_ROOT, Settings
from inbox.tests.conftest import login


def test_create_admin_from_the_command_line(settings, client, tmp_path):
    environment = {
        "DATABASE_URL": settings.database_url,
        "INBOX_ENV": "production",  # how an operator creates production's first login
        "INBOX_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inbox",
            "create-admin",
            "--login",
            "Owner",
            "--name",
            "Kiran Shah",
            "--pronoun",
            "he",
            "--password-stdin",
        ],
        input="a-strong-passphrase\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Admin 'owner' created." in result.stdout
    assert login(client, "owner", "a-strong-passphrase").status_code == 303
    assert "Kiran Shah · admin" in client.get("/conversations").text

    weak = subprocess.run(
        [sys.executable, "-m", "inbox", "create-admin", "--login", "other", "--name", "X", "--password-stdin"],
        input="short\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=60,
    )
    assert weak.returncode != 0 and "at least 10 characters" in weak.stderr


def test_demo_agents_are_seeded_once_with_a_printed_password(settings, clock, client):
    demo = Inbox(settings.model_copy(update={"inbox_demo_password": None}), clock=clock)
    try:
        password = bootstrap.seed_demo_agents(demo)
        assert password and bootstrap.seed_demo_agents(demo) is None
    finally:
        demo.close()
    assert password in (settings.inbox_var_dir / "inbox_demo_credentials.txt").read_text()
    assert login(client, "anita", password).status_code == 303


def test_production_refuses_to_start_without_a_session_secret(tmp_path):
    settings = Settings(inbox_env="production", inbox_session_secret=None, inbox_var_dir=tmp_path)
    with pytest.raises(RuntimeError, match="INBOX_SESSION_SECRET"):
        _ = settings.session_secret
    assert not (tmp_path / "inbox_session_secret").exists()


@pytest.mark.parametrize(
    "given, used",
    [
        ("postgres://u:p@db/inbox", "postgresql+psycopg://u:p@db/inbox"),
        ("postgresql://u:p@db/inbox", "postgresql+psycopg://u:p@db/inbox"),
        ("postgresql+psycopg://u@db/inbox", "postgresql+psycopg://u@db/inbox"),
        ("sqlite:////srv/inbox.db", "sqlite:////srv/inbox.db"),
    ],
)
def test_database_urls_use_the_installed_postgresql_driver(given, used):
    configured = Settings(inbox_env="production", database_url=given, rasa_events_db_url=given)
    assert configured.resolved_database_url == used
    assert configured.resolved_rasa_events_db_url == used
