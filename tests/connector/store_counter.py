"""Counts the database work of a `WhatsAppStore` (test support): statements, transactions, pings.

Listens on the store's engines (on PostgreSQL one for transactions and one whose connections autocommit,
two on SQLite): `before_cursor_execute` counts statements the store runs, `begin` counts transactions
(explicit or autobegun; a statement alone on an autocommit connection is a transaction of its own for
PostgreSQL, and is counted, also in `autocommitted`), and the dialect's `do_ping` is wrapped, so both
SQLAlchemy's `pool_pre_ping` and the store's own idle ping are counted. `round_trips`: what the server
receives, the statements plus BEGIN and COMMIT (or ROLLBACK) of each transaction not autocommitted.
The test's own queries go through an engine of its own and are not counted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict

from sqlalchemy import event


@dataclass(frozen=True)
class Work:
    statements: int
    transactions: int
    pings: int
    autocommitted: int = 0  # of the transactions: a statement alone on an autocommit connection

    def __sub__(self, other: "Work") -> "Work":
        return Work(self.statements - other.statements, self.transactions - other.transactions,
                    self.pings - other.pings, self.autocommitted - other.autocommitted)

    @property
    def round_trips(self) -> int:
        return self.statements + 2 * (self.transactions - self.autocommitted)


class StoreCounter:
    def __init__(self, store: Any) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {"statements": 0, "transactions": 0, "pings": 0, "autocommitted": 0}
        self.statement_texts: Dict[str, int] = {}
        candidates = (store.engine, store._bookkeeping, getattr(store, "_autocommit", None))
        engines = {id(engine): engine for engine in candidates if engine is not None}
        for engine in engines.values():
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine, "begin", self._begin)
            ping = engine.dialect.do_ping

            def counted_ping(dbapi_connection: Any, _ping: Any = ping) -> bool:
                self._add("pings")
                return _ping(dbapi_connection)

            engine.dialect.do_ping = counted_ping

    def _add(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._add("statements")
        with self._lock:
            key = " ".join(statement.split())[:70]
            self.statement_texts[key] = self.statement_texts.get(key, 0) + 1

    def _begin(self, conn: Any) -> None:
        self._add("transactions")
        if conn.engine.dialect.name == "postgresql" and conn.connection.dbapi_connection.autocommit:
            self._add("autocommitted")

    def now(self) -> Work:
        with self._lock:
            return Work(**self._counts)
