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
    view: str  # the namespace of the path root the listing was started under


@dataclasses.dataclass(frozen=True)
class Request:
    """What a listing covers: a folder of a namespace, plus the namespaces mounted below it
    (namespace, mount path lower) that a recursive listing descends into, and the namespace of
    the caller's path root (what the entries are shown relative to)."""

    ns: str
    path_lower: str
    recursive: bool
    include_deleted: bool
    limit: int
    view: str
    mounts: tuple[tuple[str, str], ...] = ()


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

    def list_folder(self, request: Request) -> Page:
        """First page of a listing. The cursor first pages through a snapshot-ordered walk
        (by path_lower, so parents come before children), then becomes a change feed from
        the sequence number current when the listing began."""
        with self._database.tx() as db:
            state = self._listing_state(db, request)
            return self._page(db, {**state, "phase": "walk"})

    def latest_cursor(self, request: Request) -> str:
        with self._database.tx() as db:
            state = self._listing_state(db, request)
            return self._save_cursor(db, {**state, "phase": "changes"})

    @staticmethod
    def _listing_state(db: sqlite3.Connection, request: Request) -> dict[str, Any]:
        """A cursor's state at the current sequence number (its "phase" is the caller's)."""
        return {
            "ns": request.ns,
            "path": request.path_lower,
            "recursive": request.recursive,
            "include_deleted": request.include_deleted,
            "limit": request.limit,
            "view": request.view,
            # Only a recursive listing reaches below the mount points.
            "mounts": [list(m) for m in request.mounts] if request.recursive else [],
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
            source = _source(state)
            scope, scope_args = _scope(state, source)
            after, after_args = _after(state, source)
            found = self._database.connection.execute(
                f"SELECT 1 FROM {source.sql} AND {scope} AND {after} LIMIT 1",
                (*source.args, *scope_args, *after_args),
            ).fetchone()
        return found is not None

    def _page(self, db: sqlite3.Connection, state: dict[str, Any]) -> Page:
        limit = int(state["limit"])
        view = str(state.get("view", state["ns"]))
        source = _source(state)
        scope, scope_args = _scope(state, source)
        lower = source.lower
        entries: list[Entry] = []
        if state["phase"] == "walk":
            deleted = "" if state["include_deleted"] else " AND kind != 'deleted'"
            pos = state["pos"]
            after = f" AND {lower} > ?" if pos is not None else ""
            rows = db.execute(
                f"SELECT {ENTRY_COLUMNS}, {lower} FROM {source.sql} AND {scope}{deleted}{after} "
                f"ORDER BY {lower} LIMIT ?",
                (*source.args, *scope_args, *((pos,) if pos is not None else ()), limit + 1),
            ).fetchall()
            entries = [Entry(*r[:-1]) for r in rows[:limit]]
            if len(rows) > limit:
                state = {**state, "pos": rows[limit - 1][-1]}
                return Page(entries, self._save_cursor(db, state), True, view)
            state = {**state, "phase": "changes", "pos": None}
            return Page(entries, self._save_cursor(db, state), False, view)
        after, after_args = _after(state, source)
        rows = db.execute(
            f"SELECT {ENTRY_COLUMNS}, {lower} FROM {source.sql} AND {scope} AND {after} "
            f"ORDER BY seq, {lower} LIMIT ?",
            (*source.args, *scope_args, *after_args, limit + 1),
        ).fetchall()
        entries = [Entry(*r[:-1]) for r in rows[:limit]]
        if entries:
            state = {**state, "seq": entries[-1].seq, "pos": rows[len(entries) - 1][-1]}
        return Page(entries, self._save_cursor(db, state), len(rows) > limit, view)


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


@dataclasses.dataclass(frozen=True)
class _Source:
    """`FROM <rows> WHERE <listed namespace>` plus the expressions for each row's path and
    parent path as seen from the listed namespace."""

    sql: str
    args: tuple[Any, ...]
    lower: str
    parent: str


def _source(state: dict[str, Any]) -> _Source:
    """Rows of the listed namespace, and of the namespaces mounted below the listed folder with
    their mount path in front, so one ordering walks the whole layout."""
    mounts = state.get("mounts") or []
    if not mounts:  # the common case keeps the plain table (and its indexes)
        return _Source("entries WHERE ns = ?", (state["ns"],), "path_lower", "parent_lower")
    parts = [
        f"SELECT {ENTRY_COLUMNS}, path_lower AS view_lower, parent_lower AS view_parent "
        "FROM entries WHERE ns = ?"
    ]
    args: list[Any] = [state["ns"]]
    for ns, prefix in mounts:
        parts.append(
            f"SELECT {ENTRY_COLUMNS}, ? || path_lower, ? || parent_lower FROM entries WHERE ns = ?"
        )
        args += [prefix, prefix, ns]
    return _Source(
        f"({' UNION ALL '.join(parts)}) WHERE 1 = 1", tuple(args), "view_lower", "view_parent"
    )


def _scope(state: dict[str, Any], source: _Source) -> tuple[str, tuple[Any, ...]]:
    """SQL condition selecting the rows a listing covers."""
    folder = state["path"]
    if not state["recursive"]:
        return f"{source.parent} = ?", (folder,)
    if not folder:
        return "1 = 1", ()
    lower = source.lower
    return f"({lower} = ? OR ({lower} > ? AND {lower} < ?))", (
        folder,
        folder + "/",
        folder + "0",
    )


def _after(state: dict[str, Any], source: _Source) -> tuple[str, tuple[Any, ...]]:
    """SQL condition selecting changes after a change-feed cursor's position."""
    if state["pos"] is None:
        return "seq > ?", (state["seq"],)
    return f"(seq > ? OR (seq = ? AND {source.lower} > ?))", (
        state["seq"],
        state["seq"],
        state["pos"],
    )
