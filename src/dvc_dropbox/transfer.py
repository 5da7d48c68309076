"""Uploads and downloads through the SDK (design.md decisions 5, 7, 8).

Uploads always use upload sessions:

- a file of at most `chunk_size` bytes is ONE `upload_session/start` request that carries all its
  bytes and closes the session; its finish entry then goes to the batch committer
  (`upload_session/finish_batch_v2`, see batcher.py). `upload_session/start_batch` would not save a
  request (each file still needs its own data request), so it is not used;
- a larger file is a sequential session: start with the first chunk, `append_v2` the next chunks
  (one chunk in memory, read chunk by chunk), close on the last one, then commit through the same
  committer, so big and small files never contend for the namespace write lock. A lost response
  or `incorrect_offset` resumes from the server's `correct_offset`;
- `batch_size 1` disables batching: each file is committed on its own (`upload_session/finish`).

Every data request carries `content_hash` (computed here, from the same block digests that build
the whole file's hash, so every byte is hashed once); the committed file's `content_hash` must
equal the local one, otherwise `DropboxIntegrityError`.

Downloads stream `files/download` in large reads into a temporary file next to the target, hash
while writing, and only move it into place when size and `content_hash` match the metadata. A
dropped connection resumes with a `Range` request.

Commits use `mode=overwrite` (fsspec's `put` replaces; DVC objects are content-addressed, so an
existing object is identical anyway) and `mute=True` (no desktop notifications).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import os
import threading
import uuid
from typing import Any, BinaryIO, Optional

from . import sdk_errors, sdk_internals, upload_progress
from .batcher import BatchCommitter, RetryEntry
from .errors import DropboxIntegrityError, DropboxRemoteError
from .pacer import Action, Pacer, logger

BLOCK_SIZE = 4 * 1024 * 1024  # content_hash block (dropbox-api.md §4); chunk sizes are multiples
DOWNLOAD_READ_SIZE = 4 * 1024 * 1024
MAX_SESSION_RESTARTS = 2  # re-uploads of one file when its session is gone
MAX_OFFSET_RESUMES = 10  # incorrect_offset recoveries for one chunk
DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024  # bytes of large-file chunks held at once


class SessionGone(DropboxRemoteError):
    """An upload session can no longer be committed (expired, already finished, or inconsistent)."""


# -- content_hash --------------------------------------------------------------------------------


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


# -- reading sources -----------------------------------------------------------------------------


def _read_exactly(fobj: BinaryIO, size: int) -> bytes:
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


class _Source:
    """A file object read chunk by chunk; `rewind` works when it is seekable."""

    def __init__(self, fobj: BinaryIO):
        self.fobj = fobj
        try:
            self.seekable = bool(fobj.seekable())
            self.base = fobj.tell() if self.seekable else 0
        except (AttributeError, OSError, ValueError):
            self.seekable, self.base = False, 0

    def read(self, size: int) -> bytes:
        return _read_exactly(self.fobj, size)

    def rewind(self, offset: int) -> bool:
        if not self.seekable:
            return False
        self.fobj.seek(self.base + offset)
        return True


class _Rewind(Exception):
    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


def _noop_callback() -> Any:
    from fsspec.callbacks import DEFAULT_CALLBACK

    return DEFAULT_CALLBACK


class _Progress:
    """Bytes of one file sent so far, told to DVC's callback once each, as they leave.

    Requests report through `upload_progress` every MiB while they are sent; a retried request or
    a re-uploaded session sends bytes again, which are not counted again (the bar never goes back).
    """

    def __init__(self, callback: Any):
        self.callback = callback
        self.reported = 0

    def advance_to(self, offset: int) -> None:
        if offset > self.reported:
            self.callback.relative_update(offset - self.reported)
            self.reported = offset

    def sending(self, offset: int, data: bytes) -> Any:
        """Context for the request that sends `data`, the file's bytes from `offset` on."""
        return upload_progress.sending(data, lambda sent: self.advance_to(offset + sent))


# -- commits -------------------------------------------------------------------------------------


class _Commit:
    """One finish entry handed to the committer, with what its retries need."""

    __slots__ = ("arg", "lookup_retries")

    def __init__(self, arg: Any):
        self.arg = arg
        self.lookup_retries = 0


class Transfers:
    """The transfer layer of one client: uploads, downloads, and the one batch committer."""

    def __init__(
        self,
        client: Any,
        pacer: Pacer,
        *,
        chunk_size: int,
        batch_size: int,
        jobs: int,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        commit_idle_timeout: float = 0.2,
        commit_max_wait: float = 2.0,
    ):
        if chunk_size <= 0 or chunk_size % BLOCK_SIZE:
            raise ValueError("chunk_size must be a positive multiple of 4 MiB")
        self.client = client
        self.pacer = pacer
        self.chunk_size = chunk_size
        self.batch_size = batch_size
        self.jobs = jobs
        self.committer: Optional[BatchCommitter[_Commit, Any]] = None
        if batch_size > 1:
            self.committer = BatchCommitter(
                self._commit_batch,
                batch_size=batch_size,
                idle_timeout=commit_idle_timeout,
                max_wait=commit_max_wait,
            )
        # Bounded memory: each large-file upload holds one chunk; at most this many at once.
        self._chunk_slots = threading.BoundedSemaphore(max(1, memory_budget // chunk_size))
        # Byte progress inside a request (the SDK's private session: without it, per request).
        upload_progress.instrument(sdk_internals.http_session(client))

    def close(self) -> None:
        if self.committer is not None:
            self.committer.close()

    # -- uploads ---------------------------------------------------------------------------------

    def upload_file(self, lpath: str, path: str, callback: Any = None) -> Any:
        size = os.path.getsize(lpath)
        with open(lpath, "rb") as fobj:
            return self.upload_fileobj(fobj, path, size, callback)

    def upload_fileobj(
        self, fobj: BinaryIO, path: str, size: Optional[int], callback: Any = None
    ) -> Any:
        """Upload `fobj` (from its current position) to `path`; returns the FileMetadata."""
        callback = callback or _noop_callback()
        if size is not None:
            callback.set_size(size)
        source = _Source(fobj)
        progress = _Progress(callback)
        if size is not None and size <= self.chunk_size:
            return self._upload_small(source.read(size), path, progress)
        # A chunk is read only with a memory slot in hand: jobs x chunk_size could be gigabytes.
        with self._chunk_slots:
            first = source.read(self.chunk_size)
            if len(first) == self.chunk_size:
                held = [first]  # handed over, so only the session code holds the chunk
                del first
                return self._upload_large(source, held, path, size, progress)
        # Turned out small (unknown or wrong size).
        if size is None:
            callback.set_size(len(first))
        return self._upload_small(first, path, progress)

    def _upload_small(self, data: bytes, path: str, progress: _Progress) -> Any:
        from dropbox import files

        local_hash = content_hash(data)
        for attempt in range(MAX_SESSION_RESTARTS + 1):
            with self._uploading():
                with progress.sending(0, data):
                    result = self.pacer.call(
                        self.client.files_upload_session_start,
                        data,
                        close=True,
                        content_hash=local_hash,
                    )
                progress.advance_to(len(data))
                cursor = files.UploadSessionCursor(session_id=result.session_id, offset=len(data))
                try:
                    metadata = self._commit(cursor, path, local_hash)
                except SessionGone:
                    if attempt == MAX_SESSION_RESTARTS:
                        raise
                    logger.debug("Dropbox: upload session for %s gone, uploading again", path)
                    continue
            return self._verified(metadata, local_hash, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _upload_large(
        self,
        source: _Source,
        held: list[bytes],
        path: str,
        size: Optional[int],
        progress: _Progress,
    ) -> Any:
        for attempt in range(MAX_SESSION_RESTARTS + 1):
            try:
                return self._upload_session(source, held, path, size, progress)
            except SessionGone:
                if attempt == MAX_SESSION_RESTARTS or not source.rewind(0):
                    raise
                logger.warning("Dropbox: upload session for %s was lost, uploading again", path)
                held = [source.read(self.chunk_size)]
        raise AssertionError("unreachable")  # pragma: no cover

    def _upload_session(
        self,
        source: _Source,
        held: list[bytes],
        path: str,
        size: Optional[int],
        progress: _Progress,
    ) -> Any:
        """Sequential session: start with the held first chunk, append the rest chunk by chunk
        (one chunk in memory: each is dropped before the next is read), close, commit."""
        from dropbox import files

        first = held.pop()
        hasher = ContentHasher()
        digests = block_digests(first)
        hasher.feed(0, first, digests)
        with progress.sending(0, first):
            result = self.pacer.call(
                self.client.files_upload_session_start,
                first,
                close=False,
                content_hash=hash_of_digests(digests),
            )
        session_id = result.session_id
        sent = len(first)  # bytes the server has
        del first
        progress.advance_to(sent)
        chunk = b""
        for _ in range(1_000_000):  # ≥ 48 TiB at 48 MiB chunks; bounded on purpose
            chunk = b""  # drop the previous chunk before reading the next one
            chunk = source.read(self.chunk_size)
            last = len(chunk) < self.chunk_size or (size is not None and sent + len(chunk) >= size)
            digests = block_digests(chunk)
            hasher.feed(sent, chunk, digests, final=last)
            request_hash = hash_of_digests(digests)
            try:
                if last:
                    # The last append closes the session; then the commit (through the
                    # committer, so big and small files share the serial batch commits).
                    with self._uploading():
                        sent = self._append(
                            session_id, sent, chunk, request_hash, close=True, progress=progress
                        )
                        if hasher.size != sent:
                            raise SessionGone(f"upload of {path} lost track of its offset")
                        progress.advance_to(sent)
                        cursor = files.UploadSessionCursor(session_id=session_id, offset=sent)
                        metadata = self._commit(cursor, path, hasher.hexdigest())
                    return self._verified(metadata, hasher.hexdigest(), path)
                sent = self._append(
                    session_id, sent, chunk, request_hash, close=False, progress=progress
                )
            except _Rewind as rewind:
                # The server has less than it acknowledged: re-read from where it is.
                if not source.rewind(rewind.offset):
                    raise DropboxRemoteError(
                        f"Dropbox lost upload data of {path} before byte {sent} and the source "
                        "cannot be re-read; upload the file again"
                    ) from None
                sent = rewind.offset
                continue
            progress.advance_to(sent)
        raise DropboxRemoteError(f"upload of {path} did not finish")  # pragma: no cover

    def _append(
        self,
        session_id: str,
        offset: int,
        chunk: bytes,
        request_hash: str,
        *,
        close: bool,
        progress: Optional[_Progress] = None,
    ) -> int:
        """Append `chunk` at `offset`, resuming from the server's `correct_offset`; new offset.

        A dropped connection is retried by the pacer with the same bytes; if the first attempt did
        arrive, the server answers `incorrect_offset` and we continue from where it is.
        """
        from dropbox import exceptions, files

        start, data, end = offset, chunk, offset + len(chunk)
        for _ in range(MAX_OFFSET_RESUMES):
            cursor = files.UploadSessionCursor(session_id=session_id, offset=start)
            try:
                reporting = progress.sending(start, data) if progress else contextlib.nullcontext()
                with reporting:
                    self.pacer.call(
                        self.client.files_upload_session_append_v2,
                        data,
                        cursor,
                        close=close,
                        content_hash=request_hash,
                    )
                return end
            except exceptions.ApiError as exc:
                error = exc.error
                decision = sdk_errors.classify_error(error)
                if decision.action is Action.RESUME and decision.resume_at is not None:
                    correct = decision.resume_at
                elif error.is_closed() and close:
                    return end  # an earlier attempt of this very request closed the session
                elif error.is_not_found() or error.is_closed():
                    # Expired (sessions live 7 days) or closed behind our back: start over.
                    raise SessionGone(
                        f"upload session cannot take more data ({sdk_errors.summary(error)})"
                    ) from None
                else:
                    raise
                if correct == end and not close:
                    return end  # the chunk arrived, only its answer was lost
                if offset <= correct <= end:
                    # Part of the chunk arrived (or all of it, but not the close): send the rest.
                    start, data = correct, chunk[correct - offset :]
                    request_hash = content_hash(data)
                    continue
                if correct < offset:
                    raise _Rewind(correct) from exc
                raise SessionGone(
                    f"upload session is ahead of the data ({correct} > {end})"
                ) from exc
        raise DropboxRemoteError(f"upload kept failing at offset {offset}; try again later")

    # -- commits ---------------------------------------------------------------------------------

    def _uploading(self) -> Any:
        if self.committer is None:
            return contextlib.nullcontext()
        return self.committer.uploading()

    def _commit(self, cursor: Any, path: str, local_hash: str) -> Any:
        from dropbox import exceptions, files

        commit = files.CommitInfo(path=path, mode=files.WriteMode.overwrite, mute=True)
        if self.committer is None:
            try:
                return self.pacer.call(
                    self.client.files_upload_session_finish,
                    b"",
                    cursor,
                    commit,
                    content_hash=EMPTY_CONTENT_HASH,
                )
            except exceptions.ApiError as exc:
                if getattr(exc.error, "is_lookup_failed", lambda: False)():
                    return self._already_committed(path, local_hash, exc)
                raise
        arg = files.UploadSessionFinishArg(cursor=cursor, commit=commit)
        try:
            return self.committer.commit(_Commit(arg))
        except SessionGone as exc:
            return self._already_committed(path, local_hash, exc)

    def _already_committed(self, path: str, local_hash: str, cause: Exception) -> Any:
        """The session is gone: success if `path` already holds these bytes, else re-upload."""
        from dropbox import exceptions, files

        try:
            metadata = self.pacer.call(self.client.files_get_metadata, path)
        except exceptions.ApiError:
            metadata = None
        if isinstance(metadata, files.FileMetadata) and metadata.content_hash == local_hash:
            return metadata
        logger.debug("Dropbox: upload session for %s is gone: %r", path, cause)
        raise SessionGone(f"upload session for {path} is gone") from None

    def _commit_batch(self, entries: list[_Commit]) -> list[Any]:
        """One `finish_batch_v2` call; maps each entry's failure to an error or a retry."""
        result = self.pacer.call(
            self.client.files_upload_session_finish_batch_v2, [e.arg for e in entries]
        )
        outcomes: list[Any] = []
        for entry, item in zip(entries, result.entries):
            if item.is_success():
                outcomes.append(item.get_success())
                continue
            failure = item.get_failure()
            error = sdk_errors.api_error(failure)
            decision = sdk_errors.classify_error(failure)
            if decision.action is Action.RETRY:
                outcomes.append(RetryEntry(error, delay=0.5, reason=decision.reason))
            elif failure.is_lookup_failed():
                # Sometimes transient; after a retried batch call the session may also be gone
                # because the first call committed it. One retry, then let the uploader decide.
                entry.lookup_retries += 1
                if entry.lookup_retries <= 1:
                    outcomes.append(RetryEntry(error, delay=0.5, reason="lookup_failed"))
                else:
                    outcomes.append(SessionGone(f"commit failed ({sdk_errors.summary(failure)})"))
            else:
                outcomes.append(error)
        if len(outcomes) != len(entries):
            raise DropboxRemoteError(
                f"finish_batch_v2 answered {len(result.entries)} entries for {len(entries)}"
            )
        return outcomes

    def _verified(self, metadata: Any, local_hash: str, path: str) -> Any:
        remote_hash = getattr(metadata, "content_hash", None)
        if remote_hash is not None and remote_hash != local_hash:
            with contextlib.suppress(Exception):
                self.pacer.call(self.client.files_delete_v2, path)
            raise DropboxIntegrityError(
                f"Dropbox stored {path} with content_hash {remote_hash}, but the uploaded bytes "
                f"hash to {local_hash}; the remote copy was removed, push again"
            )
        return metadata

    # -- downloads -------------------------------------------------------------------------------

    def download_file(self, path: str, lpath: str, callback: Any = None) -> Any:
        """Download `path` to `lpath`; the file appears only once its content_hash matched."""
        callback = callback or _noop_callback()
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
        return io.BufferedReader(stream, buffer_size=1024 * 1024)


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
        self._chunks: Any = None if response is None else response.iter_content(1024 * 1024)
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
                        Transfers._check_download(self._path, self._metadata, self._hasher)
                        self._hasher = None
                return block
        self._chunks = None
        if self._hasher is not None:
            Transfers._check_download(self._path, self._metadata, self._hasher)
        return b""

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        super().close()


def make_transfers(client: Any, *, jobs: int, chunk_size: int, batch_size: int) -> Transfers:
    """A pacer sized to `jobs` and the transfers of `client` (the usual way to build them)."""
    return Transfers(
        client, sdk_errors.new_pacer(jobs), chunk_size=chunk_size, batch_size=batch_size, jobs=jobs
    )


__all__ = [
    "ContentHasher",
    "SessionGone",
    "Transfers",
    "block_digests",
    "content_hash",
    "make_transfers",
]
