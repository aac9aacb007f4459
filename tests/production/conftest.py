"""Session fixtures for the production-profile suite (tests/production/README.md lists them)."""
from __future__ import annotations

import itertools

import pytest

from tests.e2e.clients import Agent, Customer
from tests.e2e.conftest import slack  # noqa: F401  (the same Slack receiver fixture)
from tests.production.clients import PostgresConnectorStore, PostgresInboxDB
from tests.production.harness import ProductionSystem

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def production(tmp_path_factory, slack):
    """The running profile behind its proxy, plus PostgreSQL, Redis and the sandbox (harness.ProductionSystem)."""
    data_dir = tmp_path_factory.mktemp("production")
    system = ProductionSystem.configure(data_dir, slack.url)
    try:
        system.start_all()
        # Meera (every team) signs in once, which makes her available: hand-offs are assigned to her.
        Agent(system.url("proxy"), "meera", system.passwords["meera"], http=system.client())
        yield system
    finally:
        system.stop_all()
        print(f"\nproduction-profile logs in {data_dir}")


@pytest.fixture
def healthy(production):
    """The profile still running (a fault test must leave it so: PostgreSQL/Redis resumed)."""
    assert production.services["profile"].running, "the production profile exited; see profile.log"
    return production


@pytest.fixture(scope="session")
def turn_finished(production):
    """Whether the connector has finished its turn for a customer message (Customer.say waits on it), read
    from the profile's connector store: the PostgreSQL database and role of its WHATSAPP_STORE_URL."""
    return PostgresConnectorStore(production.env["WHATSAPP_STORE_URL"]).turn_finished


@pytest.fixture
def new_customer(healthy, turn_finished):
    """A factory of fresh sandbox customers (new wa_id each)."""
    return lambda name="Priya Sharma": Customer(healthy.url("sandbox"), f"9196{next(_numbers):08d}", name,
                                                turn_finished)


@pytest.fixture
def customer(new_customer):
    return new_customer()


@pytest.fixture(scope="session")
def inbox_db(production):
    return PostgresInboxDB(production.env["DATABASE_URL"])


@pytest.fixture
def agent_login(healthy):
    """login -> an Agent signed in through the proxy (HTTPS, the test certificate trusted)."""

    def sign_in(login: str) -> Agent:
        return Agent(healthy.url("proxy"), login, healthy.passwords[login], http=healthy.client())

    return sign_in
