"""Downloads through the SDK (design.md decision 8).

`files/download` is streamed in large reads into a temporary file next to the target, hashed while
written, and moved into place only when size and `content_hash` match the metadata. A dropped
connection resumes with a `Range` request.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import uuid
from typing import Any, BinaryIO, Optional

from .. import sdk_internals
from ..errors import DropboxIntegrityError
from ..options import BLOCK_SIZE, MiB
from . import upload_progress
from .content_hash import ContentHasher
from .pacer import Pacer

DOWNLOAD_READ_SIZE = BLOCK_SIZE


class Downloads:
    """The download paths of one client."""

    def __init__(self, client: Any, pacer: Pacer):
        self.client = client
        self.pacer = pacer

    def download_file(self, path: str, lpath: str, callback: Any = None) -> Any:
        """Download `path` to `lpath`; the file appears only once its content_hash matched."""
        callback = callback or upload_progress.no_callback()
        directory = os.path.dirname(os.path.abspath(lpath))
        tmp = os.path.join(directory, f".{os.path.basename(lpath)}.{uuid.uuid4().hex}.dropbox-tmp")
        metadata, response = self.pacer.call(self.client.files_download, path)
        try:
            callback.set_size(metadata.size)
            hasher = ContentHasher()
            with open(tmp, "wb") as out:
                self._stream_to(out, path, metadata, response, hasher, callback)
            self._check_download(path, metadata, hasher)
            os.replace(tmp, lpath)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return metadata

    def _stream_to(
        self,
        out: BinaryIO,
        path: str,
        metadata: Any,
        response: Any,
        hasher: ContentHasher,
        callback: Any,
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
