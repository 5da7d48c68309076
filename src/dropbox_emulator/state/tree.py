"""The tree: every namespace's files and folders (with deletion markers) and file revisions.

Rows live in the `entries` and `revisions` tables; file contents are blobs named by
`content_hash`. Writes assume the caller holds the namespace commit (`Services.commit`), which is
what serialises them the way Dropbox does. Every change takes the next `seq`, the order listing
cursors follow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import secrets
import sqlite3
import time
from typing import Any, Optional

from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.state import paths
from dropbox_emulator.state.database import Database

MAX_RELOCATION_FILES = 10_000
_TIME_FMT = "%Y-%m-%dT%H:%M:%S"

SCHEMA = """
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


_clock: tuple[int, datetime.datetime] = (0, datetime.datetime(1970, 1, 1))


def now() -> datetime.datetime:
    """Server time: naive UTC, whole seconds (what the wire format carries). Built once per
    second: a finish_batch_v2 entry asks up to three times."""
    global _clock
    second = int(time.time())
    cached_second, value = _clock
    if cached_second != second:
        value = datetime.datetime.fromtimestamp(second, datetime.timezone.utc).replace(tzinfo=None)
        _clock = (second, value)
    return value


def format_time(value: datetime.datetime) -> str:
    # isoformat is the same text for naive 4-digit years and ~10x cheaper than strftime, which
    # showed in the per-entry cost of finish_batch_v2 (three times per file).
    if value.tzinfo is None and value.year >= 1000:
        return value.isoformat(timespec="seconds")
    return value.strftime(_TIME_FMT)


def parse_time(value: str) -> datetime.datetime:
    # What format_time wrote: fromisoformat reads it ~20x faster than strptime. Other shapes
    # (years below 1000, which strftime does not pad) take the strict path.
    if len(value) == 19 and value[4] == "-" and value[10] == "T":
        with contextlib.suppress(ValueError):
            return datetime.datetime.fromisoformat(value)
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


ENTRY_COLUMNS = (
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


class RevisionNotFound(Exception):
    pass


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


class Tree:
    def __init__(self, db: Database, config: EmulatorConfig):
        self._database = db
        self._config = config  # quota_bytes changes live
        db.create(SCHEMA)

    def _new_rev(self, db: sqlite3.Connection) -> str:
        # ≥9 lowercase hex, unique: a counter plus a random tail (revs differ across resets).
        return f"{Database.next(db, 'rev'):09x}{secrets.token_hex(4)}"

    @staticmethod
    def _new_id() -> str:
        return "id:" + secrets.token_urlsafe(16)  # 22 url-safe characters

    @staticmethod
    def clear(db: sqlite3.Connection) -> None:
        for table in ("entries", "revisions"):
            db.execute(f"DELETE FROM {table}")

    def ensure_folders(
        self, db: sqlite3.Connection, ns: str, folders: list[tuple[str, str]]
    ) -> None:
        """Create top-level folders (display path, id) that must always exist, such as the
        team root's mount points; seq 0 keeps them out of every change feed."""
        stamp = format_time(now())
        for path_display, folder_id in folders:
            if self._live(db, ns, path_display.lower()) is None:
                self._put(
                    db,
                    Entry(
                        ns,
                        path_display.lower(),
                        path_display,
                        "folder",
                        folder_id,
                        server_modified=stamp,
                    ),
                )

    # ----------------------------------------------------------------- reads

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Entry]:
        with self._database.lock:
            return [Entry(*row) for row in self._database.connection.execute(sql, args).fetchall()]

    def get(self, ns: str, path_lower: str) -> Optional[Entry]:
        rows = self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE ns = ? AND path_lower = ?", (ns, path_lower)
        )
        return rows[0] if rows else None

    def get_by_id(self, file_id: str) -> Optional[Entry]:
        rows = self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ? AND kind != 'deleted'", (file_id,)
        )
        return rows[0] if rows else None

    def get_revision(self, rev: str) -> Optional[Entry]:
        rows = self._rows(f"SELECT {_REV_COLS} FROM revisions WHERE rev = ?", (rev,))
        return rows[0] if rows else None

    def used_bytes(self) -> int:
        with self._database.lock:
            return self._used_bytes(self._database.connection)

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

    # ----------------------------------------------------------------- writes

    def _put(self, db: sqlite3.Connection, entry: Entry) -> None:
        db.execute(
            f"INSERT OR REPLACE INTO entries(parent_lower, {ENTRY_COLUMNS}) "
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
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE ns = ? AND path_lower = ? "
            "AND kind != 'deleted'",
            (ns, path_lower),
        ).fetchone()
        return Entry(*row) if row else None

    def _live_many(self, db: sqlite3.Connection, ns: str, lowers: list[str]) -> dict[str, Entry]:
        """The live entries at `lowers`, by path_lower: one query for a path's ancestors and
        itself instead of one per level (a finish_batch_v2 entry paid ~5)."""
        marks = ", ".join("?" * len(lowers))
        rows = db.execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE ns = ? AND path_lower IN ({marks}) "
            "AND kind != 'deleted'",
            (ns, *lowers),
        ).fetchall()
        return {row[1]: Entry(*row) for row in rows}

    def _resolve_parents(
        self, db: sqlite3.Connection, ns: str, path_display: str
    ) -> tuple[str, dict[str, Entry]]:
        """Check the ancestors of a path to be written (a file ancestor is a conflict) and
        return the display path with existing ancestors' casing, and the live entries at its
        ancestors and at the path itself (by path_lower; the lower path never changes)."""
        above = paths.ancestors(path_display)
        live = self._live_many(db, ns, [a.lower() for a in above] + [path_display.lower()])
        display = ""
        for ancestor in above:
            existing = live.get(ancestor.lower())
            if existing is not None and existing.kind == "file":
                raise WriteFailure("conflict", "file_ancestor")
            display = (
                existing.path_display
                if existing is not None
                else paths.join(display, paths.name(ancestor))
            )
        return paths.join(display, paths.name(path_display)), live

    def _create_parents(
        self, db: sqlite3.Connection, ns: str, path_display: str, seq: int, live: dict[str, Entry]
    ) -> None:
        """Create the missing ancestors; `live` is what `_resolve_parents` found (same tx)."""
        missing = [a for a in paths.ancestors(path_display) if a.lower() not in live]
        if not missing:
            return
        stamp = format_time(now())
        for ancestor in missing:
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

    def _free_name(
        self,
        db: sqlite3.Connection,
        ns: str,
        path_display: str,
        is_file: bool,
        conflicted: bool = False,
    ) -> str:
        for attempt in range(1, 10_000):
            candidate = paths.autorename(path_display, attempt, is_file, conflicted)
            if self._live(db, ns, candidate.lower()) is None:
                return candidate
        raise WriteFailure("conflict", "file" if is_file else "folder")

    def _check_quota(self, db: sqlite3.Connection, added: int) -> None:
        if added > 0 and self._used_bytes(db) + added > self._config.quota_bytes:
            raise WriteFailure("insufficient_space")

    def commit_file(self, ns: str, commit: FileCommit) -> Entry:
        """Place a file version at `commit.path_display` following Dropbox's write modes.

        Identical content is never a conflict and writes nothing (except `strict_conflict` in
        add/update mode); a folder at the target or a file ancestor always conflicts."""
        with self._database.tx() as db:
            return self.place_file(db, ns, commit)

    def place_file(self, db: sqlite3.Connection, ns: str, commit: FileCommit) -> Entry:
        """`commit_file` inside the caller's transaction."""
        display, live = self._resolve_parents(db, ns, commit.path_display)
        existing = live.get(display.lower())
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
                conflicted = commit.mode == "update"  # its rev moved on: a conflicted copy
                display, existing = self._free_name(db, ns, display, True, conflicted), None
            else:
                raise WriteFailure("conflict", "file")
        elif commit.mode == "update" and commit.strict_conflict:
            raise WriteFailure("conflict", "file")
        replaced = existing.size or 0 if existing is not None else 0
        self._check_quota(db, commit.size - replaced)
        seq = Database.next(db, "seq")
        self._create_parents(db, ns, display, seq, live)
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
        with self._database.tx() as db:
            display, live = self._resolve_parents(db, ns, path_display)
            existing = live.get(display.lower())
            if existing is not None:
                if not autorename:
                    raise WriteFailure("conflict", existing.kind)
                display = self._free_name(db, ns, display, False)
            seq = Database.next(db, "seq")
            self._create_parents(db, ns, display, seq, live)
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

    def subtree(self, ns: str, path_lower: str) -> list[Entry]:
        """Live entries at and below `path_lower`, parents first (a folder for download_zip)."""
        with self._database.lock:
            return self._subtree(self._database.connection, ns, path_lower)

    def _subtree(self, db: sqlite3.Connection, ns: str, path_lower: str) -> list[Entry]:
        """Live entries at and below `path_lower`, parents first."""
        rows = db.execute(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE ns = ? AND kind != 'deleted' AND "
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
        with self._database.tx() as db:
            target = self._live(db, ns, path_lower)
            if target is None:
                raise LookupFailure("not_found")
            if parent_rev is not None and (target.kind != "file" or target.rev != parent_rev):
                raise WriteFailure("conflict", target.kind)
            subtree = self._subtree(db, ns, path_lower)
            if len(subtree) > MAX_RELOCATION_FILES:
                raise RelocationFailure("too_many_files")
            self._mark_deleted(db, subtree, Database.next(db, "seq"))
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
        with self._database.tx() as db:
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
            display, live = self._resolve_parents(db, to_ns, to_display)
            existing = live.get(display.lower())
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
            seq = Database.next(db, "seq")
            self._create_parents(db, to_ns, display, seq, live)
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
        with self._database.tx() as db:
            display, live = self._resolve_parents(db, ns, path_display)
            existing = live.get(display.lower())
            if existing is not None and existing.kind == "folder":
                raise WriteFailure("conflict", "folder")
            seq = Database.next(db, "seq")
            self._create_parents(db, ns, display, seq, live)
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
