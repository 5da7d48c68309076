"""What an upload reads: a file object, chunk by chunk, never trusted to be the size announced.

After `size` bytes one more read must find the end; a source that grew or shrank meanwhile (a
local file still being written) fails the upload with `SourceChanged` before its commit, instead
of committing a cut or short file whose content_hash is valid (issue 16).
"""

from __future__ import annotations

from typing import BinaryIO, Optional

from ..errors import DropboxRemoteError


class SourceChanged(DropboxRemoteError, OSError):
    """The bytes to upload are not the size announced: the source changed while it was read."""


def read_exactly(fobj: BinaryIO, size: int) -> bytes:
    """Read `size` bytes unless EOF comes first (raw streams may return short reads)."""
    first = fobj.read(size)
    if not first or len(first) == size:
        return first or b""
    parts = [first]
    got = len(first)
    while got < size:
        more = fobj.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class Source:
    """A file object read chunk by chunk; `rewind` works when it is seekable.

    `name` is what messages call it (the local path, or the upload's destination)."""

    def __init__(self, fobj: BinaryIO, name: str = "the source"):
        self.fobj = fobj
        self.name = name
        try:
            self.seekable = bool(fobj.seekable())
            self.base = fobj.tell() if self.seekable else 0
        except (AttributeError, OSError, ValueError):
            self.seekable, self.base = False, 0

    def read(self, size: int) -> bytes:
        return read_exactly(self.fobj, size)

    def read_announced(self, size: Optional[int], offset: int, want: int) -> bytes:
        """Up to `want` bytes from `offset`; with a known `size`, exactly the bytes up to it
        (never past it) and, once `size` is reached, proof that nothing follows."""
        if size is None:
            return self.read(want)
        want = min(want, size - offset)
        data = self.read(want)
        if len(data) < want:
            raise SourceChanged(
                f"{self.name} ended after {offset + len(data)} bytes while {size} were to be "
                "uploaded: it changed during the upload. Nothing was committed; upload it again "
                "once it no longer changes"
            )
        if offset + len(data) == size and self.read(1):
            raise SourceChanged(
                f"{self.name} has more than the {size} bytes to be uploaded: it grew during the "
                "upload. Nothing was committed; upload it again once it no longer changes"
            )
        return data

    def rewind(self, offset: int) -> bool:
        if not self.seekable:
            return False
        self.fobj.seek(self.base + offset)
        return True
