"""Dropbox's `content_hash` (dropbox-api.md §4): SHA-256 of the SHA-256s of every 4 MiB block."""

from __future__ import annotations

import hashlib
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
        digests = list(self._digests)
        if self._block_len:
            digests.append(self._block.digest())
        return hash_of_digests(digests)

