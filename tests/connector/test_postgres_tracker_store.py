"""connectors/postgres_tracker_store.py against Rasa 3.6's own SQLTrackerStore, on a real PostgreSQL of this module's
own (inbox/scripts/start_test_postgres.sh, restarted and stopped with pg_ctl; needs root, as test_store_work.py's
restart test).

The same turns, played through both stores as Rasa's processor plays them (retrieve, add the turn's events, save),
two conversations and two sessions each: the same rows (every column, ids included), the same trackers from either
store over either table, the same events published to the broker, each once. Then: a PostgreSQL restart or a
terminated backend between turns loses nothing and raises nothing; PostgreSQL down fails the turn with an error
that names no customer, and the next turn after it is back works; bad settings stop the start with a clear error,
also through Rasa's endpoint loading (which would otherwise fall back to an in-memory store).
"""
from __future__ import annotations

import asyncio
import glob
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import psycopg2
import pytest
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from connectors.postgres_tracker_store import (
    PostgresTrackerStore,
    TrackerStoreConfigError,
    TrackerStoreDatabaseError,
)
from tests.connector.test_sql_event_streaming import DOMAIN, RecordingBroker
from tests.connector.test_store_work import RestartablePostgres

TYPE = "connectors.postgres_tracker_store.PostgresTrackerStore"
CUSTOMERS = ("919812345210", "919812345211")


class Postgres(RestartablePostgres):
    def pg_ctl(self, action: str) -> None:
        """stop, or start: `restart`, which starts a stopped server with its recorded options (postmaster.opts)."""
        action = "restart" if action == "start" else action
        pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        command = f"{pg_ctl} -D '{self.cluster.data_dir}' -l '{self.cluster.data_dir}/server.log' -m fast -w {action}"
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True, timeout=120)

    def database(self, name: str) -> Dict[str, Any]:
        self.cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
        return {"host": "127.0.0.1", "port": self.cluster.port, "db": name, "username": "postgres"}

    def rows(self, name: str) -> List[Tuple]:
        connection = psycopg2.connect(host="127.0.0.1", port=self.cluster.port, user="postgres", dbname=name)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data "
                               "FROM events ORDER BY id")
                return cursor.fetchall()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl") or os.geteuid() != 0:
        if os.environ.get("WHATSAPP_REQUIRE_POSTGRES") == "1":
            pytest.fail("WHATSAPP_REQUIRE_POSTGRES=1 but no PostgreSQL to start and restart here")
        pytest.skip("needs PostgreSQL's pg_ctl and root (to run it as postgres)")
    server = Postgres(Path(tempfile.mkdtemp(prefix="tracker-store-postgres.")))
    try:
        yield server
    finally:
        server.stop()


def user(text: str, intent: str, at: float) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.93}, [{"entity": "order_id", "value": "A17"}],
                       parse_data={"intent": {"name": intent, "confidence": 0.93}, "entities": [], "text": text},
                       timestamp=at)


def session_start(at: float) -> list:
    return [ActionExecuted("action_session_start", timestamp=at), SessionStarted(timestamp=at + 0.0001),
            ActionExecuted("action_listen", timestamp=at + 0.0002)]


def answer(text: str, at: float) -> list:
    return [user(text, "ask_question", at), ActionExecuted("action_answer_question", timestamp=at + 0.0131),
            SlotSet("kb_match", {"entry_id": "returns", "score": 0.8123456789}, timestamp=at + 0.0132),
            BotUttered(f"answer to {text} — ✓", {"buttons": None}, {"utter_action": "utter_x"}, timestamp=at + 0.0133),
            ActionExecuted("action_listen", timestamp=at + 0.0134)]


def script() -> List[Tuple[str, list]]:
    """(sender, the turn's new events), as Rasa's processor adds them: real clock readings, two sessions each."""
    t = time.time()
    first, second = CUSTOMERS
    return [
        (first, session_start(t + 0.001)), (first, answer("where is my order?", t + 0.1)),
        (second, session_start(t + 0.2)), (first, answer("and returns?", t + 0.3)),
        (second, answer("hello", t + 0.4)), (first, []),  # a save without new events
        (first, session_start(t + 0.5) + [SlotSet("kb_match", None, timestamp=t + 0.5003)]),
        (first, answer("one more", t + 0.6)), (second, session_start(t + 0.7)), (second, answer("bye", t + 0.8)),
    ]


async def play(store: TrackerStore, turns: List[Tuple[str, list]]) -> List[Dict[str, Any]]:
    """Each turn: retrieve, add, save (MessageProcessor); returns what the turns' retrieves saw."""
    seen = []
    for sender, events in turns:
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        seen.append(summary(tracker))
        for event in events:
            tracker.update(event)
        await store.save(tracker)
    return seen


def summary(tracker: DialogueStateTracker) -> Dict[str, Any]:
    return {"sender": tracker.sender_id, "events": [event.as_dict() for event in tracker.events],
            "state": tracker.current_state()}


def rasa_store(settings: Dict[str, Any], broker: Any = None) -> SQLTrackerStore:
    return SQLTrackerStore(DOMAIN, dialect="postgresql", event_broker=broker, **settings)


def ours(settings: Dict[str, Any], broker: Any = None, **extra: Any) -> PostgresTrackerStore:
    settings = dict(settings)
    return PostgresTrackerStore(DOMAIN, host=settings.pop("host"), event_broker=broker, **settings, **extra)


def test_the_same_rows_trackers_and_published_events_as_rasas_store(postgres):
    turns = script()
    rasa_db, our_db = postgres.database("ts_rasa"), postgres.database("ts_ours")
    rasa, lean = rasa_store(rasa_db, RecordingBroker()), ours(our_db, RecordingBroker())

    assert asyncio.run(play(lean, turns)) == asyncio.run(play(rasa, turns))
    rows = postgres.rows("ts_ours")
    assert rows == postgres.rows("ts_rasa")
    assert len(rows) == sum(len(events) for _sender, events in turns)
    assert lean.event_broker.published == rasa.event_broker.published
    assert len(lean.event_broker.published) == len(rows)  # each event once

    async def trackers(store: TrackerStore) -> list:
        return [(sorted(await store.keys()),
                 summary(await store.retrieve(sender)), summary(await store.retrieve_full_tracker(sender)))
                for sender in CUSTOMERS]

    reference = asyncio.run(trackers(rasa))
    assert reference[0][0] == sorted(CUSTOMERS)
    # Either store reads either table the same way; the latest session is what the session-start rule gives.
    for store in (lean, ours(rasa_db), rasa_store(our_db)):
        assert asyncio.run(trackers(store)) == reference
    assert asyncio.run(lean.retrieve("nobody")) is None
    latest = reference[0][1]["events"]
    assert [event["event"] for event in latest[:2]] == ["session_started", "action"]
    assert len(reference[0][2]["events"]) == sum(len(events) for sender, events in turns if sender == CUSTOMERS[0])
    lean.close()


def test_a_turn_is_three_statements(postgres, monkeypatch):
    store = ours(postgres.database("ts_count"))
    turns = script()
    asyncio.run(play(store, turns[:1]))  # a new conversation: Rasa's create_tracker saves an empty tracker first
    done: List[str] = []
    run = PostgresTrackerStore._run
    monkeypatch.setattr(PostgresTrackerStore, "_run", lambda self, what, work, retry=True: done.append(what) or run(
        self, what, work, retry))
    asyncio.run(play(store, turns[1:2]))
    assert done == ["retrieve", "count", "save"]
    store.close()


def test_a_new_conversations_empty_tracker_is_saved_without_a_statement(postgres, monkeypatch):
    """Rasa's processor creates a new conversation's tracker without events (`append_action_listen=False`), and
    `create_tracker` saves it before the first turn: nothing to stream or append, so no count either (session 18:
    one statement fewer per new conversation). The turns after it are stored and streamed as before."""
    broker = RecordingBroker()
    store = ours(postgres.database("ts_empty"), broker)
    done: List[str] = []
    run = PostgresTrackerStore._run
    monkeypatch.setattr(PostgresTrackerStore, "_run", lambda self, what, work, retry=True: done.append(what) or run(
        self, what, work, retry))
    tracker = asyncio.run(store.get_or_create_tracker(CUSTOMERS[0], append_action_listen=False))
    assert len(tracker.events) == 0
    assert done == ["retrieve"]  # before: retrieve, count
    asyncio.run(store.stream_events(tracker))
    assert done == ["retrieve"] and broker.published == []
    turns = script()[:2]
    asyncio.run(play(store, turns))
    stored = sum(len(events) for _sender, events in turns)
    assert len(postgres.rows("ts_empty")) == stored and len(broker.published) == stored
    store.close()


def test_a_postgresql_restart_between_turns_loses_nothing(postgres):
    """No timer can tell (the idle limit is an hour): the server's goodbye on the idle connection does."""
    turns = script()
    store = ours(postgres.database("ts_restart"), RecordingBroker(), idle_ping_seconds=3600.0)
    asyncio.run(play(store, turns[:3]))
    before = store._connection
    postgres.restart()
    asyncio.run(play(store, turns[3:6]))
    assert store._connection is not before
    # A backend terminated between turns (an idle timeout, an operator): the same.
    postgres.cluster.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'ts_restart'")
    time.sleep(0.2)
    asyncio.run(play(store, turns[6:]))

    reference_db = postgres.database("ts_restart_reference")
    reference = rasa_store(reference_db, RecordingBroker())
    asyncio.run(play(reference, turns))
    assert postgres.rows("ts_restart") == postgres.rows("ts_restart_reference")
    assert store.event_broker.published == reference.event_broker.published
    store.close()


def test_postgresql_down_fails_the_turn_without_naming_the_customer_then_recovers(postgres):
    turns = script()
    store = ours(postgres.database("ts_down"), RecordingBroker())
    asyncio.run(play(store, turns[:2]))
    postgres.pg_ctl("stop")
    try:
        with pytest.raises(TrackerStoreDatabaseError) as raised:
            asyncio.run(store.retrieve(CUSTOMERS[0]))
        assert raised.value.disconnected
        assert CUSTOMERS[0] not in str(raised.value) and "retrieve failed" in str(raised.value)
        with pytest.raises(TrackerStoreDatabaseError):  # the turn's save: nothing streamed before its count
            tracker = DialogueStateTracker.from_events(CUSTOMERS[0], answer("lost?", time.time()), DOMAIN.slots)
            asyncio.run(store.save(tracker))
        assert len(store.event_broker.published) == sum(len(events) for _sender, events in turns[:2])
    finally:
        postgres.pg_ctl("start")
    asyncio.run(play(store, turns[2:]))  # the connector retries the failed message: the next turn works

    reference = rasa_store(postgres.database("ts_down_reference"), RecordingBroker())
    asyncio.run(play(reference, turns))
    assert postgres.rows("ts_down") == postgres.rows("ts_down_reference")
    assert store.event_broker.published == reference.event_broker.published
    store.close()


def endpoint(postgres, **settings: Any) -> EndpointConfig:
    base = {"type": TYPE, "url": "127.0.0.1", "dialect": "postgresql", "port": postgres.cluster.port,
            "db": "ts_endpoint", "username": "postgres", "password": "unused"}
    return EndpointConfig(**{**base, **settings})


def test_rasa_loads_it_from_the_endpoint_and_creates_rasas_table(postgres):
    postgres.database("ts_endpoint")
    store = create_tracker_store(endpoint(postgres), DOMAIN)
    assert type(store) is PostgresTrackerStore  # async throughout: not wrapped in AwaitableTrackerStore
    asyncio.run(play(store, script()[:2]))
    assert len(postgres.rows("ts_endpoint")) == 8
    # A full URL in `url`, as Rasa's own store reads it; and login_db creates the database, as Rasa's does.
    url = f"postgresql://postgres@127.0.0.1:{postgres.cluster.port}/ts_endpoint"
    assert asyncio.run(TrackerStore.create(EndpointConfig(url=url, type=TYPE), DOMAIN).keys()) == [CUSTOMERS[0]]
    postgres.cluster.execute("DROP DATABASE IF EXISTS ts_created")
    created = TrackerStore.create(endpoint(postgres, db="ts_created", login_db="postgres"), DOMAIN)
    assert asyncio.run(created.keys()) == [] and postgres.rows("ts_created") == []


@pytest.mark.parametrize("settings, message", [
    ({"dialect": "sqlite"}, "PostgreSQL only"),
    ({"port": "fifty"}, "cannot be cast to integer"),
    ({"usernme": "postgres"}, "unknown setting(s) ['usernme']"),
    ({"db": "no_such_database"}, 'database "no_such_database" does not exist'),
    ({"url": "sqlite:///rasa.db"}, "PostgreSQL only"),
])
def test_bad_settings_stop_the_start_with_a_clear_error(postgres, settings, message):
    postgres.database("ts_endpoint")
    started = time.monotonic()
    with pytest.raises(TrackerStoreConfigError) as raised:
        TrackerStore.create(endpoint(postgres, **settings), DOMAIN)  # not Rasa's silent in-memory fallback
    assert message in str(raised.value)
    assert time.monotonic() - started < 5


def test_postgresql_not_up_yet_is_waited_for_at_start(postgres, monkeypatch, caplog):
    """As Rasa's store: the cluster's processes may start before PostgreSQL accepts connections."""
    import connectors.postgres_tracker_store as module

    monkeypatch.setattr(module, "STARTUP_RETRY_SECONDS", 0.2)
    postgres.database("ts_endpoint")
    postgres.pg_ctl("stop")
    sleeps: List[float] = []
    sleep = time.sleep

    def start_postgres_while_waiting(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            postgres.pg_ctl("start")
        sleep(seconds)

    monkeypatch.setattr(module.time, "sleep", start_postgres_while_waiting)
    try:
        store = TrackerStore.create(endpoint(postgres), DOMAIN)
    finally:
        if len(sleeps) < 2:
            postgres.pg_ctl("start")
    assert len(sleeps) >= 2
    assert asyncio.run(store.keys()) == []
    assert "not reachable yet" in caplog.text


def test_a_failed_statement_names_neither_the_customer_nor_the_statement(postgres):
    """PostgreSQL quotes the statement (with the sender id and the events) after "LINE 1:" in some errors."""
    store = ours(postgres.database("ts_errors"))
    event = BotUttered("a reply", timestamp=time.time())
    event.timestamp = "not a number"  # an event Rasa would also fail to store
    tracker = DialogueStateTracker.from_events(CUSTOMERS[0], [event], DOMAIN.slots)
    with pytest.raises(TrackerStoreDatabaseError) as raised:
        asyncio.run(store.save(tracker))
    assert "save failed: invalid input syntax for type double precision" in str(raised.value)
    assert CUSTOMERS[0] not in str(raised.value) and "LINE" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert not raised.value.disconnected and postgres.rows("ts_errors") == []
    asyncio.run(play(store, script()[:2]))  # the connection is still good
    store.close()
