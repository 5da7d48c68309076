"""Downloads through the SDK (design.md decision 8).

`files/download` is streamed in large reads into a temporary file next to the target, hashed while
written, and moved into place only when size and `content_hash` match the metadata. A dropped
connection resumes with a `Range` request.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import tempfile
import uuid
from typing import Any, BinaryIO, Callable, Optional, TypeVar

from .. import sdk_internals
from ..errors import DropboxIntegrityError
from ..options import BLOCK_SIZE, MiB
from . import upload_progress
from .content_hash import ContentHasher, NameHasher, object_name
from .pacer import Pacer

DOWNLOAD_READ_SIZE = BLOCK_SIZE
# Tries of one download whose bytes fail a check (content_hash, or the md5 its DVC name says).
MAX_VERIFY_ATTEMPTS = 3

logger = logging.getLogger("dvc.dvc_dropbox")
T = TypeVar("T")


class DropboxObjectMismatchError(DropboxIntegrityError):
    """A DVC object on Dropbox whose bytes do not have the md5 its name says."""


class Downloads:
    """The download paths of one client."""

    def __init__(self, client: Any, pacer: Pacer):
        self.client = client
        self.pacer = pacer

    def download_file(self, path: str, lpath: str, callback: Any = None) -> Any:
        """Download `path` to `lpath`; the file appears only once its bytes are verified.

        Verified against Dropbox's content_hash and, for a DVC object, against the md5 its name
        says (see `_verified_download`).
        """
        directory = os.path.dirname(os.path.abspath(lpath))

        def once(callback: Any) -> Any:
            name = f".{os.path.basename(lpath)}.{uuid.uuid4().hex}.dropbox-tmp"
            tmp = os.path.join(directory, name)
            try:
                with open(tmp, "wb") as out:
                    metadata = self._fill(out, path, callback)
                os.replace(tmp, lpath)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
            return metadata

        return self._verified_download(path, once, callback)

    def read_object(self, path: str, callback: Any = None) -> BinaryIO:
        """The verified bytes of `path` (a DVC object, e.g. a `.dir` listing) in a temporary file.

        DVC reads `.dir` objects with `open`: a streaming reader cannot take back bytes it has
        handed out, so these are downloaded whole and checked before the caller sees any.
        """

        def once(callback: Any) -> BinaryIO:
            out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
            try:
                self._fill(out, path, callback)
                out.seek(0)
            except BaseException:
                out.close()
                raise
            return out

        return self._verified_download(path, once, callback)

    def _verified_download(self, path: str, once: Callable[[Any], T], callback: Any) -> T:
        """`once(callback)`, tried again when the bytes fail a check (MAX_VERIFY_ATTEMPTS in all).

        Bytes broken on the way come right on a second try; an object whose bytes changed on
        Dropbox does not, and is then reported.
        """
        callback = callback or upload_progress.no_callback()
        for attempt in range(1, MAX_VERIFY_ATTEMPTS + 1):
            try:
                return once(callback)
            except DropboxIntegrityError as exc:
                if attempt == MAX_VERIFY_ATTEMPTS:
                    raise
                why = (
                    "its md5 is not the one its name says"
                    if isinstance(exc, DropboxObjectMismatchError)
                    else "its bytes do not match Dropbox's content_hash"
                )
                logger.warning(
                    "download of %s failed its check (%s); downloading it again (try %d of %d)",
                    path,
                    why,
                    attempt + 1,
                    MAX_VERIFY_ATTEMPTS,
                )
                callback.absolute_update(0)
        raise AssertionError("unreachable")

    def _fill(self, out: BinaryIO, path: str, callback: Any) -> Any:
        """Write the whole of `path` to `out`, checked; its metadata."""
        name = object_name(path)
        metadata, response = self.pacer.call(self.client.files_download, path)
        callback.set_size(metadata.size)
        hasher = ContentHasher()
        named = NameHasher(name) if name is not None else None
        self._stream_to(out, path, metadata, response, hasher, callback, named)
        self._check_download(path, metadata, hasher)
        if named is not None and not named.matches():
            raise DropboxObjectMismatchError(
                f"{path} on Dropbox does not hold the DVC object its name says (md5 "
                f"{named.name.md5}, its bytes have md5 {named.hexdigest()}): it was changed "
                "in Dropbox outside DVC. Nothing was installed. Delete it in Dropbox, then push "
                "that object again from a DVC cache that has it (`dvc push` in a clone whose "
                "cache holds it). DVC skips objects it finds on the remote, and all of a tracked "
                "folder whose .dir object it finds: if the object is in a folder, delete that "
                ".dir object too"
            )
        return metadata

    def _stream_to(
        self,
        out: BinaryIO,
        path: str,
        metadata: Any,
        response: Any,
        hasher: ContentHasher,
        callback: Any,
        named: Optional[NameHasher] = None,
    ) -> None:
        """Write the body to `out`; a dropped connection resumes with a Range request after the
        pacer's (reported) wait. The pacer's policy tells a dropped connection from a full disk."""
        current = [response]

        def download() -> None:
            resp = current.pop() if current else self._resume_download(path, metadata, hasher.size)
            try:
                for block in resp.iter_content(chunk_size=DOWNLOAD_READ_SIZE):
                    out.write(block)
                    hasher.update(block)
                    if named is not None:
                        named.update(block)
                    callback.relative_update(len(block))
            except OSError:  # requests' errors are OSErrors too
                if hasher.size >= metadata.size:
                    return  # every byte arrived: the content_hash check decides
                raise
            finally:
                resp.close()

        self.pacer.retry(download)

    def _files_download(self, path: str, headers: Optional[dict[str, str]]) -> Any:
        """`files_download`, with extra HTTP headers (Range) on every SDK version.

        SDK 12.2 takes `extra_headers`; 12.0/12.1 do not, but a clone of the client with added
        headers (sharing its HTTP session) sends them.
        """
        if not headers:
            return self.client.files_download(path)
        if _download_takes_headers(self.client):
            return self.client.files_download(path, extra_headers=headers)
        # The client's own extra headers (e.g. its path root) must stay on the ranged clone.
        ranged = self.client.clone(headers={**sdk_internals.headers(self.client), **headers})
        return ranged.files_download(path)

    def _resume_download(self, path: str, metadata: Any, offset: int) -> Any:
        headers = {"Range": f"bytes={offset}-"}
        again, response = self.pacer.call(self._files_download, path, headers)
        if again.rev != metadata.rev:
            response.close()
            raise DropboxIntegrityError(f"{path} changed on Dropbox while it was downloading")
        if response.status_code != 206:
            # No partial content: the server sent everything; skip what we already have.
            skip = offset
            raw_iter = response.iter_content(chunk_size=DOWNLOAD_READ_SIZE)
            return _SkippingResponse(response, raw_iter, skip)
        return response

    @staticmethod
    def _check_download(path: str, metadata: Any, hasher: ContentHasher) -> None:
        got = hasher.hexdigest()
        if hasher.size != metadata.size or (
            metadata.content_hash is not None and got != metadata.content_hash
        ):
            raise DropboxIntegrityError(
                f"download of {path} is corrupt: got {hasher.size} bytes with content_hash "
                f"{got}, Dropbox says {metadata.size} bytes with {metadata.content_hash}; "
                "nothing was written, try again"
            )

    def open_read(self, path: str, *, start: int = 0, end: Optional[int] = None) -> BinaryIO:
        """A streaming, buffered reader of bytes [start, end) of `path` (end exclusive).

        A read of the whole file checks content_hash when it reaches the end.
        """
        from dropbox import exceptions

        if end is not None and end <= start:
            return io.BufferedReader(_DownloadStream(None, None, verify=False))
        headers: Optional[dict[str, str]] = None
        if start > 0 or end is not None:
            last = "" if end is None else str(end - 1)
            headers = {"Range": f"bytes={start}-{last}"}
        try:
            metadata, response = self.pacer.call(self._files_download, path, headers)
        except exceptions.HttpError as exc:
            if exc.status_code == 416:  # range beyond the end: nothing to read
                return io.BufferedReader(_DownloadStream(None, None, verify=False))
            raise
        verify = headers is None  # only a whole-file read can be checked against content_hash
        if headers is not None and response.status_code == 200:
            # The server ignored the range: serve the slice from the full body.
            chunks = response.iter_content(chunk_size=DOWNLOAD_READ_SIZE)
            response = _SkippingResponse(response, chunks, start, limit=end)
        stream = _DownloadStream(response, metadata, verify=verify, path=path)
        return io.BufferedReader(stream, buffer_size=MiB)


def _download_takes_headers(client: Any) -> bool:
    try:
        return "extra_headers" in inspect.signature(client.files_download).parameters
    except (TypeError, ValueError):
        return False


class _SkippingResponse:
    """A download response whose first `skip` bytes (and anything past `limit`) are dropped."""

    def __init__(self, response: Any, chunks: Any, skip: int, limit: Optional[int] = None):
        self.response = response
        self.status_code = 206
        self._chunks = chunks
        self._skip = skip
        self._remaining = None if limit is None else limit - skip

    def iter_content(self, chunk_size: int = DOWNLOAD_READ_SIZE) -> Any:
        for block in self._chunks:
            if self._skip:
                cut = min(self._skip, len(block))
                block, self._skip = block[cut:], self._skip - cut
            if self._remaining is not None:
                block = block[: self._remaining]
                self._remaining -= len(block)
            if block:
                yield block
            if self._remaining == 0:
                return

    def close(self) -> None:
        self.response.close()


class _DownloadStream(io.RawIOBase):
    """A readable over a download response; closes it, and verifies whole-file reads at EOF."""

    def __init__(self, response: Any, metadata: Any, *, verify: bool, path: str = ""):
        super().__init__()
        self._response = response
        self._metadata = metadata
        self._chunks: Any = None if response is None else response.iter_content(MiB)
        self._buffer = memoryview(b"")
        self._hasher: Optional[ContentHasher] = ContentHasher() if verify else None
        self._path = path
        self.metadata = metadata

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(self._buffer):
            self._buffer = memoryview(self._next_block())
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]  # a view: no copy of the rest
        return size

    def _next_block(self) -> bytes:
        if self._chunks is None:
            return b""
        for block in self._chunks:
            if block:
                if self._hasher is not None:
                    self._hasher.update(block)
                    if self._hasher.size >= self._metadata.size:
                        # Check before handing out the last bytes: readers that stop at the
                        # known size never ask for the end of the stream.
                        Downloads._check_download(self._path, self._metadata, self._hasher)
                        self._hasher = None
                return block
        self._chunks = None
        if self._hasher is not None:
            Downloads._check_download(self._path, self._metadata, self._hasher)
        return b""

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        super().close()
