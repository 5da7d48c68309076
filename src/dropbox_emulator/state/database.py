"""The one SQLite database of the state (`files.sqlite3`), shared by its parts.

One connection guarded by one lock keeps concurrent (threaded) requests safe; each part of the
store creates its own tables. Named counters hand out sequence numbers (`seq`, `rev`) and keep
running totals (`used_bytes`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

_SCHEMA = "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


class Database:
    def __init__(self, path: Path):
        # Re-entrant: a part may read (taking the lock) inside another part's transaction.
        self.lock = threading.RLock()
        self.connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        # No fsync at all (also not at WAL checkpoints): a test double needs no crash safety, and
        # checkpoint fsyncs showed up in the per-entry cost of finish_batch_v2.
        self.connection.execute("PRAGMA synchronous=OFF")
        self.create(_SCHEMA)

    def create(self, schema: str) -> None:
        """Run a part's `CREATE ... IF NOT EXISTS` script."""
        with self.lock:
            self.connection.executescript(schema)

    def close(self) -> None:
        with self.lock:
            self.connection.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    @staticmethod
    def next(db: sqlite3.Connection, counter: str) -> int:
        """Increment `counter` (inside a transaction) and return its new value."""
        db.execute(
            "INSERT INTO counters(name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (counter,),
        )
        return int(
            db.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()[0]
        )

    @staticmethod
    def counter(db: sqlite3.Connection, counter: str) -> Optional[int]:
        row = db.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
        return int(row[0]) if row else None
