"""The file objects `DropboxFS.open` returns: a seekable streaming reader and a buffered writer.

They get what they need from the filesystem as callables (open a download at an offset, retry
under the pacer, upload a file object), so this module does not import the filesystem.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from typing import Any, Callable

from . import urls
from .options import BLOCK_SIZE

# start offset -> a streaming download of the file from there
OpenRead = Callable[[int], Any]
# the pacer's retry: fn(*args) again after a (reported) wait while its policy allows
Retry = Callable[..., Any]
# (file object at 0, its size) -> returns once it is committed
Upload = Callable[[Any, int], None]


def read_some(resp: Any, n: int) -> bytes:
    """Up to n bytes from a streaming download (a file-like object or a requests.Response)."""
    if isinstance(resp, io.IOBase) or not hasattr(resp, "raw"):
        return resp.read(n)
    return resp.raw.read(n)


def close_quietly(resp: Any) -> None:
    close = getattr(resp, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


class DropboxReader(io.RawIOBase):
    """A seekable streaming reader: one ranged download, reopened at the new offset on seek."""

    def __init__(self, path: str, size: int, open_read: OpenRead, retry: Retry):
        super().__init__()
        self._open_read = open_read
        self._retry = retry
        self.path = path
        self.size = size
        self._pos = 0
        self._resp: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        if pos != self._pos:
            self._drop()
            self._pos = pos
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.size - self._pos)
        if want <= 0:
            return 0
        # A dropped connection is reopened at our offset, after the pacer's (reported) wait.
        chunk = self._retry(self._download, want)
        n = len(chunk)
        buffer[:n] = chunk
        self._pos += n
        return n

    def _download(self, want: int) -> bytes:
        if self._resp is None:
            self._resp = self._open_read(self._pos)
        try:
            chunk = read_some(self._resp, want)
        except OSError:
            self._drop()
            raise  # the pacer's policy tells a dropped connection from wrong bytes or a bad path
        if not chunk:
            self._drop()
            raise ConnectionError(
                f"download of {urls.api_path(self.path)} broke off at byte {self._pos}"
            )
        return chunk

    def _drop(self) -> None:
        if self._resp is not None:
            close_quietly(self._resp)
            self._resp = None

    def close(self) -> None:
        self._drop()
        super().close()


class DropboxWriter(io.BufferedIOBase):
    """Buffers to a local temporary file and uploads it on close (discarded on an exception)."""

    def __init__(self, path: str, upload: Upload):
        super().__init__()
        self._upload = upload
        self.path = path
        self.blocksize = BLOCK_SIZE
        # Lives until close() uploads it; a `with` block cannot span the caller's writes.
        self._tmp: Any = tempfile.TemporaryFile()  # noqa: SIM115
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        n = self._tmp.write(data)
        self._size += n
        return n

    def tell(self) -> int:
        return self._size

    def discard(self) -> None:
        if not self.closed:
            self._tmp.close()
            super().close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._tmp.flush()
            self._tmp.seek(0)
            self._upload(self._tmp, self._size)
        finally:
            self._tmp.close()
            super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()
