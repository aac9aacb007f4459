"""Session fixtures: the running system (harness.py) and its clients (clients.py)."""
from __future__ import annotations

import itertools

import pytest

from tests.e2e.clients import Agent, ConnectorStore, Customer, InboxDB, SlackReceiver
from tests.e2e.harness import System

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def slack():
    receiver = SlackReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def system(tmp_path_factory, slack):
    data_dir = tmp_path_factory.mktemp("e2e")
    system = System.configure(data_dir, slack.url)
    try:
        system.start_all()
        yield system
    finally:
        system.stop_all()
        print(f"\ne2e logs in {data_dir}")


@pytest.fixture
def healthy(system):
    """Every service up (a fault test that failed half-way may have left one stopped)."""
    for name, service in system.services.items():
        if not service.running:
            system.start(name)
    return system


@pytest.fixture
def turn_finished(system):
    """Whether the connector has finished its turn for a customer message (Customer.say waits on it)."""
    return ConnectorStore(system.data_dir / "whatsapp.db").turn_finished


@pytest.fixture
def customer(healthy, turn_finished):
    """A fresh customer (new wa_id) per test."""
    return Customer(healthy.url("sandbox"), f"9198{next(_numbers):08d}", turn_finished=turn_finished)


@pytest.fixture
def inbox_db(system):
    return InboxDB(system.data_dir / "inbox.db")


@pytest.fixture
def new_customer(healthy, turn_finished):
    return lambda name="Priya Sharma": Customer(healthy.url("sandbox"), f"9197{next(_numbers):08d}", name,
                                                turn_finished)


@pytest.fixture
def agent_login(healthy):
    return lambda login: Agent(healthy.url("inbox"), login, healthy.env["INBOX_DEMO_PASSWORD"])
