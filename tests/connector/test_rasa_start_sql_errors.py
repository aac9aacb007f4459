"""The start-up step that keeps customers' ids out of Rasa's SQL errors (issue 13, item 3): when the
database fails mid-statement, SQLAlchemy's error text lists the statement's parameters, and Rasa's SQL
tracker store and SQL event broker log that text."""
from __future__ import annotations

import asyncio

import pytest
import sqlalchemy
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from sqlalchemy.exc import SQLAlchemyError

from connectors import rasa_start

SENDER = "919812345210"


def tracker_store_error(path) -> str:
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE events")  # the database "goes away" under Rasa
    with pytest.raises(SQLAlchemyError) as raised:
        asyncio.run(store.retrieve(SENDER))
    return str(raised.value)


def event_broker_error(path) -> str:
    broker = SQLEventBroker(db=str(path))
    with broker.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE events")
    with pytest.raises(SQLAlchemyError) as raised:
        broker.publish({"sender_id": SENDER, "event": "user", "text": "where is my order"})
    return str(raised.value)


@pytest.fixture
def restore_sqlalchemy():
    original = sqlalchemy.create_engine
    yield
    sqlalchemy.create_engine = original


def test_without_the_step_rasas_error_texts_carry_the_sender_id(tmp_path, restore_sqlalchemy):
    # The leak the step exists for; if SQLAlchemy or Rasa ever stop listing parameters, this says so.
    assert SENDER in tracker_store_error(tmp_path / "tracker.db")
    assert SENDER in event_broker_error(tmp_path / "events.db")


def test_after_the_step_rasas_error_texts_hide_the_sender_id(tmp_path, restore_sqlalchemy):
    rasa_start.hide_sql_parameters()
    rasa_start.hide_sql_parameters()  # both start-up paths may run it: still one wrapper
    for text in (tracker_store_error(tmp_path / "tracker.db"), event_broker_error(tmp_path / "events.db")):
        assert SENDER not in text
        assert "hidden" in text and "events" in text  # the error still says what failed


def test_an_engine_that_asks_for_parameters_still_gets_them(tmp_path, restore_sqlalchemy):
    rasa_start.hide_sql_parameters()
    assert sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'a.db'}").hide_parameters is True
    assert sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'b.db'}", hide_parameters=False).hide_parameters is False
