"""Read another process's SQLite database without ever writing to it (test clients use this)."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, List


def query(path: Path, sql: str, *params: Any) -> List[sqlite3.Row]:
    # mode=ro: a test must not create the file or take write locks the service under test needs.
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()
