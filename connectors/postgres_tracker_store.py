"""A leaner tracker store on PostgreSQL, on the table and rows of Rasa 3.6's `SQLTrackerStore` (issue 16).

    tracker_store:
      type: connectors.postgres_tracker_store.PostgresTrackerStore
      dialect: "postgresql"          # the same settings as Rasa's `type: SQL` (url, port, db, username,
      url: ...                       # password, login_db, query); only PostgreSQL
      ...

The contract: Rasa's `events` table, unchanged (its own SQLAlchemy definition creates it when it is missing), and
the rows Rasa's `SQLTrackerStore` would write, value for value: one row per event, in order (`id`), `data` =
`json.dumps(event.as_dict())`, except that a user event's parse data is written (and streamed) without the keys only
its turn needs (connectors/event_filter.py `lean_event`: the NLU's `text_embedding`, ~2.2 kB of a 384-float vector
the action server reads from the tracker Rasa sends it, never from the store). `retrieve` returns the events from the
latest `session_started` on (Rasa's query: timestamp >= the latest session start's timestamp, all events when there
is none), `retrieve_full_tracker` all of them, `keys` the distinct sender ids; `save` streams the new events to the
event broker (the events past the number stored for the session, as Rasa's `_additional_events` and the project's
counted streaming decide them), then appends those rows. Either store, and `rasa export`, can read what the other wrote.

What is cheaper than Rasa's store, per turn (Rasa: a retrieve, then a save; the lock store keeps one conversation in
one process at a time):
- one PostgreSQL connection per process, autocommit, no pool: Rasa's SQLAlchemy session, pool checkout and
  BEGIN/ROLLBACK/COMMIT round trips go; the three statements a turn needs are prepared on the server once per
  connection (PREPARE/EXECUTE: no SQL built, compiled or cache-keyed in Python, no parse or plan in PostgreSQL);
- the save counts once (Rasa counts twice with the project's streaming, three loads without it) and inserts all
  new events with one statement (`unnest` of arrays, ordered), atomic on its own; Rasa's ORM sends one
  INSERT ... RETURNING per event; saving an empty tracker (a new conversation's, before its first turn) sends nothing;
- each event's `as_dict()` is computed once, for the broker and the row.
The work stays synchronous on the event loop, as Rasa's is (a few hundred microseconds of round trips per turn).

Liveness, without a ping per use: before a statement, the connection is pinged only when it idled for
IDLE_PING_SECONDS or when the server has written to or closed it while idle (a zero-timeout poll of its socket;
connectors/store.py's rule for the connector's pool). A PostgreSQL restart, fast shutdown or terminated backend
sends a notice and closes the socket, so the next turn pings, reconnects and proceeds: nothing is lost and the
customer sees nothing. If the connection breaks during a statement, the connection is dropped; reads (retrieve,
the save's count) are retried once on a new connection, the insert is not (it may have committed): the error goes
to Rasa, the turn fails as it does with Rasa's store, and the retried turn counts again, so no row is written twice.
While PostgreSQL is down every call fails at once; the first call after it is back reconnects.

Errors carry PostgreSQL's primary message and SQLSTATE, never the statement: PostgreSQL quotes the statement's
text (with the sender id and the events in it) in some errors, which connectors/rasa_start.py's
`hide_sql_parameters` cannot hide for Rasa's own store.

Not for a connection pooler in transaction mode (pgbouncer): prepared statements live in a server session.
POSTGRESQL_SCHEMA (search_path) is honoured as by Rasa, checked once at start-up; SQL_POOL_SIZE and
SQL_MAX_OVERFLOW do not apply (one connection). Rasa's `type: SQL` is the fallback: the same table, no migration.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Text, Tuple

import psycopg2
from psycopg2 import sql
from rasa.core.brokers.broker import EventBroker
from rasa.core.constants import POSTGRESQL_SCHEMA
from rasa.core.tracker_store import SerializedTrackerAsText, SQLTrackerStore, TrackerStore, validate_port
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from connectors.event_filter import lean_event
from connectors.prepared_statements import PREPARED_STATEMENT_MISSING, prepare_sql
from connectors.store import IDLE_PING_SECONDS, _server_spoke

logger = logging.getLogger(__name__)

# Settings Rasa's `type: SQL` takes (besides url), so an endpoint switches by its `type` alone.
SETTINGS = ("dialect", "port", "db", "username", "password", "login_db", "query")
# Start-up: PostgreSQL not reachable yet is waited for (Rasa's SQLTrackerStore waits for ever, 5 s apart);
# these answers are configuration errors and stop the start at once.
_CONFIG_ERRORS = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "invalid")
STARTUP_RETRY_SECONDS = 5.0

_SESSION_ROWS = (
    "FROM events, (SELECT max(timestamp) AS session_start FROM events"
    f" WHERE sender_id = $1 AND type_name = '{SessionStarted.type_name}') AS latest"
    " WHERE events.sender_id = $1 AND (events.timestamp >= latest.session_start OR latest.session_start IS NULL)"
)
# name -> (parameter types, statement): Rasa's `_event_query` (session / all sessions), its count, the insert.
_STATEMENTS = {
    "kesar_ts_session": ("text", f"SELECT events.data {_SESSION_ROWS} ORDER BY events.id"),
    "kesar_ts_all": ("text", "SELECT data FROM events WHERE sender_id = $1 ORDER BY id"),
    "kesar_ts_count": ("text", f"SELECT count(*) {_SESSION_ROWS}"),
    "kesar_ts_insert": (
        "text, text[], float8[], text[], text[], text[]",
        "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data)"
        " SELECT $1, e.type_name, e.timestamp, e.intent_name, e.action_name, e.data"
        " FROM unnest($2, $3, $4, $5, $6) WITH ORDINALITY AS e(type_name, timestamp, intent_name, action_name, data, n)"
        " ORDER BY e.n",  # ids in the tracker's order, as Rasa's one-by-one inserts give them
    ),
}
_PREPARE = ";".join(prepare_sql(name, text, types) for name, (types, text) in _STATEMENTS.items())
_INSERT = "EXECUTE kesar_ts_insert(%s, %s::text[], %s::float8[], %s::text[], %s::text[], %s::text[])"


class TrackerStoreConfigError(RasaException, ValueError):
    """The tracker store's endpoint settings cannot work; raised at start-up, before Rasa serves."""


class TrackerStoreDatabaseError(RasaException):
    """A statement or the connection failed. The message is PostgreSQL's primary message and SQLSTATE only."""

    def __init__(self, what: str, error: Exception) -> None:
        self.pgcode = getattr(error, "pgcode", None)
        self.disconnected = _is_disconnect(error)
        super().__init__(f"PostgreSQL tracker store: {what} failed: {_primary_message(error)}"
                         + (f" (SQLSTATE {self.pgcode})" if self.pgcode else ""))


def _primary_message(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return primary
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _is_disconnect(error: Exception) -> bool:
    return isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))


def event_row(event: Any) -> Tuple[Dict[Text, Any], Text, Any, Any, Any, Text]:
    """An event's dict (what the broker gets) and its row's columns, as Rasa's `SQLTrackerStore.save` but without the
    parse data's turn-only keys."""
    data = lean_event(event.as_dict())
    intent = data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY)
    return data, event.type_name, data.get("timestamp"), intent, data.get("name"), json.dumps(data)


def connect_kwargs(host: Optional[Text], port: Optional[int], db: Text, username: Optional[Text],
                   password: Optional[Text], login_db: Optional[Text], query: Optional[Dict]) -> Dict[str, Any]:
    """psycopg2's connection arguments from Rasa's settings, read as Rasa reads them (`get_db_url`: the url may be a
    full `postgresql://…` URL, or a host with its port)."""
    from sqlalchemy.dialects.postgresql import psycopg2 as dialect_module
    from sqlalchemy.engine import make_url

    url = make_url(SQLTrackerStore.get_db_url("postgresql", host, port, db, username, password, login_db, query))
    if url.get_backend_name() != "postgresql":
        raise TrackerStoreConfigError(f"PostgresTrackerStore works on PostgreSQL only; its url names "
                                      f"'{url.get_backend_name()}'")
    if url.get_driver_name() not in ("psycopg2", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")
    _args, kwargs = dialect_module.dialect().create_connect_args(url)
    schema = os.environ.get(POSTGRESQL_SCHEMA)
    if schema:
        kwargs["options"] = f"-csearch_path={schema}"
    return kwargs


class PostgresTrackerStore(TrackerStore, SerializedTrackerAsText):
    """Rasa's `SQLTrackerStore` semantics and table on PostgreSQL, with a few prepared statements per turn."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[Text] = None,
        port: Optional[int] = None,
        db: Text = "rasa.db",
        username: Optional[Text] = None,
        password: Optional[Text] = None,
        event_broker: Optional[EventBroker] = None,
        login_db: Optional[Text] = None,
        query: Optional[Dict] = None,
        dialect: Text = "postgresql",
        idle_ping_seconds: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        try:  # Rasa turns an AttributeError or ImportError from here into an in-memory store: never let one out
            if kwargs:
                raise TrackerStoreConfigError(
                    f"PostgresTrackerStore: unknown setting(s) {sorted(kwargs)} in the tracker_store endpoint; "
                    f"it takes url and {', '.join(SETTINGS)}")
            if not str(dialect or "").startswith("postgresql"):
                raise TrackerStoreConfigError(
                    f"PostgresTrackerStore works on PostgreSQL only (dialect: \"postgresql\"), not '{dialect}'; "
                    f"use Rasa's `type: SQL` for other databases")
            try:
                port = validate_port(port)
            except RasaException as error:
                raise TrackerStoreConfigError(f"PostgresTrackerStore: {error}") from None
            self._connect_kwargs = connect_kwargs(host, port, db, username, password, None, query)
            self._idle_ping_seconds = IDLE_PING_SECONDS if idle_ping_seconds is None else idle_ping_seconds
            self._clock = clock
            self._lock = threading.Lock()  # Rasa calls from its event loop; a thread (rasa export, tests) is safe
            self._connection: Any = None
            self._cursor: Any = None
            self._pid = os.getpid()
            self._inherited: List[Any] = []  # connections a fork inherited: kept open for the parent, never used
            self._idle_since = 0.0
            if login_db:
                self._create_database(db, connect_kwargs(host, port, db, username, password, login_db, query))
            self._create_table_once_reachable()
        except (AttributeError, ImportError) as error:
            raise TrackerStoreConfigError(f"PostgresTrackerStore could not start: {error!r}") from error
        super().__init__(domain, event_broker)

    # -- start-up ---------------------------------------------------------------------------------------------

    def _create_table_once_reachable(self) -> None:
        """Rasa's own table definition (`SQLTrackerStore.SQLEvent`), created if missing, on one short-lived engine."""
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        engine = sa.create_engine("postgresql+psycopg2://", poolclass=NullPool, hide_parameters=True,
                                  creator=lambda: psycopg2.connect(**self._connect_kwargs))
        raced = False
        try:
            while True:
                try:
                    with engine.connect() as connection:
                        self._check_schema(connection)
                        SQLTrackerStore.Base.metadata.create_all(connection, checkfirst=True)
                    return
                except sa.exc.OperationalError as error:
                    message = _primary_message(error.orig)
                    if any(text in message for text in _CONFIG_ERRORS):
                        raise TrackerStoreConfigError(f"PostgresTrackerStore cannot use the database: {message}") \
                            from None
                    logger.warning(f"PostgreSQL tracker store not reachable yet ({message}); "
                                   f"trying again in {STARTUP_RETRY_SECONDS:.0f} s")
                    time.sleep(STARTUP_RETRY_SECONDS)
                except (sa.exc.IntegrityError, sa.exc.ProgrammingError) as error:
                    # Several processes starting at once may race to create the table: the next look finds it.
                    if raced:
                        raise TrackerStoreConfigError(f"PostgresTrackerStore cannot create Rasa's events table: "
                                                      f"{_primary_message(error.orig)}") from None
                    raced = True
        finally:
            engine.dispose()

    @staticmethod
    def _check_schema(connection: Any) -> None:
        schema = os.environ.get(POSTGRESQL_SCHEMA)
        if schema and not connection.exec_driver_sql(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %(name)s", {"name": schema}).first():
            raise TrackerStoreConfigError(
                f"PostgreSQL schema '{schema}' ({POSTGRESQL_SCHEMA}) was not found in the tracker store's database; "
                f"create it or unset {POSTGRESQL_SCHEMA}")

    @staticmethod
    def _create_database(db: Text, login_kwargs: Dict[str, Any]) -> None:
        """Rasa's `login_db`: connect to that database and create `db` unless it exists."""
        try:
            connection = psycopg2.connect(**login_kwargs)
        except psycopg2.Error as error:
            raise TrackerStoreConfigError(
                f"PostgresTrackerStore cannot reach login_db: {_primary_message(error)}") from None
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (db,))
                if cursor.fetchone() is None:
                    try:
                        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                    except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation) as error:
                        logger.info(f"PostgreSQL tracker store: database creation raced ({_primary_message(error)})")
        finally:
            connection.close()

    # -- the connection ---------------------------------------------------------------------------------------

    def _live_cursor(self) -> Any:
        """The process's connection, made (and its statements prepared) if there is none, pinged when in doubt."""

        if self._pid != os.getpid():  # forked: the parent's connection is not ours to use, nor to close
            self._inherited.append(self._connection)
            self._connection = self._cursor = None
            self._pid = os.getpid()
        connection = self._connection
        if connection is not None and (self._clock() - self._idle_since >= self._idle_ping_seconds
                                       or _server_spoke(connection)):
            try:
                self._cursor.execute("SELECT 1")
                self._cursor.fetchall()
            except psycopg2.Error:
                logger.info("PostgreSQL tracker store: the connection is gone; connecting anew")
                self._drop()
        if self._connection is None:
            connection = psycopg2.connect(**self._connect_kwargs)
            try:
                connection.autocommit = True
                cursor = connection.cursor()
                cursor.execute(_PREPARE)
            except BaseException:
                connection.close()
                raise
            self._connection, self._cursor = connection, cursor
        return self._cursor

    def _drop(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already broken
                pass

    def _run(self, what: str, work: Callable[[Any], Any], retry: bool = True) -> Any:
        """`work(cursor)` on the live connection. A broken connection is dropped (and a read retried once)."""

        with self._lock:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return work(self._live_cursor())
                except psycopg2.Error as error:
                    disconnected = _is_disconnect(error) or (self._connection is not None and self._connection.closed)
                    # 26000: our prepared statements are gone (DISCARD ALL, a pooler): prepare them anew.
                    disconnected = disconnected or getattr(error, "pgcode", None) == PREPARED_STATEMENT_MISSING
                    if disconnected:
                        self._drop()
                    if not (disconnected and retry and attempt == 1):
                        raise TrackerStoreDatabaseError(what, error) from None
                    logger.info("PostgreSQL tracker store: the connection broke; trying once more on a new one")
                finally:
                    self._idle_since = self._clock()

    def close(self) -> None:
        with self._lock:
            self._drop()

    # -- Rasa's TrackerStore ----------------------------------------------------------------------------------

    async def keys(self) -> Iterable[Text]:
        """Returns the sender ids in the store."""
        def distinct(cursor: Any) -> List[Text]:
            cursor.execute("SELECT DISTINCT sender_id FROM events")
            return [sender_id for (sender_id,) in cursor.fetchall()]
        return self._run("keys", distinct)

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker of the latest conversation session."""
        return self._tracker(sender_id, "kesar_ts_session")

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker with the events of all conversation sessions."""
        return self._tracker(conversation_id, "kesar_ts_all")

    def _tracker(self, sender_id: Text, statement: str) -> Optional[DialogueStateTracker]:
        def rows(cursor: Any) -> List[Tuple[Text]]:
            cursor.execute(f"EXECUTE {statement}(%s)", (sender_id,))
            return cursor.fetchall()

        events = [json.loads(data) for (data,) in self._run("retrieve", rows)]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    def _stored_count(self, sender_id: Text) -> int:
        def count(cursor: Any) -> int:
            cursor.execute("EXECUTE kesar_ts_count(%s)", (sender_id,))
            return cursor.fetchone()[0]
        return self._run("count", count)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Streams the events `save` would add (when called alone; `save` streams them itself)."""
        if self.event_broker is None or not tracker.events:
            return
        stored = self._stored_count(tracker.sender_id)
        new = [lean_event(event.as_dict()) for event in itertools.islice(tracker.events, stored, len(tracker.events))]
        self._publish(tracker.sender_id, new)

    def _publish(self, sender_id: Text, events: Sequence[Dict[Text, Any]]) -> None:
        """As Rasa's `_stream_new_events`: each event's dict after its sender id."""
        for data in events:
            body = {"sender_id": sender_id}
            body.update(data)
            self.event_broker.publish(body)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Streams the turn's new events, then appends them: one count, one insert. A tracker without events (Rasa's
        `create_tracker` saves the new conversation's empty tracker before its first turn) has none to stream or
        append, whatever the count: no statement at all."""
        if not tracker.events:
            return
        sender_id = tracker.sender_id
        stored = self._stored_count(sender_id)
        rows = [event_row(event) for event in itertools.islice(tracker.events, stored, len(tracker.events))]
        if self.event_broker is not None:
            self._publish(sender_id, [row[0] for row in rows])
        if not rows:
            return
        columns = list(zip(*(row[1:] for row in rows)))

        def insert(cursor: Any) -> None:
            cursor.execute(_INSERT, (sender_id, *(list(column) for column in columns)))

        self._run("save", insert, retry=False)
        logger.debug(f"Tracker with sender_id '{sender_id}' stored to database")
