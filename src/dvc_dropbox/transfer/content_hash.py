"""Dropbox's `content_hash` (dropbox-api.md §4): SHA-256 of the SHA-256s of every 4 MiB block."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ..options import BLOCK_SIZE


def block_digests(data: bytes) -> list[bytes]:
    """SHA-256 of every 4 MiB block of `data` (the last one may be shorter)."""
    view = memoryview(data)
    return [
        hashlib.sha256(view[start : start + BLOCK_SIZE]).digest()
        for start in range(0, len(view), BLOCK_SIZE)
    ]


def hash_of_digests(digests: list[bytes]) -> str:
    return hashlib.sha256(b"".join(digests)).hexdigest()


def content_hash(data: bytes) -> str:
    return hash_of_digests(block_digests(data))


EMPTY_CONTENT_HASH = content_hash(b"")


class ContentHasher:
    """Dropbox content_hash of a whole file, fed in order, possibly more than once per range.

    `feed(offset, data)` hashes only the bytes past what it has already seen, so re-reading after
    a rewind does not count bytes twice. Aligned chunks reuse the digests computed for the request.
    """

    def __init__(self) -> None:
        self._digests: list[bytes] = []
        self._block = hashlib.sha256()
        self._block_len = 0
        self.size = 0  # bytes hashed so far

    def feed(
        self,
        offset: int,
        data: bytes,
        digests: Optional[list[bytes]] = None,
        *,
        final: bool = False,
    ) -> None:
        if offset + len(data) <= self.size:
            return
        if offset < self.size:
            data, digests, offset = data[self.size - offset :], None, self.size
        if offset > self.size:
            raise ValueError("content hash fed out of order")
        # Precomputed digests are whole-file digests only if they start on a block boundary and
        # cover whole blocks (or end the file).
        aligned = self._block_len == 0 and (final or len(data) % BLOCK_SIZE == 0)
        if digests is not None and aligned:
            self._digests.extend(digests)
            self.size += len(data)
            return
        self.update(data)

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            take = min(BLOCK_SIZE - self._block_len, len(view) - pos)
            self._block.update(view[pos : pos + take])
            self._block_len += take
            pos += take
            if self._block_len == BLOCK_SIZE:
                self._digests.append(self._block.digest())
                self._block = hashlib.sha256()
                self._block_len = 0
        self.size += len(view)

    def hexdigest(self) -> str:
        return hash_of_digests(self.digests())

    def digests(self) -> list[bytes]:
        """The block digests so far, a short last block included."""
        digests = list(self._digests)
        if self._block_len:
            digests.append(self._block.digest())
        return digests


def hexdigest_of_parts(parts: list[ContentHasher]) -> str:
    """content_hash of a file hashed as consecutive parts, each by its own ContentHasher.

    Parts hashed apart (e.g. ranges downloaded in parallel) give the file's block digests only if
    each starts on a block boundary: every part but the last must hold whole blocks.
    """
    for part in parts[:-1]:
        if part.size % BLOCK_SIZE:
            raise ValueError("only the last part may end inside a 4 MiB block")
    return hash_of_digests([digest for part in parts for digest in part.digests()])


# -- objects verified by their name (design.md decision 11) ---------------------------------------

# DVC 3 objects: <remote>/files/md5/ab/cdef... (a `.dir` suffix for directory listings, whose md5
# covers the listing file's own bytes). DVC 2's layout, <remote>/ab/cdef..., named objects by
# md5-dos2unix: for text files the md5 of the bytes with CRLF turned into LF.
# Only paths of DVC's layout are objects (issue 16): below a remote root DVC named, both layouts;
# elsewhere (an fsspec user's own files) only DVC 3's `files/md5/ab/<30 hex>`, whose three fixed
# levels nobody picks by chance. A bare `ab/<30 hex>` of an fsspec user is just a file.
_DVC3_OBJECT = re.compile(r"files/md5/([0-9a-f]{2})/([0-9a-f]{30})(?:\.dir)?")
_DVC2_OBJECT = re.compile(r"([0-9a-f]{2})/([0-9a-f]{30})(?:\.dir)?")
_DVC3_ANYWHERE = re.compile(r"(?:^|/)" + _DVC3_OBJECT.pattern + "$")


@dataclass(frozen=True)
class ObjectName:
    """The md5 a DVC object's remote path names."""

    md5: str
    legacy: bool  # DVC 2 layout: md5-dos2unix (the plain md5 is accepted too)


def _below(path: str, root: str) -> Optional[str]:
    """`path` relative to folder `root` (Dropbox compares case-insensitively), or None."""
    path, root = path.strip("/"), root.strip("/")
    if not root:
        return path
    if path.lower().startswith(root.lower() + "/"):
        return path[len(root) + 1 :]
    return None


def object_name(path: str, remote_roots: Sequence[str] = ()) -> Optional[ObjectName]:
    """The md5 a DVC object's path names, or None for a path that does not name one.

    `remote_roots`: the DVC remotes' folders (plugin or API paths, like `path`) whose objects
    may use DVC 2's layout too.
    """
    for root in remote_roots:
        rel = _below(path, root)
        if rel is None:
            continue
        match = _DVC3_OBJECT.fullmatch(rel)
        if match:
            return ObjectName(match.group(1) + match.group(2), legacy=False)
        match = _DVC2_OBJECT.fullmatch(rel)
        if match:
            return ObjectName(match.group(1) + match.group(2), legacy=True)
    match = _DVC3_ANYWHERE.search(path)
    if match:
        return ObjectName(match.group(1) + match.group(2), legacy=False)
    return None


class NameHasher:
    """md5 of a download as it streams (and, for DVC 2 names, of its dos2unix form too)."""

    def __init__(self, name: ObjectName):
        self.name = name
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._unix = hashlib.md5(usedforsecurity=False) if name.legacy else None
        self._cr = False  # the previous block ended in CR: its CRLF may straddle two blocks

    def update(self, block: bytes) -> None:
        self._md5.update(block)
        if self._unix is None:
            return
        data = (b"\r" if self._cr else b"") + bytes(block)
        self._cr = data.endswith(b"\r")
        if self._cr:
            data = data[:-1]
        self._unix.update(data.replace(b"\r\n", b"\n"))

    def matches(self) -> bool:
        if self._md5.hexdigest() == self.name.md5:
            return True
        if self._unix is None:
            return False
        unix = self._unix.copy()
        if self._cr:
            unix.update(b"\r")
        return unix.hexdigest() == self.name.md5

    def hexdigest(self) -> str:
        return self._md5.hexdigest()
