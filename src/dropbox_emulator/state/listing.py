"""What clients come back with later: `list_folder` cursors and async job ids.

A listing cursor first pages through a snapshot-ordered walk of the folder (by path_lower, so
parents come before children), then becomes a change feed from the sequence number current when
the listing began. Jobs keep the encoded final status of a batch call ("" while it runs).

Both tables are bounded, so a long-running emulator does not grow without end: the oldest
cursors go once there are more than MAX_CURSORS (a client continuing one is told `reset`, as
Dropbox says when a cursor is no longer valid), and jobs go after JOB_TTL_S or beyond MAX_JOBS.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sqlite3
import time
from typing import Any, Optional

from dropbox_emulator.state import paths
from dropbox_emulator.state.database import Database
from dropbox_emulator.state.tree import ENTRY_COLUMNS, Entry

CURSORS_SCHEMA = "CREATE TABLE IF NOT EXISTS cursors(id TEXT PRIMARY KEY, state TEXT NOT NULL);"
JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
"""


MAX_CURSORS = 50_000
MAX_JOBS = 10_000
# Dropbox keeps batch job ids for about 48 hours (rclone#2158: "48hr limit from
# UploadSessionFinishBatchCheck").
JOB_TTL_S = 48 * 3600


class UnknownCursor(Exception):
    pass


@dataclasses.dataclass
class Page:
    entries: list[Entry]
    cursor: str
    has_more: bool


class Listing:
    def __init__(self, db: Database):
        self._database = db
        self.max_cursors = MAX_CURSORS
        db.create(CURSORS_SCHEMA)

    @staticmethod
    def clear(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM cursors")

    def _save_cursor(self, db: sqlite3.Connection, state: dict[str, Any]) -> str:
        cursor = "AAE" + secrets.token_urlsafe(40)
        db.execute("INSERT INTO cursors(id, state) VALUES (?, ?)", (cursor, json.dumps(state)))
        row = db.execute("SELECT MAX(rowid) FROM cursors").fetchone()
        if row[0] is not None and row[0] % 100 == 0:  # trim now and then, not on every page
            db.execute(
                "DELETE FROM cursors WHERE rowid <= (SELECT MAX(rowid) FROM cursors) - ?",
                (self.max_cursors,),
            )
        return cursor

    def list_folder(
        self, ns: str, path_lower: str, recursive: bool, include_deleted: bool, limit: int
    ) -> Page:
        """First page of a listing. The cursor first pages through a snapshot-ordered walk
        (by path_lower, so parents come before children), then becomes a change feed from
        the sequence number current when the listing began."""
        with self._database.tx() as db:
            state = self._listing_state(db, ns, path_lower, recursive, include_deleted, limit)
            return self._page(db, {**state, "phase": "walk"})

    def latest_cursor(
        self, ns: str, path_lower: str, recursive: bool, include_deleted: bool, limit: int
    ) -> str:
        with self._database.tx() as db:
            state = self._listing_state(db, ns, path_lower, recursive, include_deleted, limit)
            return self._save_cursor(db, {**state, "phase": "changes"})

    @staticmethod
    def _listing_state(
        db: sqlite3.Connection,
        ns: str,
        path_lower: str,
        recursive: bool,
        include_deleted: bool,
        limit: int,
    ) -> dict[str, Any]:
        """A cursor's state at the current sequence number (its "phase" is the caller's)."""
        return {
            "ns": ns,
            "path": path_lower,
            "recursive": recursive,
            "include_deleted": include_deleted,
            "limit": limit,
            "pos": None,
            "seq": Database.counter(db, "seq") or 0,
        }

    def continue_listing(self, cursor: str) -> Page:
        if not paths.is_text(cursor):
            raise UnknownCursor(cursor)
        with self._database.tx() as db:
            row = db.execute("SELECT state FROM cursors WHERE id = ?", (cursor,)).fetchone()
            if row is None:
                raise UnknownCursor(cursor)
            return self._page(db, json.loads(row[0]))

    def has_changes(self, cursor: str) -> bool:
        """Would `list_folder/continue(cursor)` return something? (list_folder/longpoll)"""
        if not paths.is_text(cursor):
            raise UnknownCursor(cursor)
        with self._database.lock:
            row = self._database.connection.execute(
                "SELECT state FROM cursors WHERE id = ?", (cursor,)
            ).fetchone()
            if row is None:
                raise UnknownCursor(cursor)
            state = json.loads(row[0])
            if state["phase"] == "walk":
                return True
            scope, scope_args = _scope(state)
            after, after_args = _after(state)
            found = self._database.connection.execute(
                f"SELECT 1 FROM entries WHERE ns = ? AND {scope} AND {after} LIMIT 1",
                (state["ns"], *scope_args, *after_args),
            ).fetchone()
        return found is not None

    def _page(self, db: sqlite3.Connection, state: dict[str, Any]) -> Page:
        ns, limit = state["ns"], int(state["limit"])
        scope, scope_args = _scope(state)
        entries: list[Entry] = []
        if state["phase"] == "walk":
            deleted = "" if state["include_deleted"] else " AND kind != 'deleted'"
            pos = state["pos"]
            after = " AND path_lower > ?" if pos is not None else ""
            rows = db.execute(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE ns = ? AND {scope}{deleted}{after} "
                "ORDER BY path_lower LIMIT ?",
                (ns, *scope_args, *((pos,) if pos is not None else ()), limit + 1),
            ).fetchall()
            entries = [Entry(*r) for r in rows[:limit]]
            if len(rows) > limit:
                state = {**state, "pos": entries[-1].path_lower}
                return Page(entries, self._save_cursor(db, state), True)
            state = {**state, "phase": "changes", "pos": None}
            return Page(entries, self._save_cursor(db, state), False)
        after, after_args = _after(state)
        rows = db.execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE ns = ? AND {scope} AND {after} "
            "ORDER BY seq, path_lower LIMIT ?",
            (ns, *scope_args, *after_args, limit + 1),
        ).fetchall()
        entries = [Entry(*r) for r in rows[:limit]]
        if entries:
            state = {**state, "seq": entries[-1].seq, "pos": entries[-1].path_lower}
        return Page(entries, self._save_cursor(db, state), len(rows) > limit)


class Jobs:
    def __init__(self, db: Database):
        self._database = db
        self.ttl_s: float = JOB_TTL_S
        self.max_jobs = MAX_JOBS
        db.create(JOBS_SCHEMA)

    @staticmethod
    def clear(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM jobs")

    def add(self, kind: str, result: str) -> str:
        """A new job with its encoded final status, or "" for one still running."""
        job_id = "dbjid:" + secrets.token_urlsafe(40)
        now = time.time()
        with self._database.tx() as db:
            db.execute(
                "INSERT INTO jobs(id, kind, result, created) VALUES (?, ?, ?, ?)",
                (job_id, kind, result, now),
            )
            db.execute("DELETE FROM jobs WHERE created < ?", (now - self.ttl_s,))
            db.execute(
                "DELETE FROM jobs WHERE rowid <= (SELECT MAX(rowid) FROM jobs) - ?",
                (self.max_jobs,),
            )
        return job_id

    def finish(self, job_id: str, result: str) -> None:
        with self._database.tx() as db:
            db.execute("UPDATE jobs SET result = ? WHERE id = ?", (result, job_id))

    def forget(self, job_id: str) -> None:
        with self._database.tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def get(self, job_id: str, kind: str) -> Optional[str]:
        """The encoded status ("" while running), None for an unknown or expired job."""
        if not paths.is_text(job_id):
            return None
        with self._database.lock:
            row = self._database.connection.execute(
                "SELECT result, created FROM jobs WHERE id = ? AND kind = ?", (job_id, kind)
            ).fetchone()
        if row is None or row[1] < time.time() - self.ttl_s:
            return None
        return str(row[0])


def _scope(state: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """SQL condition selecting the rows a listing covers."""
    folder = state["path"]
    if not state["recursive"]:
        return "parent_lower = ?", (folder,)
    if not folder:
        return "1 = 1", ()
    return "(path_lower = ? OR (path_lower > ? AND path_lower < ?))", (
        folder,
        folder + "/",
        folder + "0",
    )


def _after(state: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """SQL condition selecting changes after a change-feed cursor's position."""
    if state["pos"] is None:
        return "seq > ?", (state["seq"],)
    return "(seq > ? OR (seq = ? AND path_lower > ?))", (state["seq"], state["seq"], state["pos"])
