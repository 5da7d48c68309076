"""File contents: content-addressed blob files, named by their Dropbox content hash.

`blobs/<h[:2]>/<h>` under the data dir. Request bodies arrive as files already hashed (`Body`)
and become blobs or session pieces by a rename, never a copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Union

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
    """The request body of an upload-style route, already spooled to disk by the server.

    `content_hash` is the Dropbox content hash of exactly these bytes (computed while spooling),
    so handlers compare it with the arg's `content_hash`. Whoever keeps the bytes takes the file
    with `take()` (a rename, no copy); otherwise the server deletes it after the call.
    """

    path: Path
    size: int
    content_hash: str
    taken: bool = False

    def take(self) -> Path:
        self.taken = True
        return self.path


class Blobs:
    def __init__(self, root: Path):
        self.root = root
        self._prefix = f"{root}{os.sep}"
        root.mkdir(parents=True, exist_ok=True)

    def path(self, content_hash: str) -> Path:
        return Path(self._path(content_hash))

    def _path(self, content_hash: str) -> str:
        # Strings inside: pathlib's object churn showed in the per-entry cost of finishes.
        return f"{self._prefix}{content_hash[:2]}{os.sep}{content_hash}"

    def place(self, source: StrPath, content_hash: str) -> None:
        """Move `source` into the blob store (dropping it if that content is already there)."""
        dest = self._path(content_hash)
        if os.path.exists(dest):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(source)
            return
        try:
            move(source, dest)
        except FileNotFoundError:  # the first blob of its prefix: no mkdir per blob
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            move(source, dest)

    def keep(self, body: Body) -> str:
        """Keep an upload's spooled body as a blob; returns its content hash."""
        if not os.path.exists(self._path(body.content_hash)):
            self.place(body.take(), body.content_hash)
        return body.content_hash

    def empty(self) -> str:
        dest = self.path(EMPTY_HASH)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch()
        return EMPTY_HASH

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)


def move(source: StrPath, dest: StrPath) -> None:
    """Rename (no copy) when source and destination share a filesystem."""
    try:
        os.replace(source, dest)
    except OSError:
        shutil.move(str(source), str(dest))
