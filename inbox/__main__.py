"""Command line: `python -m inbox serve | consume | create-admin | migrate`."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import threading

from pydantic import ValidationError

from inbox import migrate
from inbox.context import Inbox
from inbox.services import bootstrap
from inbox.services.agents import AgentDirectory, AgentError
from inbox.services.privacy import install_masking_filter
from inbox.settings import Settings


def _build(settings: Settings) -> Inbox:
    """The inbox, or a clean stop naming the file, line and field of a mistake in config/*.yml."""
    from inbox.services.csat import CsatConfigError
    from inbox.services.read_receipts import ReadReceiptConfigError
    from inbox.services.templates import TemplateConfigError

    try:
        return Inbox(settings)
    except (TemplateConfigError, ReadReceiptConfigError, CsatConfigError) as error:
        sys.exit(f"The inbox cannot start: {error}")


def _inbox() -> Inbox:
    return _build(Settings())


def serve(args) -> None:
    import uvicorn

    from inbox.services.bootstrap import DEMO_AGENTS
    from inbox.web.app import create_app

    settings = Settings()
    if args.port:
        settings.inbox_port = args.port
    if args.host:
        settings.inbox_host = args.host
    inbox = _build(settings)
    migrate.upgrade(inbox.db)
    bootstrap.prepare(inbox)
    if settings.inbox_env == "production" and bootstrap.demo_agents_present(inbox):
        sys.exit(
            "Refusing to start in production: the demo agents of the local demo (anita, priya, rahul, admin) "
            "are still active with their shared, printed password. Deactivate them or give each its own "
            "password, e.g. in a development start on this database."
        )
    if settings.inbox_env == "development":
        password = bootstrap.seed_demo_agents(inbox)
        if password:
            logins = ", ".join(login for login, *_ in DEMO_AGENTS)
            print(
                f"\n  Demo agents created (local demo only): {logins}\n  Password: {password}\n"
                f"  (also in {settings.inbox_var_dir / 'inbox_demo_credentials.txt'})\n",
                flush=True,
            )
    if not bootstrap.has_agents(inbox):
        print(
            "No agents yet: create the first admin with `python -m inbox create-admin --login ... --name ...`",
            flush=True,
        )
    if settings.inbox_bot_token is None:
        logging.warning("INBOX_BOT_TOKEN is not set: the hand-off and statuses APIs refuse every call")
    print(
        f"Inbox on {settings.public_url} (database {inbox.db.engine.url.render_as_string(hide_password=True)}; "
        f"event consumer {'inline' if settings.inbox_consumer == 'inline' else 'off — run `python -m inbox consume`'})",
        flush=True,
    )
    uvicorn.run(
        create_app(inbox),
        host=settings.inbox_host,
        port=settings.inbox_port,
        log_level="info",
        access_log=args.access_log,
    )


def consume(_args) -> None:
    from inbox.services.event_stream_rabbitmq import event_stream_consumer

    inbox = _inbox()
    migrate.upgrade(inbox.db)
    try:
        consumer = event_stream_consumer(inbox)
    except ValueError as error:
        sys.exit(str(error))
    stop = threading.Event()
    try:
        consumer.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


def create_admin(args) -> None:
    password = os.environ.get("INBOX_ADMIN_PASSWORD")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        password = getpass.getpass("Password (10+ characters): ")
        if getpass.getpass("Repeat: ") != password:
            sys.exit("The passwords differ.")
    inbox = _inbox()
    migrate.upgrade(inbox.db)
    bootstrap.prepare(inbox)
    try:
        with inbox.db.write() as session:
            agent = AgentDirectory(session).create(
                login=args.login,
                name=args.name,
                password=password,
                role="admin",
                pronoun=args.pronoun,
                teams=args.team or [],
            )
            login = agent.login
    except AgentError as error:
        sys.exit(f"Not created: {error}")
    print(f"Admin {login!r} created.")


def print_rasa_jwt(args) -> None:
    """A short-lived bearer token for looking at Rasa's HTTP API by hand (trackers, status)."""
    from inbox.services.rasa import rasa_jwt

    secret = Settings().rasa_jwt_secret
    if secret is None:
        sys.exit("RASA_JWT_SECRET is not set (scripts/run.sh keeps the local one in var/local.env).")
    print(rasa_jwt(secret.get_secret_value(), lifetime_seconds=args.minutes * 60))


def run_migrations(args) -> None:
    inbox = _inbox()
    if args.direction == "upgrade":
        migrate.upgrade(inbox.db, args.revision or "head")
    else:
        migrate.downgrade(inbox.db, args.revision or "-1")
    print(f"Database at revision {migrate.current_revision(inbox.db)}")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's full URL at INFO (a Slack webhook URL is itself the secret) and
    # httpcore its traffic at DEBUG: only their warnings reach the log.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    install_masking_filter()  # phone numbers and BSUIDs masked at INFO and above
    parser = argparse.ArgumentParser(prog="python -m inbox", description="Kesar Lane shared inbox")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the web app (migrates the database first)")
    serve_parser.add_argument("--host", help="bind address (INBOX_HOST, default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (INBOX_PORT, default 8080)")
    serve_parser.add_argument("--access-log", action="store_true", help="log every request")
    serve_parser.set_defaults(handler=serve)

    commands.add_parser("consume", help="run the event-stream consumer on its own").set_defaults(handler=consume)

    admin_parser = commands.add_parser("create-admin", help="create an admin agent (production's first login)")
    admin_parser.add_argument("--login", required=True)
    admin_parser.add_argument("--name", required=True)
    admin_parser.add_argument("--pronoun", default="they", choices=["she", "he", "they"])
    admin_parser.add_argument("--team", action="append", help="team membership (repeatable)")
    admin_parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    admin_parser.set_defaults(handler=create_admin)

    jwt_parser = commands.add_parser("rasa-jwt", help="print a bearer token for Rasa's HTTP API (RASA_JWT_SECRET)")
    jwt_parser.add_argument("--minutes", type=int, default=15, help="how long it is valid (default 15)")
    jwt_parser.set_defaults(handler=print_rasa_jwt)

    migrate_parser = commands.add_parser("migrate", help="run Alembic migrations")
    migrate_parser.add_argument("direction", choices=["upgrade", "downgrade"])
    migrate_parser.add_argument("revision", nargs="?")
    migrate_parser.set_defaults(handler=run_migrations)

    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except ValidationError as error:  # a configuration Settings() refused: say why, without a traceback
        reasons = [problem["msg"].removeprefix("Value error, ") for problem in error.errors()]
        sys.exit("Configuration refused: " + "; ".join(reasons))


if __name__ == "__main__":
    main()
