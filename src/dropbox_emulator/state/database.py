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

# RETURNING arrived in SQLite 3.35 (2021); older builds take two statements.
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_SCHEMA = "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


class Database:
    def __init__(self, path: Path):
        # Re-entrant: a part may read (taking the lock) inside another part's transaction.
        self.lock = threading.RLock()
        self._depth = 0  # transactions open in the thread holding `lock`
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
        """A transaction; inside another one (same thread: the lock is held) a savepoint, so
        a failing part rolls back alone while the outer transaction goes on."""
        with self.lock:
            connection = self.connection
            if self._depth:
                name = f"part{self._depth}"
                connection.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield connection
                except BaseException:
                    connection.execute(f"ROLLBACK TO {name}")
                    connection.execute(f"RELEASE {name}")
                    raise
                finally:
                    self._depth -= 1
                connection.execute(f"RELEASE {name}")
                return
            connection.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            connection.execute("COMMIT")

    @staticmethod
    def next(db: sqlite3.Connection, counter: str) -> int:
        """Increment `counter` (inside a transaction) and return its new value."""
        if _RETURNING:  # one statement instead of two: three counters move per stored file
            row = db.execute(
                "INSERT INTO counters(name, value) VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                (counter,),
            ).fetchone()
            return int(row[0])
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
