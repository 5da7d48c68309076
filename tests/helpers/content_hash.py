"""Dropbox content_hash for tests, independent of the code under test.

The SDK's `dropbox.content_hash` only exists in SDK 12.2+ (Python 3.11+), so on older SDKs the
tests use this reference version: SHA-256 over the SHA-256 digests of each 4 MiB block
(dropbox-api.md §4). Where the SDK has its hasher, it is used as the oracle instead.
"""

from __future__ import annotations

import hashlib
from typing import Any

BLOCK = 4 * 1024 * 1024


class ReferenceHasher:
    """Same interface as the SDK's `DropboxContentHasher` (update / hexdigest)."""

    def __init__(self) -> None:
        self._digests: list[bytes] = []
        self._block = bytearray()

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            take = min(len(view), BLOCK - len(self._block))
            self._block += view[:take]
            view = view[take:]
            if len(self._block) == BLOCK:
                self._digests.append(hashlib.sha256(self._block).digest())
                self._block = bytearray()

    def hexdigest(self) -> str:
        digests = list(self._digests)
        if self._block:
            digests.append(hashlib.sha256(self._block).digest())
        return hashlib.sha256(b"".join(digests)).hexdigest()


try:
    from dropbox.content_hash import DropboxContentHasher as _SdkHasher
except ImportError:  # SDK < 12.2
    _SdkHasher = None


def new_hasher() -> Any:
    """The SDK's hasher where it exists, else the reference one."""
    return _SdkHasher() if _SdkHasher is not None else ReferenceHasher()


def content_hash(data: bytes) -> str:
    hasher = new_hasher()
    hasher.update(data)
    return hasher.hexdigest()
