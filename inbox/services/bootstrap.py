"""Start-up chores: teams from the YAML, quick-reply seeds, and the local demo's agents."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from inbox.models import Agent
from inbox.services.agents import AgentDirectory, hash_password
from inbox.services.handoffs import team_by_name
from inbox.services.quick_replies import seed_quick_replies

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

DEMO_AGENTS = [
    # login, name, pronoun, role, teams
    ("anita", "Anita Desai", "she", "agent", ["Returns", "General"]),
    ("priya", "Priya Nair", "she", "agent", ["Care", "VIP"]),
    ("rahul", "Rahul Mehta", "he", "agent", ["Escalations", "General"]),
    ("admin", "Meera Iyer", "she", "admin", ["General"]),
]


def prepare(inbox: Inbox) -> None:
    with inbox.db.write() as session:
        for name in sorted(inbox.assignment_config().team_names):
            team_by_name(session, name)
        seed_quick_replies(session, inbox.settings.inbox_quick_replies_seed)


def has_agents(inbox: Inbox) -> bool:
    with inbox.db.read() as session:
        return bool(session.scalar(select(func.count(Agent.id))))


def demo_agents_present(inbox: Inbox) -> bool:
    """True while active demo agents still share the seed's one password hash (argon2 salts every
    hash, so only `seed_demo_agents` makes two equal): their password was printed and stored in a file."""
    with inbox.db.read() as session:
        hashes = session.scalars(
            select(Agent.password_hash).where(
                Agent.login.in_([login for login, *_ in DEMO_AGENTS]), Agent.is_active.is_(True)
            )
        ).all()
    return len(hashes) != len(set(hashes))


def seed_demo_agents(inbox: Inbox) -> str | None:
    """Creates the demo agents in an inbox without agents; returns the shared password (None if skipped)."""
    if has_agents(inbox):
        return None
    configured = inbox.settings.inbox_demo_password
    password = configured.get_secret_value() if configured else secrets.token_urlsafe(9)
    hashed = hash_password(password)
    with inbox.db.write() as session:
        directory = AgentDirectory(session)
        for login, name, pronoun, role, teams in DEMO_AGENTS:
            # The demo agents start online so that hand-offs get assigned right away.
            directory.create(
                login=login,
                name=name,
                password=password,
                password_hash=hashed,
                role=role,
                pronoun=pronoun,
                teams=teams,
                status="online",
            )
    credentials = inbox.settings.inbox_var_dir / "inbox_demo_credentials.txt"
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.write_text(
        "Local demo only. Logins: " + ", ".join(login for login, *_ in DEMO_AGENTS) + f"\nPassword: {password}\n"
    )
    credentials.chmod(0o600)
    return password
