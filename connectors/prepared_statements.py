"""Server-side prepared statements on PostgreSQL (PREPARE once per connection, then EXECUTE), issue 16.

PostgreSQL parses and plans every statement it is sent as text; a prepared statement is parsed once per
connection and, with its parameters' types known, served by a cached plan (after five executions, a generic plan
when it is not worse than the custom ones). In the capacity benchmark the connector's store spent more time
planning its statements than executing them (bench/README_cluster.md, "Session 18: SQL per message").

Two users, one mechanism:
- connectors/postgres_tracker_store.py (plain psycopg2, one connection) prepares its named statements when it
  connects (`prepare_sql`);
- connectors/store.py (SQLAlchemy pools) marks its hot statements with `prepared("name")` and calls
  `prepare_marked_statements(engine)`: the first time a pooled connection runs a marked statement's SQL, it is
  prepared on that connection, and from then on the SQL sent is `EXECUTE name_n(<the same parameters>)`. The
  statement, its parameters, the transaction or autocommit around it and the result (rows, rowcount: EXECUTE's
  command tag is the prepared statement's) are what they were; only the text on the wire changes.

Prepared statements live in the server session, so they survive a ROLLBACK (PREPARE is not transactional) and go
with the connection: a new connection (after a PostgreSQL restart, a terminated backend, the pool's invalidation)
starts with none and prepares again. If the server has lost them while the connection lives (DISCARD ALL, a
pooler in transaction mode: SQLSTATE 26000), the error counts as a disconnect: the pool drops its connections and
the next use connects and prepares anew. Not for a connection pooler in transaction mode (pgbouncer).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from sqlalchemy import event
from sqlalchemy.engine import Engine

# "prepared statement ... does not exist": the session lost its prepared statements.
PREPARED_STATEMENT_MISSING = "26000"
OPTION = "kesar_prepared"  # the execution option that marks a statement (its value: the name's prefix)
_PREPARED = "kesar_prepared_statements"  # in a pooled connection's info: its SQL -> the EXECUTE that replaces it
# Statements whose SQL varies (an IN list of n values renders n parameters) are prepared once per distinct SQL, up to
# this many per connection; past it they are sent as before.
PER_CONNECTION_LIMIT = 64
_PYFORMAT = re.compile(r"%\((\w+)\)s")


def prepare_sql(name: str, statement: str, types: str = "") -> str:
    """`PREPARE name (types) AS statement` (`statement` with $1, $2, ... parameters)."""
    return f"PREPARE {name}{f' ({types})' if types else ''} AS {statement}"


def prepared(name: str) -> Dict[str, str]:
    """Execution options marking a statement to be prepared on PostgreSQL (`prepare_marked_statements`):
    `statement.execution_options(**prepared("kesar_x"))`. Elsewhere (SQLite) the option means nothing."""
    return {OPTION: name}


def numbered(statement: str) -> Tuple[str, Tuple[str, ...]]:
    """psycopg2's pyformat SQL as PREPARE's text: `%(name)s` -> `$n` (one number per distinct name, in order of
    first use), `%%` -> `%`; and the names in their numbers' order."""
    order: Dict[str, int] = {}

    def number(match: "re.Match[str]") -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    return _PYFORMAT.sub(number, statement).replace("%%", "%"), tuple(order)


def prepare_marked_statements(engine: Engine, limit: int = PER_CONNECTION_LIMIT) -> None:
    """On a PostgreSQL (psycopg2) engine: statements marked with `prepared(...)` run as prepared statements."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_PREPARED] = {}  # a new server session: nothing prepared on it yet

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> Any:
        name: Optional[str] = context.execution_options.get(OPTION) if context is not None else None
        if name is None or executemany or not isinstance(parameters, dict):
            return statement, parameters
        done = conn.connection.info.setdefault(_PREPARED, {})
        execute = done.get(statement)
        if execute is None:
            if len(done) >= limit:
                return statement, parameters
            text, names = numbered(statement)
            prepared_name = f"{name}_{len(done)}"
            # A text parameter is declared text (one compared with a varchar column and stored in another would
            # otherwise be deduced both text and varchar); the others are inferred from where they are used.
            types = ", ".join("text" if isinstance(parameters.get(n), str) else "unknown" for n in names)
            cursor.execute(prepare_sql(prepared_name, text, types))
            execute = f"EXECUTE {prepared_name}" + (f"({', '.join(f'%({n})s' for n in names)})" if names else "")
            done[statement] = execute
        return execute, parameters

    @event.listens_for(engine, "handle_error")
    def _lost(context: Any) -> None:
        if getattr(context.original_exception, "pgcode", None) == PREPARED_STATEMENT_MISSING:
            context.is_disconnect = True  # the pool connects anew; the new connection prepares again
