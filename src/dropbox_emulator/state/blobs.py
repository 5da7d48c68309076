"""File contents: content-addressed blobs, named by their Dropbox content hash.

Small contents (up to INLINE_MAX) are rows of `small_blobs` in the state's database, the others
files `blobs/<h[:2]>/<h>` under the data dir. Request bodies arrive already hashed (`Body`):
small ones in memory, the others spooled to a file that becomes a blob or session piece by a
rename, never a copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Optional, Union

from dropbox_emulator.state.database import Database

StrPath = Union[str, "os.PathLike[str]"]

BLOCK_SIZE = 4 * 1024 * 1024  # Dropbox's block: content_hash blocks, concurrent-session offsets
EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class ContentHasher:
    """Dropbox's content_hash: SHA-256 over the SHA-256 digests of each 4 MiB block.

    Our own rather than the SDK's `DropboxContentHasher` because that one only exists in SDK
    12.2+ (Python 3.11+) and copies its input; this one takes memoryviews without copying.
    """

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._filled = 0

    def update(self, data: Union[bytes, bytearray, memoryview]) -> None:
        view = memoryview(data)
        while len(view):
            if self._filled == BLOCK_SIZE:
                self._overall.update(self._block.digest())
                self._block = hashlib.sha256()
                self._filled = 0
            take = min(len(view), BLOCK_SIZE - self._filled)
            self._block.update(view[:take])
            self._filled += take
            view = view[take:]

    def hexdigest(self) -> str:
        overall = self._overall.copy()
        if self._filled:
            overall.update(self._block.digest())
        return overall.hexdigest()


def content_hash(data: bytes) -> str:
    hasher = ContentHasher()
    hasher.update(data)
    return hasher.hexdigest()


@dataclasses.dataclass
class Body:
    """The request body of an upload-style route, as the server received it: spooled to disk
    (`path`), or for small bodies (at most INLINE_MAX bytes) kept in memory (`data`).

    `content_hash` is the Dropbox content hash of exactly these bytes (computed while reading),
    so handlers compare it with the arg's `content_hash`. Whoever keeps a spooled body takes
    the file with `take()` (a rename, no copy); otherwise the server deletes it after the call.
    """

    path: Optional[Path]
    size: int
    content_hash: str
    taken: bool = False
    data: Optional[bytes] = None

    def take(self) -> Path:
        assert self.path is not None, "an in-memory body has no file to take"
        self.taken = True
        return self.path


# Small contents live in SQLite rather than one file each: on this project's test machines
# creating a file (an inode) cost ~0.4 ms of kernel CPU, more than the rest of a small upload.
INLINE_MAX = 256 * 1024
SCHEMA = """
CREATE TABLE IF NOT EXISTS small_blobs(content_hash TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


class Blobs:
    """Content by hash: `small_blobs` rows for small contents, files for the others."""

    def __init__(self, root: Path, db: Database):
        self.root = root
        self._database = db
        self._prefix = f"{root}{os.sep}"
        root.mkdir(parents=True, exist_ok=True)
        db.create(SCHEMA)

    def path(self, content_hash: str) -> Path:
        """The content as a file (a small content gets one written on first use: temporary
        links and re-opened sessions need a file)."""
        dest = self._path(content_hash)
        if not os.path.exists(dest):
            data = self.inline(content_hash)
            if data is not None:
                tmp = f"{dest}.{secrets.token_hex(6)}.tmp"
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(tmp, "wb") as out:
                    out.write(data)
                os.replace(tmp, dest)
        return Path(dest)

    def source(self, content_hash: str) -> Union[Path, bytes]:
        """What a download serves: the bytes of a small content, else its file."""
        data = self.inline(content_hash)
        return data if data is not None else Path(self._path(content_hash))

    def inline(self, content_hash: str) -> Optional[bytes]:
        with self._database.lock:
            row = self._database.connection.execute(
                "SELECT data FROM small_blobs WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def inline_size(self, content_hash: str) -> Optional[int]:
        """The size of a small content kept inline, None if it is not."""
        with self._database.lock:
            row = self._database.connection.execute(
                "SELECT length(data) FROM small_blobs WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return None if row is None else int(row[0])

    def read_small(self, content_hash: str) -> bytes:
        """All bytes of a content known to be small (its row, or its file)."""
        data = self.inline(content_hash)
        if data is None:
            with open(self._path(content_hash), "rb") as src:
                data = src.read()
        return data

    def _path(self, content_hash: str) -> str:
        # Strings inside: pathlib's object churn showed in the per-entry cost of finishes.
        return f"{self._prefix}{content_hash[:2]}{os.sep}{content_hash}"

    def _exists(self, content_hash: str) -> bool:
        if os.path.exists(self._path(content_hash)):
            return True
        with self._database.lock:
            return (
                self._database.connection.execute(
                    "SELECT 1 FROM small_blobs WHERE content_hash = ?", (content_hash,)
                ).fetchone()
                is not None
            )

    def place(self, source: StrPath, content_hash: str) -> None:
        """Move `source` into the blob store (dropping it if that content is already there)."""
        dest = self._path(content_hash)
        if self._exists(content_hash):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(source)
            return
        try:
            move(source, dest)
        except FileNotFoundError:  # the first blob of its prefix: no mkdir per blob
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            move(source, dest)

    def put_inline(self, db: sqlite3.Connection, content_hash: str, data: bytes) -> None:
        """Keep small content (inside the caller's transaction); a no-op if it is there."""
        if not os.path.exists(self._path(content_hash)):
            db.execute(
                "INSERT OR IGNORE INTO small_blobs(content_hash, data) VALUES (?, ?)",
                (content_hash, data),
            )

    def keep(self, body: Body) -> str:
        """Keep an upload's body as a blob; returns its content hash."""
        if body.data is not None:
            with self._database.tx() as db:
                self.put_inline(db, body.content_hash, body.data)
        elif not self._exists(body.content_hash):
            self.place(body.take(), body.content_hash)
        return body.content_hash

    def empty(self) -> str:
        dest = self.path(EMPTY_HASH)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch()
        return EMPTY_HASH

    def clear(self) -> None:
        with self._database.lock:
            self._database.connection.execute("DELETE FROM small_blobs")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)


def move(source: StrPath, dest: StrPath) -> None:
    """Rename (no copy) when source and destination share a filesystem."""
    try:
        os.replace(source, dest)
    except OSError:
        shutil.move(str(source), str(dest))
