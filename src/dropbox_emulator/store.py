"""The emulator's Dropbox state: SQLite metadata plus content-addressed blob files.

Layout under `data_dir`:
  files.sqlite3            entries (current tree incl. deletion markers), revisions, upload
                           sessions and their pieces, list_folder cursors, async jobs, counters
  blobs/<h[:2]>/<h>        file contents, named by their Dropbox content hash
  sessions/<sid>.<offset>  upload-session pieces (request bodies renamed into place, never copied;
                           flat files: a directory per session cost ~2 ms of mkdir + rmdir on
                           ext4, a third of the per-entry time of finish_batch_v2)
  tmp/                     assembly of multi-piece sessions

One SQLite connection guarded by one lock keeps concurrent (threaded) requests safe; heavy
file I/O (assembling sessions) runs outside that lock. Write operations assume the caller holds
the namespace commit (`Call.commit`), which is what serialises them the way Dropbox does.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from dropbox_emulator import api, paths
from dropbox_emulator.bodies import ContentHasher
from dropbox_emulator.config import EmulatorConfig

# The one emulated account: a home namespace and a team space root next to it.
ACCOUNT_ID = api.ACCOUNT_ID
HOME_NAMESPACE_ID = "3000000001"
TEAM_NAMESPACE_ID = "3000000000"
NAMESPACES = (HOME_NAMESPACE_ID, TEAM_NAMESPACE_ID)

BLOCK_SIZE = 4 * 1024 * 1024
SESSION_TTL_S = 7 * 24 * 3600
MAX_FILE_SIZE = 2**41 - 2**22  # the spec's current session limit
MAX_RELOCATION_FILES = 10_000
EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_COPY_CHUNK = 1024 * 1024
_TIME_FMT = "%Y-%m-%dT%H:%M:%S"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries(
    ns TEXT NOT NULL, path_lower TEXT NOT NULL, parent_lower TEXT NOT NULL,
    path_display TEXT NOT NULL, kind TEXT NOT NULL, id TEXT, rev TEXT, size INTEGER,
    content_hash TEXT, client_modified TEXT, server_modified TEXT, seq INTEGER NOT NULL,
    PRIMARY KEY (ns, path_lower));
CREATE INDEX IF NOT EXISTS entries_parent ON entries(ns, parent_lower, path_lower);
CREATE INDEX IF NOT EXISTS entries_seq ON entries(ns, seq, path_lower);
CREATE INDEX IF NOT EXISTS entries_id ON entries(id);
CREATE TABLE IF NOT EXISTS revisions(
    rev TEXT PRIMARY KEY, ns TEXT NOT NULL, id TEXT NOT NULL, path_lower TEXT NOT NULL,
    path_display TEXT NOT NULL, size INTEGER NOT NULL, content_hash TEXT NOT NULL,
    client_modified TEXT NOT NULL, server_modified TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS revisions_path ON revisions(ns, path_lower, seq);
CREATE INDEX IF NOT EXISTS revisions_id ON revisions(id, seq);
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, type TEXT NOT NULL, created REAL NOT NULL, closed INTEGER NOT NULL,
    received INTEGER NOT NULL, total INTEGER, finished INTEGER NOT NULL DEFAULT 0,
    blob_hash TEXT, blob_size INTEGER);
CREATE TABLE IF NOT EXISTS pieces(
    session_id TEXT NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL,
    content_hash TEXT NOT NULL, PRIMARY KEY (session_id, offset));
CREATE TABLE IF NOT EXISTS cursors(id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- Space used by live files, kept by triggers: summing every file per commit made one
-- 1000-entry finish_batch_v2 take ~25 s on a store of 15k files.
INSERT OR IGNORE INTO counters(name, value)
    SELECT 'used_bytes', COALESCE(SUM(size), 0) FROM entries WHERE kind = 'file';
CREATE TRIGGER IF NOT EXISTS used_bytes_insert AFTER INSERT ON entries WHEN NEW.kind = 'file'
BEGIN UPDATE counters SET value = value + NEW.size WHERE name = 'used_bytes'; END;
CREATE TRIGGER IF NOT EXISTS used_bytes_delete AFTER DELETE ON entries WHEN OLD.kind = 'file'
BEGIN UPDATE counters SET value = value - OLD.size WHERE name = 'used_bytes'; END;
CREATE TRIGGER IF NOT EXISTS used_bytes_update AFTER UPDATE OF kind, size ON entries
BEGIN UPDATE counters SET value = value
    - (CASE WHEN OLD.kind = 'file' THEN OLD.size ELSE 0 END)
    + (CASE WHEN NEW.kind = 'file' THEN NEW.size ELSE 0 END)
    WHERE name = 'used_bytes'; END;
"""


def now() -> datetime.datetime:
    """Server time: naive UTC, whole seconds (what the wire format carries)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def format_time(value: datetime.datetime) -> str:
    return value.strftime(_TIME_FMT)


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, _TIME_FMT)


@dataclasses.dataclass
class Entry:
    """A row of the tree (kind file|folder|deleted) or a file revision (kind file)."""

    ns: str
    path_lower: str
    path_display: str
    kind: str
    id: Optional[str] = None
    rev: Optional[str] = None
    size: Optional[int] = None
    content_hash: Optional[str] = None
    client_modified: Optional[str] = None
    server_modified: Optional[str] = None
    seq: int = 0

    @property
    def name(self) -> str:
        return paths.name(self.path_display)


_ENTRY_COLS = (
    "ns, path_lower, path_display, kind, id, rev, size, content_hash, client_modified, "
    "server_modified, seq"
)
_REV_COLS = (
    "ns, path_lower, path_display, 'file', id, rev, size, content_hash, client_modified, "
    "server_modified, seq"
)


class LookupFailure(Exception):
    """→ `files.LookupError.<tag>` (not_found, not_file, not_folder, malformed_path)."""

    def __init__(self, tag: str):
        super().__init__(tag)
        self.tag = tag


class WriteFailure(Exception):
    """→ `files.WriteError.<tag>`; `conflict` is file|folder|file_ancestor for tag "conflict"."""

    def __init__(self, tag: str, conflict: Optional[str] = None):
        super().__init__(f"{tag}/{conflict}" if conflict else tag)
        self.tag = tag
        self.conflict = conflict


class RelocationFailure(Exception):
    """A whole-call relocation error tag (cant_move_folder_into_itself, too_many_files, …)."""

    def __init__(self, tag: str):
        super().__init__(tag)
        self.tag = tag


class SessionFailure(Exception):
    """An upload-session lookup problem (tag of `UploadSessionLookupError`/`…AppendError`, or a
    finish-only tag such as concurrent_session_missing_data); `correct_offset` for
    incorrect_offset."""

    def __init__(self, tag: str, correct_offset: Optional[int] = None):
        super().__init__(tag)
        self.tag = tag
        self.correct_offset = correct_offset


class RevisionNotFound(Exception):
    pass


class UnknownCursor(Exception):
    pass


@dataclasses.dataclass
class Page:
    entries: list[Entry]
    cursor: str
    has_more: bool


@dataclasses.dataclass
class FileCommit:
    """A file version ready to be placed in the tree (its blob already stored)."""

    path_display: str
    content_hash: str
    size: int
    client_modified: Optional[datetime.datetime] = None
    mode: str = "add"  # add | overwrite | update
    update_rev: Optional[str] = None
    autorename: bool = False
    strict_conflict: bool = False


class Store:
    def __init__(self, data_dir: Path, config: EmulatorConfig):
        self.data_dir = Path(data_dir)
        self.config = config
        self.session_ttl_s: float = SESSION_TTL_S
        self.account_id = ACCOUNT_ID
        self.home_namespace_id = HOME_NAMESPACE_ID
        self.team_namespace_id = TEAM_NAMESPACE_ID
        self._lock = threading.RLock()
        self._session_locks: dict[str, threading.Lock] = {}
        self._make_dirs()
        self._db = sqlite3.connect(
            str(self.data_dir / "files.sqlite3"), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync at all (also not at WAL checkpoints): a test double needs no crash safety, and
        # checkpoint fsyncs showed up in the per-entry cost of finish_batch_v2.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)

    # ----------------------------------------------------------------- lifecycle

    def _make_dirs(self) -> None:
        for sub in ("blobs", "sessions", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)

    def reset(self) -> None:
        """Forget everything (POST /_emulator/reset)."""
        with self._tx() as db:
            for table in ("entries", "revisions", "sessions", "pieces", "cursors", "jobs"):
                db.execute(f"DELETE FROM {table}")
            for sub in ("blobs", "sessions", "tmp"):
                shutil.rmtree(self.data_dir / sub, ignore_errors=True)
            self._make_dirs()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _next(self, db: sqlite3.Connection, counter: str) -> int:
        db.execute(
            "INSERT INTO counters(name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (counter,),
        )
        return db.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()[0]

    def _new_rev(self, db: sqlite3.Connection) -> str:
        # ≥9 lowercase hex, unique: a counter plus a random tail (revs differ across resets).
        return f"{self._next(db, 'rev'):09x}{secrets.token_hex(4)}"

    @staticmethod
    def _new_id() -> str:
        return "id:" + secrets.token_urlsafe(16)  # 22 url-safe characters

    # ----------------------------------------------------------------- blobs

    def blob_path(self, content_hash: str) -> Path:
        return self.data_dir / "blobs" / content_hash[:2] / content_hash

    def _place_blob(self, source: Path, content_hash: str) -> None:
        """Move `source` into the blob store (dropping it if that content is already there)."""
        dest = self.blob_path(content_hash)
        if dest.exists():
            source.unlink(missing_ok=True)
            return
        try:
            _move(source, dest)
        except FileNotFoundError:  # the first blob of its prefix: no mkdir per blob
            dest.parent.mkdir(parents=True, exist_ok=True)
            _move(source, dest)

    def store_body(self, body: Any) -> str:
        """Keep an upload's spooled body as a blob; returns its content hash."""
        dest = self.blob_path(body.content_hash)
        if not dest.exists():
            self._place_blob(body.take(), body.content_hash)
        return body.content_hash

    def empty_blob(self) -> str:
        dest = self.blob_path(EMPTY_HASH)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch()
        return EMPTY_HASH

    # ----------------------------------------------------------------- reads

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Entry]:
        with self._lock:
            return [Entry(*row) for row in self._db.execute(sql, args).fetchall()]

    def get(self, ns: str, path_lower: str) -> Optional[Entry]:
        rows = self._rows(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE ns = ? AND path_lower = ?", (ns, path_lower)
        )
        return rows[0] if rows else None

    def get_live(self, ns: str, path_lower: str) -> Optional[Entry]:
        entry = self.get(ns, path_lower)
        return entry if entry is not None and entry.kind != "deleted" else None

    def get_by_id(self, file_id: str) -> Optional[Entry]:
        rows = self._rows(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE id = ? AND kind != 'deleted'", (file_id,)
        )
        return rows[0] if rows else None

    def get_revision(self, rev: str) -> Optional[Entry]:
        rows = self._rows(f"SELECT {_REV_COLS} FROM revisions WHERE rev = ?", (rev,))
        return rows[0] if rows else None

    def used_bytes(self) -> int:
        with self._lock:
            return self._used_bytes(self._db)

    @staticmethod
    def _used_bytes(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT value FROM counters WHERE name = 'used_bytes'").fetchone()[0])

    def revisions_by_path(self, ns: str, path_lower: str) -> list[Entry]:
        return self._rows(
            f"SELECT {_REV_COLS} FROM revisions WHERE ns = ? AND path_lower = ? "
            "ORDER BY seq DESC, rev DESC",
            (ns, path_lower),
        )

    def revisions_by_id(self, file_id: str) -> list[Entry]:
        return self._rows(
            f"SELECT {_REV_COLS} FROM revisions WHERE id = ? ORDER BY seq DESC, rev DESC",
            (file_id,),
        )

    # ----------------------------------------------------------------- tree writes

    def _put(self, db: sqlite3.Connection, entry: Entry) -> None:
        db.execute(
            f"INSERT OR REPLACE INTO entries(parent_lower, {_ENTRY_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                paths.parent(entry.path_lower),
                entry.ns,
                entry.path_lower,
                entry.path_display,
                entry.kind,
                entry.id,
                entry.rev,
                entry.size,
                entry.content_hash,
                entry.client_modified,
                entry.server_modified,
                entry.seq,
            ),
        )

    def _put_revision(self, db: sqlite3.Connection, entry: Entry) -> None:
        db.execute(
            "INSERT INTO revisions(rev, ns, id, path_lower, path_display, size, content_hash, "
            "client_modified, server_modified, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.rev,
                entry.ns,
                entry.id,
                entry.path_lower,
                entry.path_display,
                entry.size,
                entry.content_hash,
                entry.client_modified,
                entry.server_modified,
                entry.seq,
            ),
        )

    def _live(self, db: sqlite3.Connection, ns: str, path_lower: str) -> Optional[Entry]:
        row = db.execute(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE ns = ? AND path_lower = ? "
            "AND kind != 'deleted'",
            (ns, path_lower),
        ).fetchone()
        return Entry(*row) if row else None

    def _resolve_parents(self, db: sqlite3.Connection, ns: str, path_display: str) -> str:
        """Check the ancestors of a path to be written (a file ancestor is a conflict) and
        return the display path with existing ancestors' casing."""
        display = ""
        for ancestor in paths.ancestors(path_display):
            existing = self._live(db, ns, ancestor.lower())
            if existing is not None and existing.kind == "file":
                raise WriteFailure("conflict", "file_ancestor")
            display = (
                existing.path_display
                if existing is not None
                else paths.join(display, paths.name(ancestor))
            )
        return paths.join(display, paths.name(path_display))

    def _create_parents(self, db: sqlite3.Connection, ns: str, path_display: str, seq: int) -> None:
        stamp = format_time(now())
        for ancestor in paths.ancestors(path_display):
            if self._live(db, ns, ancestor.lower()) is None:
                self._put(
                    db,
                    Entry(
                        ns,
                        ancestor.lower(),
                        ancestor,
                        "folder",
                        self._new_id(),
                        server_modified=stamp,
                        seq=seq,
                    ),
                )

    def _free_name(self, db: sqlite3.Connection, ns: str, path_display: str, is_file: bool) -> str:
        for attempt in range(1, 10_000):
            candidate = paths.autorename(path_display, attempt, is_file)
            if self._live(db, ns, candidate.lower()) is None:
                return candidate
        raise WriteFailure("conflict", "file" if is_file else "folder")

    def _check_quota(self, db: sqlite3.Connection, added: int) -> None:
        if added > 0 and self._used_bytes(db) + added > self.config.quota_bytes:
            raise WriteFailure("insufficient_space")

    def commit_file(
        self, ns: str, commit: FileCommit, finish_session: Optional[str] = None
    ) -> Entry:
        """Place a file version at `commit.path_display` following Dropbox's write modes.

        Identical content is never a conflict and writes nothing (except `strict_conflict` in
        add/update mode); a folder at the target or a file ancestor always conflicts.
        `finish_session`: mark that upload session finished in the same transaction (one
        transaction per finished entry instead of two)."""
        with self._tx() as db:
            entry = self._commit_file(db, ns, commit)
            if finish_session is not None:
                self._mark_finished(db, finish_session)
            return entry

    def _commit_file(self, db: sqlite3.Connection, ns: str, commit: FileCommit) -> Entry:
        display = self._resolve_parents(db, ns, commit.path_display)
        existing = self._live(db, ns, display.lower())
        if existing is not None and existing.kind == "folder":
            if not commit.autorename:
                raise WriteFailure("conflict", "folder")
            display, existing = self._free_name(db, ns, display, True), None
        if existing is not None:
            identical = existing.content_hash == commit.content_hash
            if commit.mode == "overwrite" or (
                commit.mode == "update" and existing.rev == commit.update_rev
            ):
                if identical:
                    return existing
            elif identical and not commit.strict_conflict:
                return existing
            elif commit.autorename:
                display, existing = self._free_name(db, ns, display, True), None
            else:
                raise WriteFailure("conflict", "file")
        elif commit.mode == "update" and commit.strict_conflict:
            raise WriteFailure("conflict", "file")
        replaced = existing.size or 0 if existing is not None else 0
        self._check_quota(db, commit.size - replaced)
        seq = self._next(db, "seq")
        self._create_parents(db, ns, display, seq)
        stamp = now()
        entry = Entry(
            ns,
            display.lower(),
            display,
            "file",
            existing.id if existing is not None else self._new_id(),
            self._new_rev(db),
            commit.size,
            commit.content_hash,
            format_time(commit.client_modified or stamp),
            format_time(stamp),
            seq,
        )
        self._put(db, entry)
        self._put_revision(db, entry)
        return entry

    def create_folder(self, ns: str, path_display: str, autorename: bool) -> Entry:
        with self._tx() as db:
            display = self._resolve_parents(db, ns, path_display)
            existing = self._live(db, ns, display.lower())
            if existing is not None:
                if not autorename:
                    raise WriteFailure("conflict", existing.kind)
                display = self._free_name(db, ns, display, False)
            seq = self._next(db, "seq")
            self._create_parents(db, ns, display, seq)
            entry = Entry(
                ns,
                display.lower(),
                display,
                "folder",
                self._new_id(),
                server_modified=format_time(now()),
                seq=seq,
            )
            self._put(db, entry)
            return entry

    def _subtree(self, db: sqlite3.Connection, ns: str, path_lower: str) -> list[Entry]:
        """Live entries at and below `path_lower`, parents first."""
        rows = db.execute(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE ns = ? AND kind != 'deleted' AND "
            "(path_lower = ? OR (path_lower > ? AND path_lower < ?)) ORDER BY path_lower",
            (ns, path_lower, path_lower + "/", path_lower + "0"),
        ).fetchall()
        return [Entry(*row) for row in rows]

    def _mark_deleted(self, db: sqlite3.Connection, entries: list[Entry], seq: int) -> None:
        stamp = format_time(now())
        for item in entries:
            db.execute(
                "UPDATE entries SET kind = 'deleted', server_modified = ?, seq = ? "
                "WHERE ns = ? AND path_lower = ?",
                (stamp, seq, item.ns, item.path_lower),
            )

    def delete(self, ns: str, path_lower: str, parent_rev: Optional[str] = None) -> Entry:
        """Delete a file or a folder recursively; returns the metadata it had."""
        with self._tx() as db:
            target = self._live(db, ns, path_lower)
            if target is None:
                raise LookupFailure("not_found")
            if parent_rev is not None and (target.kind != "file" or target.rev != parent_rev):
                raise WriteFailure("conflict", target.kind)
            subtree = self._subtree(db, ns, path_lower)
            if len(subtree) > MAX_RELOCATION_FILES:
                raise RelocationFailure("too_many_files")
            self._mark_deleted(db, subtree, self._next(db, "seq"))
            return target

    def relocate(
        self,
        from_ns: str,
        from_lower: str,
        to_ns: str,
        to_display: str,
        autorename: bool,
        move: bool,
    ) -> Entry:
        """copy_v2 / move_v2: copies get new ids, moves keep them; files get a new revision at
        their new path; a move leaves deletion markers behind."""
        with self._tx() as db:
            source = self._live(db, from_ns, from_lower)
            if source is None:
                raise LookupFailure("not_found")
            to_lower = to_display.lower()
            if from_ns == to_ns and paths.is_within(to_lower, from_lower):
                if to_lower == from_lower:
                    raise WriteFailure("conflict", source.kind)
                if source.kind == "folder":
                    raise RelocationFailure(
                        "cant_move_folder_into_itself" if move else "duplicated_or_nested_paths"
                    )
            display = self._resolve_parents(db, to_ns, to_display)
            existing = self._live(db, to_ns, display.lower())
            if existing is not None:
                if not autorename:
                    raise WriteFailure("conflict", existing.kind)
                display = self._free_name(db, to_ns, display, source.kind == "file")
            subtree = self._subtree(db, from_ns, from_lower)
            if len(subtree) > MAX_RELOCATION_FILES:
                raise RelocationFailure("too_many_files")
            if not move or from_ns != to_ns:
                added = sum(item.size or 0 for item in subtree if item.kind == "file")
                try:
                    self._check_quota(db, 0 if move else added)
                except WriteFailure:
                    raise RelocationFailure("insufficient_quota") from None
            seq = self._next(db, "seq")
            self._create_parents(db, to_ns, display, seq)
            stamp = format_time(now())
            result: Optional[Entry] = None
            for item in subtree:
                new_display = display + item.path_display[len(source.path_display) :]
                moved = dataclasses.replace(
                    item,
                    ns=to_ns,
                    path_lower=new_display.lower(),
                    path_display=new_display,
                    id=item.id if move else self._new_id(),
                    seq=seq,
                )
                if item.kind == "file":
                    moved.rev = self._new_rev(db)
                    moved.server_modified = stamp
                if move:
                    self._mark_deleted(db, [item], seq)
                self._put(db, moved)
                if item.kind == "file":
                    self._put_revision(db, moved)
                if result is None:
                    result = moved
            assert result is not None
            return result

    def restore(self, ns: str, path_display: str, rev: str) -> Entry:
        """Make revision `rev`'s content the current version at `path_display`."""
        revision = self.get_revision(rev)
        if revision is None or revision.ns != ns:
            raise RevisionNotFound(rev)
        with self._tx() as db:
            display = self._resolve_parents(db, ns, path_display)
            existing = self._live(db, ns, display.lower())
            if existing is not None and existing.kind == "folder":
                raise WriteFailure("conflict", "folder")
            seq = self._next(db, "seq")
            self._create_parents(db, ns, display, seq)
            entry = Entry(
                ns,
                display.lower(),
                display,
                "file",
                existing.id if existing is not None else revision.id,
                self._new_rev(db),
                revision.size,
                revision.content_hash,
                revision.client_modified,
                format_time(now()),
                seq,
            )
            self._put(db, entry)
            self._put_revision(db, entry)
            return entry

    # ----------------------------------------------------------------- listing

    def _save_cursor(self, db: sqlite3.Connection, state: dict[str, Any]) -> str:
        cursor = "AAE" + secrets.token_urlsafe(40)
        db.execute("INSERT INTO cursors(id, state) VALUES (?, ?)", (cursor, json.dumps(state)))
        return cursor

    def list_folder(
        self, ns: str, path_lower: str, recursive: bool, include_deleted: bool, limit: int
    ) -> Page:
        """First page of a listing. The cursor first pages through a snapshot-ordered walk
        (by path_lower, so parents come before children), then becomes a change feed from
        the sequence number current when the listing began."""
        with self._tx() as db:
            state = self._listing_state(db, ns, path_lower, recursive, include_deleted, limit)
            return self._page(db, {**state, "phase": "walk"})

    def latest_cursor(
        self, ns: str, path_lower: str, recursive: bool, include_deleted: bool, limit: int
    ) -> str:
        with self._tx() as db:
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
        seq = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
        return {
            "ns": ns,
            "path": path_lower,
            "recursive": recursive,
            "include_deleted": include_deleted,
            "limit": limit,
            "pos": None,
            "seq": seq[0] if seq else 0,
        }

    def list_folder_continue(self, cursor: str) -> Page:
        if not paths.is_text(cursor):
            raise UnknownCursor(cursor)
        with self._tx() as db:
            row = db.execute("SELECT state FROM cursors WHERE id = ?", (cursor,)).fetchone()
            if row is None:
                raise UnknownCursor(cursor)
            return self._page(db, json.loads(row[0]))

    def cursor_state(self, cursor: str) -> Optional[dict[str, Any]]:
        with self._lock:
            row = self._db.execute("SELECT state FROM cursors WHERE id = ?", (cursor,)).fetchone()
        return json.loads(row[0]) if row else None

    def has_changes(self, cursor: str) -> bool:
        """Would `list_folder/continue(cursor)` return something? (list_folder/longpoll)"""
        if not paths.is_text(cursor):
            raise UnknownCursor(cursor)
        with self._lock:
            row = self._db.execute("SELECT state FROM cursors WHERE id = ?", (cursor,)).fetchone()
            if row is None:
                raise UnknownCursor(cursor)
            state = json.loads(row[0])
            if state["phase"] == "walk":
                return True
            scope, scope_args = _scope(state)
            after, after_args = _after(state)
            found = self._db.execute(
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
                f"SELECT {_ENTRY_COLS} FROM entries WHERE ns = ? AND {scope}{deleted}{after} "
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
            f"SELECT {_ENTRY_COLS} FROM entries WHERE ns = ? AND {scope} AND {after} "
            "ORDER BY seq, path_lower LIMIT ?",
            (ns, *scope_args, *after_args, limit + 1),
        ).fetchall()
        entries = [Entry(*r) for r in rows[:limit]]
        if entries:
            state = {**state, "seq": entries[-1].seq, "pos": entries[-1].path_lower}
        return Page(entries, self._save_cursor(db, state), len(rows) > limit)

    # ----------------------------------------------------------------- upload sessions

    def session_lock(self, session_id: str) -> threading.Lock:
        with self._lock:
            return self._session_locks.setdefault(session_id, threading.Lock())

    def _piece_path(self, session_id: str, offset: int) -> Path:
        safe = session_id.replace(":", "_")
        return self.data_dir / "sessions" / f"{safe}.{offset:016d}"

    def _add_piece(self, db: sqlite3.Connection, session_id: str, offset: int, body: Any) -> None:
        if body is None or body.size == 0:
            return
        _move(body.take(), self._piece_path(session_id, offset))
        db.execute(
            "INSERT OR REPLACE INTO pieces(session_id, offset, size, content_hash) "
            "VALUES (?, ?, ?, ?)",
            (session_id, offset, body.size, body.content_hash),
        )

    def session_start(self, session_type: str, close: bool, body: Any) -> str:
        session_id = "pid_upload_session:" + secrets.token_urlsafe(30)
        size = body.size if body is not None else 0
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions(id, type, created, closed, received) VALUES (?, ?, ?, ?, ?)",
                (session_id, session_type, time.time(), int(close), size),
            )
            self._add_piece(db, session_id, 0, body)
        return session_id

    def session_from_blob(self, content_hash: Optional[str], size: int, body: Any) -> str:
        """A closed session already holding a file's data (what a failed upload leaves)."""
        if content_hash is None:
            content_hash = self.store_body(body) if body is not None else self.empty_blob()
        session_id = "pid_upload_session:" + secrets.token_urlsafe(30)
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions(id, type, created, closed, received, blob_hash, blob_size) "
                "VALUES (?, 'sequential', ?, 1, ?, ?, ?)",
                (session_id, time.time(), size, content_hash, size),
            )
        return session_id

    def _session(self, db: sqlite3.Connection, session_id: str) -> dict[str, Any]:
        if not paths.is_text(session_id):
            raise SessionFailure("not_found")
        row = db.execute(
            "SELECT type, created, closed, received, total, finished, blob_hash, blob_size "
            "FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None or time.time() - row[1] > self.session_ttl_s:
            raise SessionFailure("not_found")
        keys = ("type", "created", "closed", "received", "total", "finished", "blob_hash", "size")
        return dict(zip(keys, row))

    def session_append(self, session_id: str, offset: int, close: bool, body: Any) -> None:
        size = body.size if body is not None else 0
        with self._tx() as db:
            session = self._session(db, session_id)
            if session["closed"] or session["finished"]:
                raise SessionFailure("closed")
            if session["type"] == "concurrent":
                if offset % BLOCK_SIZE:
                    raise SessionFailure("concurrent_session_invalid_offset")
                if not close and size % BLOCK_SIZE:
                    raise SessionFailure("concurrent_session_invalid_data_size")
                if offset + size > MAX_FILE_SIZE:
                    raise SessionFailure("too_large")
                self._add_piece(db, session_id, offset, body)
                if close:
                    db.execute(
                        "UPDATE sessions SET closed = 1, total = ? WHERE id = ?",
                        (offset + size, session_id),
                    )
                return
            if offset != session["received"]:
                raise SessionFailure("incorrect_offset", session["received"])
            if offset + size > MAX_FILE_SIZE:
                raise SessionFailure("too_large")
            self._add_piece(db, session_id, offset, body)
            db.execute(
                "UPDATE sessions SET received = received + ?, closed = ? WHERE id = ?",
                (size, int(close), session_id),
            )

    def session_finish_data(
        self, session_id: str, offset: int, body: Any, require_closed: bool
    ) -> tuple[str, int]:
        """Check a session for finishing (appending the finish call's own bytes) and assemble
        its pieces into a blob; returns (content_hash, size). Hold `session_lock`."""
        size = body.size if body is not None else 0
        with self._tx() as db:
            session = self._session(db, session_id)
            if session["finished"]:
                raise SessionFailure("closed")
            if session["type"] == "concurrent":
                if size:
                    raise SessionFailure("concurrent_session_data_not_allowed")
                if not session["closed"]:
                    raise SessionFailure("concurrent_session_not_closed")
                if offset != session["total"]:
                    raise SessionFailure("incorrect_offset", session["total"])
                total = session["total"]
                expected = 0
                for piece_offset, piece_size in db.execute(
                    "SELECT offset, size FROM pieces WHERE session_id = ? ORDER BY offset",
                    (session_id,),
                ):
                    if piece_offset != expected:
                        break
                    expected += piece_size
                if session["blob_hash"] is None and expected != total:
                    raise SessionFailure("concurrent_session_missing_data")
            else:
                if offset != session["received"]:
                    raise SessionFailure("incorrect_offset", session["received"])
                if size and session["closed"]:
                    raise SessionFailure("closed")
                if require_closed and not session["closed"]:
                    raise SessionFailure("not_closed")
                if offset + size > MAX_FILE_SIZE:
                    raise SessionFailure("too_large")
                if size:
                    if session["blob_hash"] is not None:
                        self._unassemble(db, session_id, session["blob_hash"])
                    self._add_piece(db, session_id, offset, body)
                    db.execute(
                        "UPDATE sessions SET received = received + ?, blob_hash = NULL "
                        "WHERE id = ?",
                        (size, session_id),
                    )
                    session["blob_hash"] = None
            if session["blob_hash"] is not None:
                return session["blob_hash"], session["size"]
            pieces = db.execute(
                "SELECT offset, size, content_hash FROM pieces WHERE session_id = ? "
                "ORDER BY offset",
                (session_id,),
            ).fetchall()
            if len(pieces) == 1 and pieces[0][0] == 0:
                # One piece (every small file): a rename, cheap enough to do in this transaction
                # instead of a second one (finish_batch_v2 pays this per entry).
                _offset, total_size, content_hash = pieces[0]
                self._place_blob(self._piece_path(session_id, 0), content_hash)
                self._set_blob(db, session_id, content_hash, total_size)
                return content_hash, total_size
        content_hash, total_size = self._assemble(session_id, pieces)
        with self._tx() as db:
            self._set_blob(db, session_id, content_hash, total_size)
        for offset, _size, _hash in pieces:  # a single piece was moved into the blob store
            self._piece_path(session_id, offset).unlink(missing_ok=True)
        return content_hash, total_size

    def _set_blob(self, db: sqlite3.Connection, session_id: str, blob_hash: str, size: int) -> None:
        db.execute(
            "UPDATE sessions SET blob_hash = ?, blob_size = ? WHERE id = ?",
            (blob_hash, size, session_id),
        )
        db.execute("DELETE FROM pieces WHERE session_id = ?", (session_id,))

    def _unassemble(self, db: sqlite3.Connection, session_id: str, content_hash: str) -> None:
        """A sequential session whose data was assembled by a failed finish gets more bytes:
        turn the assembled blob back into its first piece (copy; blobs are shared)."""
        dest = self._piece_path(session_id, 0)
        shutil.copyfile(self.blob_path(content_hash), dest)
        size = dest.stat().st_size
        if size:
            db.execute(
                "INSERT OR REPLACE INTO pieces(session_id, offset, size, content_hash) "
                "VALUES (?, 0, ?, ?)",
                (session_id, size, content_hash),
            )

    def _assemble(self, session_id: str, pieces: list[tuple[int, int, str]]) -> tuple[str, int]:
        """Concatenate pieces into a blob, hashing as we go (bounded memory)."""
        if len(pieces) == 1 and pieces[0][0] == 0:
            offset, size, content_hash = pieces[0]
            self._place_blob(self._piece_path(session_id, offset), content_hash)
            return content_hash, size
        hasher = ContentHasher()
        tmp = self.data_dir / "tmp" / secrets.token_hex(12)
        total = 0
        with open(tmp, "wb") as out:
            for offset, _size, _hash in pieces:
                with open(self._piece_path(session_id, offset), "rb") as src:
                    while True:
                        chunk = src.read(_COPY_CHUNK)
                        if not chunk:
                            break
                        hasher.update(chunk)
                        out.write(chunk)
                        total += len(chunk)
        content_hash = hasher.hexdigest()
        self._place_blob(tmp, content_hash)
        return content_hash, total

    def session_finished(self, session_id: str) -> None:
        with self._tx() as db:
            self._mark_finished(db, session_id)

    def _mark_finished(self, db: sqlite3.Connection, session_id: str) -> None:
        db.execute("UPDATE sessions SET finished = 1, closed = 1 WHERE id = ?", (session_id,))

    # ----------------------------------------------------------------- async jobs

    def add_job(self, kind: str, result: str) -> str:
        job_id = "dbjid:" + secrets.token_urlsafe(40)
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs(id, kind, result, created) VALUES (?, ?, ?, ?)",
                (job_id, kind, result, time.time()),
            )
        return job_id

    def get_job(self, job_id: str, kind: str) -> Optional[str]:
        if not paths.is_text(job_id):
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT result FROM jobs WHERE id = ? AND kind = ?", (job_id, kind)
            ).fetchone()
        return row[0] if row else None


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


def _move(source: Path, dest: Path) -> None:
    """Rename (no copy) when source and destination share a filesystem."""
    try:
        os.replace(source, dest)
    except OSError:
        shutil.move(str(source), str(dest))
