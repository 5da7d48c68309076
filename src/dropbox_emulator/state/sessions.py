"""Upload sessions: sequential and concurrent sessions, their pieces, and assembling them.

Pieces are request bodies renamed into `sessions/<sid>.<offset>` (flat files: a directory per
session cost ~2 ms of mkdir + rmdir on ext4, a third of the per-entry time of finish_batch_v2);
multi-piece sessions are assembled in `tmp/` into a blob, outside the database lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Optional

from dropbox_emulator.state import paths
from dropbox_emulator.state.blobs import (
    BLOCK_SIZE,
    INLINE_MAX,
    Blobs,
    Body,
    ContentHasher,
    content_hash,
    move,
)
from dropbox_emulator.state.database import Database

SESSION_TTL_S = 7 * 24 * 3600
MAX_FILE_SIZE = 2**41 - 2**22  # the spec's current session limit
_COPY_CHUNK = 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, type TEXT NOT NULL, created REAL NOT NULL, closed INTEGER NOT NULL,
    received INTEGER NOT NULL, total INTEGER, finished INTEGER NOT NULL DEFAULT 0,
    blob_hash TEXT, blob_size INTEGER);
CREATE TABLE IF NOT EXISTS pieces(
    session_id TEXT NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL,
    content_hash TEXT NOT NULL, inline INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, offset));
"""


class SessionFailure(Exception):
    """An upload-session lookup problem (tag of `UploadSessionLookupError`/`…AppendError`, or a
    finish-only tag such as concurrent_session_missing_data); `correct_offset` for
    incorrect_offset."""

    def __init__(self, tag: str, correct_offset: Optional[int] = None):
        super().__init__(tag)
        self.tag = tag
        self.correct_offset = correct_offset


@dataclasses.dataclass(frozen=True)
class BatchAppend:
    """One entry of `upload_session/append_batch`: its session's cursor, how many bytes of the
    call's body are its own (the next `length` bytes, in the entries' order), and `close`."""

    session_id: str
    offset: int
    length: int
    close: bool


class NeedsAssembly(Exception):
    """`finish_data(assemble=False)` met a session whose pieces must be concatenated: call it
    again outside any transaction (assembling holds no database lock)."""


@dataclasses.dataclass
class _Session:
    """A row of `sessions`; `blob_hash`/`size` once its pieces are assembled into a blob."""

    type: str  # sequential | concurrent
    created: float
    closed: int
    received: int
    total: Optional[int]
    finished: int
    blob_hash: Optional[str]
    size: Optional[int]


class Sessions:
    def __init__(self, db: Database, blobs: Blobs, data_dir: Path):
        self._database = db
        self._blobs = blobs
        self._pieces = data_dir / "sessions"
        self._pieces_prefix = f"{self._pieces}{os.sep}"
        self._tmp = data_dir / "tmp"
        self.ttl_s: float = SESSION_TTL_S
        self._locks: dict[str, threading.Lock] = {}
        self._make_dirs()
        db.create(SCHEMA)
        with db.lock:  # data dirs from before small pieces were kept inline
            columns = {row[1] for row in db.connection.execute("PRAGMA table_info(pieces)")}
            if "inline" not in columns:
                db.connection.execute(
                    "ALTER TABLE pieces ADD COLUMN inline INTEGER NOT NULL DEFAULT 0"
                )

    def _make_dirs(self) -> None:
        for folder in (self._pieces, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)

    def clear(self, db: sqlite3.Connection) -> None:
        for table in ("sessions", "pieces"):
            db.execute(f"DELETE FROM {table}")
        for folder in (self._pieces, self._tmp):
            shutil.rmtree(folder, ignore_errors=True)
        self._make_dirs()

    def lock(self, session_id: str) -> threading.Lock:
        with self._database.lock:
            return self._locks.setdefault(session_id, threading.Lock())

    def _piece_path(self, session_id: str, offset: int) -> str:
        # A plain string: pathlib's joins and fspath were a tenth of a finish_batch_v2 entry.
        safe = session_id.replace(":", "_")
        return f"{self._pieces_prefix}{safe}.{offset:016d}"

    def _add_piece(
        self, db: sqlite3.Connection, session_id: str, offset: int, body: Optional[Body]
    ) -> None:
        if body is None or body.size == 0:
            return
        if body.data is None:  # spooled: the file becomes the piece
            move(body.take(), self._piece_path(session_id, offset))
        else:
            # Small bytes go straight to the blob store under their own content hash: a
            # one-piece session (every small file) then finishes without moving any data.
            self._blobs.put_inline(db, body.content_hash, body.data)
        db.execute(
            "INSERT OR REPLACE INTO pieces(session_id, offset, size, content_hash, inline) "
            "VALUES (?, ?, ?, ?, ?)",
            (session_id, offset, body.size, body.content_hash, int(body.data is not None)),
        )

    def start(self, session_type: str, close: bool, body: Optional[Body]) -> str:
        session_id = "pid_upload_session:" + secrets.token_urlsafe(30)
        size = body.size if body is not None else 0
        with self._database.tx() as db:
            db.execute(
                "INSERT INTO sessions(id, type, created, closed, received) VALUES (?, ?, ?, ?, ?)",
                (session_id, session_type, time.time(), int(close), size),
            )
            self._add_piece(db, session_id, 0, body)
        return session_id

    def from_blob(self, content_hash: Optional[str], size: int, body: Optional[Body]) -> str:
        """A closed session already holding a file's data (what a failed upload leaves)."""
        if content_hash is None:
            content_hash = self._blobs.keep(body) if body is not None else self._blobs.empty()
        session_id = "pid_upload_session:" + secrets.token_urlsafe(30)
        with self._database.tx() as db:
            db.execute(
                "INSERT INTO sessions(id, type, created, closed, received, blob_hash, blob_size) "
                "VALUES (?, 'sequential', ?, 1, ?, ?, ?)",
                (session_id, time.time(), size, content_hash, size),
            )
        return session_id

    def _session(self, db: sqlite3.Connection, session_id: str) -> _Session:
        if not paths.is_text(session_id):
            raise SessionFailure("not_found")
        row = db.execute(
            "SELECT type, created, closed, received, total, finished, blob_hash, blob_size "
            "FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None or time.time() - row[1] > self.ttl_s:
            raise SessionFailure("not_found")
        return _Session(*row)

    def append(self, session_id: str, offset: int, close: bool, body: Optional[Body]) -> None:
        size = body.size if body is not None else 0
        with self._database.tx() as db:
            session = self._session(db, session_id)
            if session.closed or session.finished:
                raise SessionFailure("closed")
            if session.type == "concurrent":
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
            if offset != session.received:
                raise SessionFailure("incorrect_offset", session.received)
            if offset + size > MAX_FILE_SIZE:
                raise SessionFailure("too_large")
            self._add_piece(db, session_id, offset, body)
            db.execute(
                "UPDATE sessions SET received = received + ?, closed = ? WHERE id = ?",
                (size, int(close), session_id),
            )

    def append_batch(
        self,
        entries: list[BatchAppend],
        body: Optional[Body],
        skip: frozenset[int] = frozenset(),
    ) -> list[Optional[SessionFailure]]:
        """Append each entry's slice of `body` to its session, in order, as `append` does
        (same offset, close, size and concurrent-session rules); one entry's failure leaves
        the others applied. Entries whose index is in `skip` are left out (their bytes
        consumed, their session unchanged). The caller has checked that the lengths add up to
        the body."""
        outcomes: list[Optional[SessionFailure]] = []
        for index, (entry, piece) in enumerate(zip(entries, self._slices(entries, body))):
            try:
                if index in skip:
                    outcomes.append(None)
                    continue
                self.append(entry.session_id, entry.offset, entry.close, piece)
                outcomes.append(None)
            except SessionFailure as failure:
                outcomes.append(failure)
            finally:
                if piece is not None and piece.path is not None and not piece.taken:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(piece.path)
        return outcomes

    def _slices(self, entries: list[BatchAppend], body: Optional[Body]) -> Iterator[Optional[Body]]:
        """Each entry's bytes as a Body of its own, one at a time (memory: at most INLINE_MAX
        for a small slice, _COPY_CHUNK for a large one, which is copied to a file while it is
        hashed: a piece's file must hold exactly its bytes)."""
        if body is None:
            yield from (None for _ in entries)
            return
        if body.data is not None:
            view = memoryview(body.data)
            start = 0
            for entry in entries:
                yield _in_memory(bytes(view[start : start + entry.length]))
                start += entry.length
            return
        assert body.path is not None
        with open(body.path, "rb") as source:
            for entry in entries:
                if entry.length <= INLINE_MAX:
                    yield _in_memory(source.read(entry.length))
                    continue
                yield self._copy_piece(source, entry.length)

    def _copy_piece(self, source: BinaryIO, length: int) -> Body:
        hasher = ContentHasher()
        tmp = self._tmp / secrets.token_hex(12)
        left = length
        with open(tmp, "wb") as out:
            while left:
                chunk = source.read(min(_COPY_CHUNK, left))
                if not chunk:
                    break
                hasher.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        return Body(path=tmp, size=length - left, content_hash=hasher.hexdigest())

    def finish_data(
        self,
        session_id: str,
        offset: int,
        body: Optional[Body],
        require_closed: bool,
        assemble: bool = True,
    ) -> tuple[str, int]:
        """Check a session for finishing (appending the finish call's own bytes) and assemble
        its pieces into a blob; returns (content_hash, size). Hold `lock(session_id)`. With
        `assemble=False`, a session needing assembly raises NeedsAssembly before any change."""
        with self._database.tx() as db:
            session = self._session(db, session_id)
            if session.finished:
                raise SessionFailure("closed")
            if session.type == "concurrent":
                self._check_concurrent_finish(db, session_id, session, offset, body)
            else:
                self._add_last_piece(db, session_id, session, offset, body, require_closed)
            if session.blob_hash is not None and session.size is not None:
                return session.blob_hash, session.size
            pieces = db.execute(
                "SELECT offset, size, content_hash, inline FROM pieces "
                "WHERE session_id = ? ORDER BY offset",
                (session_id,),
            ).fetchall()
            if len(pieces) == 1 and pieces[0][0] == 0:
                # One piece (every small file): already a blob when inline, else a rename,
                # cheap enough to do in this transaction (finish_batch_v2 pays it per entry).
                _offset, total_size, content_hash, inline = pieces[0]
                if not inline:
                    self._blobs.place(self._piece_path(session_id, 0), content_hash)
                self._set_blob(db, session_id, content_hash, total_size)
                return content_hash, total_size
            if not assemble:
                raise NeedsAssembly(session_id)
        content_hash, total_size = self._assemble(session_id, pieces)
        with self._database.tx() as db:
            self._set_blob(db, session_id, content_hash, total_size)
        for offset, _size, _hash, _inline in pieces:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._piece_path(session_id, offset))
        return content_hash, total_size

    @staticmethod
    def _check_concurrent_finish(
        db: sqlite3.Connection,
        session_id: str,
        session: _Session,
        offset: int,
        body: Optional[Body],
    ) -> None:
        """A concurrent session finishes closed, without data, with every byte up to `total`."""
        if body is not None and body.size:
            raise SessionFailure("concurrent_session_data_not_allowed")
        if not session.closed:
            raise SessionFailure("concurrent_session_not_closed")
        if offset != session.total:
            raise SessionFailure("incorrect_offset", session.total)
        expected = 0
        for piece_offset, piece_size in db.execute(
            "SELECT offset, size FROM pieces WHERE session_id = ? ORDER BY offset",
            (session_id,),
        ):
            if piece_offset != expected:
                break
            expected += piece_size
        if session.blob_hash is None and expected != session.total:
            raise SessionFailure("concurrent_session_missing_data")

    def _add_last_piece(
        self,
        db: sqlite3.Connection,
        session_id: str,
        session: _Session,
        offset: int,
        body: Optional[Body],
        require_closed: bool,
    ) -> None:
        """A sequential session finishes at its offset, taking the finish call's own bytes."""
        size = body.size if body is not None else 0
        if offset != session.received:
            raise SessionFailure("incorrect_offset", session.received)
        if size and session.closed:
            raise SessionFailure("closed")
        if require_closed and not session.closed:
            raise SessionFailure("not_closed")
        if offset + size > MAX_FILE_SIZE:
            raise SessionFailure("too_large")
        if size:
            if session.blob_hash is not None:
                self._unassemble(db, session_id, session.blob_hash)
            self._add_piece(db, session_id, offset, body)
            db.execute(
                "UPDATE sessions SET received = received + ?, blob_hash = NULL WHERE id = ?",
                (size, session_id),
            )
            session.blob_hash = None

    def _set_blob(self, db: sqlite3.Connection, session_id: str, blob_hash: str, size: int) -> None:
        db.execute(
            "UPDATE sessions SET blob_hash = ?, blob_size = ? WHERE id = ?",
            (blob_hash, size, session_id),
        )
        db.execute("DELETE FROM pieces WHERE session_id = ?", (session_id,))

    def _unassemble(self, db: sqlite3.Connection, session_id: str, content_hash: str) -> None:
        """A sequential session whose data was assembled by a failed finish gets more bytes:
        turn the assembled blob back into its first piece (copy; blobs are shared)."""
        size = self._blobs.inline_size(content_hash)
        inline = size is not None
        if size is None:
            dest = self._piece_path(session_id, 0)
            shutil.copyfile(self._blobs.path(content_hash), dest)
            size = os.stat(dest).st_size
        if size:
            db.execute(
                "INSERT OR REPLACE INTO pieces(session_id, offset, size, content_hash, inline) "
                "VALUES (?, 0, ?, ?, ?)",
                (session_id, size, content_hash, int(inline)),
            )

    def _assemble(
        self, session_id: str, pieces: list[tuple[int, int, str, int]]
    ) -> tuple[str, int]:
        """Concatenate pieces into a blob file, hashing as we go (bounded memory: inline
        pieces are read one at a time)."""
        hasher = ContentHasher()
        tmp = self._tmp / secrets.token_hex(12)
        total = 0
        with open(tmp, "wb") as out:
            for offset, _size, piece_hash, inline in pieces:
                if inline:
                    data = self._blobs.read_small(piece_hash)
                    hasher.update(data)
                    out.write(data)
                    total += len(data)
                    continue
                with open(self._piece_path(session_id, offset), "rb") as src:
                    while True:
                        chunk = src.read(_COPY_CHUNK)
                        if not chunk:
                            break
                        hasher.update(chunk)
                        out.write(chunk)
                        total += len(chunk)
        content_hash = hasher.hexdigest()
        self._blobs.place(tmp, content_hash)
        return content_hash, total

    def mark_finished(self, db: sqlite3.Connection, session_id: str) -> None:
        db.execute("UPDATE sessions SET finished = 1, closed = 1 WHERE id = ?", (session_id,))


def _in_memory(data: bytes) -> Body:
    """A small slice as the server keeps a small body: in memory, hashed."""
    return Body(path=None, size=len(data), content_hash=content_hash(data), data=data)
