"""The file objects `DropboxFS.open` returns: a seekable streaming reader and a buffered writer.

They get what they need from the filesystem as callables (open a download at an offset, retry
under the pacer, upload a file object), so this module does not import the filesystem.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
from typing import Any, Callable, Optional

from . import urls
from .errors import DropboxRemoteError
from .options import BLOCK_SIZE

# start offset -> a streaming download of the file (of the reader's revision) from there
OpenRead = Callable[[int], Any]
# the pacer's retry: fn(*args) again after a (reported) wait while its policy allows
Retry = Callable[..., Any]
# (file object at 0, its size) -> returns once it is committed
Upload = Callable[[Any, int], None]

logger = logging.getLogger("dvc.dvc_dropbox")


class DropboxRevisionGone(DropboxRemoteError, FileNotFoundError):
    """The revision an open reader reads was removed from Dropbox (never mix two versions)."""


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
    """A seekable streaming reader: one ranged download, reopened at the new offset on seek.

    Every download reads revision `rev` (`rev:<rev>`), the one `size` belongs to: a file replaced
    on Dropbox while it is open never reads as a mix of two versions.
    """

    def __init__(
        self, path: str, size: int, open_read: OpenRead, retry: Retry, rev: Optional[str] = None
    ):
        super().__init__()
        self._open_read = open_read
        self._retry = retry
        self.path = path
        self.size = size
        self.rev = rev
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
            self._resp = self._open_at(self._pos)
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

    def _open_at(self, start: int) -> Any:
        if self.rev is None:
            return self._open_read(start)
        try:
            return self._open_read(start)  # `rev:<rev>`: see DropboxFS._open
        except FileNotFoundError:
            raise DropboxRevisionGone(
                f"{urls.api_path(self.path)} changed on Dropbox while it was open for reading, "
                f"and the revision being read ({self.rev}) is no longer there; open the file "
                "again to read its current version"
            ) from None

    def _drop(self) -> None:
        if self._resp is not None:
            close_quietly(self._resp)
            self._resp = None

    def close(self) -> None:
        self._drop()
        super().close()


class DropboxWriter(io.BufferedIOBase):
    """Buffers to a local temporary file; only a clean `close()` uploads it (atomic writes).

    Every other way out discards the bytes and leaves what Dropbox holds untouched: an exception
    in a `with` (ours, fsspec's `OpenFile`, a text wrapper's: they all call `close()`, so close
    looks at the exception being handled), garbage collection of an unclosed writer or of its text
    wrapper, and an interrupted process (nothing is sent before close).
    What the commit does (replace, or "create" that fails with FileExistsError when anything is at
    `path`: `"x"` mode) is the `upload` callable's business.
    """

    def __init__(self, path: str, upload: Upload):
        super().__init__()
        self._upload = upload
        self.path = path
        self.blocksize = BLOCK_SIZE
        # The exception being handled where the writer was opened (a writer may live inside an
        # `except:` block): only a newer one, propagating when close() runs, is an unwinding
        # `with`. A close() called by hand while handling a newer exception discards too.
        self._opened_during = sys.exc_info()[1]
        self._abandoned = False
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
        """Close without uploading: Dropbox keeps what it had."""
        if not self.closed:
            tmp = getattr(self, "_tmp", None)  # absent if __init__ failed
            if tmp is not None:
                tmp.close()
            super().close()

    def _unwinding(self) -> bool:
        current = sys.exc_info()[1]
        return current is not None and current is not self._opened_during

    def close(self) -> None:
        if self.closed:
            return
        if self._abandoned or self._unwinding():
            why = "never closed" if self._abandoned else "closed while an exception propagated"
            logger.debug("Dropbox: %s not uploaded: its file object was %s", self.path, why)
            self.discard()
            return
        try:
            self._tmp.flush()
            self._tmp.seek(0)
            self._upload(self._tmp, self._size)
        finally:
            self._tmp.close()
            super().close()

    def _dealloc_warn(self, source: object) -> None:
        # CPython's TextIOWrapper calls this on its buffer when it is garbage collected, just
        # before it closes the buffer: a text writer nobody closed is abandoned, not finished.
        self._abandoned = True

    def __del__(self) -> None:
        # IOBase's finaliser would call close(), which uploads: an unclosed writer is discarded.
        self.discard()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()
