"""Uploads through the SDK (design.md decisions 5, 7).

Uploads always use upload sessions:

- a local file of at most 4 MiB goes up in a pack with other small files (packs.py:
  `upload_session/start_batch` + one `upload_session/append_batch` for up to 500 files); its
  finish entry then goes to the batch committer (`upload_session/finish_batch_v2`, batcher.py);
- otherwise (`pack false`, `batch_size 1`, a file object) a file of at most `chunk_size` bytes
  is ONE `upload_session/start` request that carries all its bytes and closes the session, then
  its finish entry goes to the committer;
- a larger file is a sequential session: start with the first chunk, `append_v2` the next chunks
  (one chunk in memory, read chunk by chunk), close on the last one, then commit through the same
  committer, so big and small files never contend for the namespace write lock. A lost response
  or `incorrect_offset` resumes from the server's `correct_offset`;
- `batch_size 1` disables batching: each file is committed on its own (`upload_session/finish`).

Every data request carries `content_hash` (computed here, from the same block digests that build
the whole file's hash, so every byte is hashed once); the committed file's `content_hash` must
equal the local one, otherwise `DropboxIntegrityError`.

Commits use `mode=overwrite` (fsspec's `put` replaces; DVC objects are content-addressed, so an
existing object is identical anyway) and `mute=True` (no desktop notifications). The "create"
write mode (fsspec's `"x"` and `mode="create"`) commits with `WriteMode.add`, no autorename and
`strict_conflict`: anything already at the path, even the same bytes, is a conflict
(FileExistsError), and nothing is replaced.

A source is never trusted to be the size it was announced as: after `size` bytes one more read
must find its end. A source that grew or shrank fails the upload before its commit
(`SourceChanged`), instead of committing a cut (or short) file whose content_hash is valid.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, Callable, Optional

from .. import sdk_errors, sdk_internals
from ..errors import DropboxIntegrityError, DropboxRemoteError
from ..options import BLOCK_SIZE, MiB
from . import pipeline, upload_progress
from .batcher import BatchCommitter, RetryEntry
from .content_hash import (
    EMPTY_CONTENT_HASH,
    ContentHasher,
    block_digests,
    content_hash,
    hash_of_digests,
)
from .pacer import Action, Pacer, logger
from .packs import Packs, packed_upload_steps
from .sources import Source

MAX_SESSION_RESTARTS = 2  # re-uploads of one file when its session is gone
MAX_OFFSET_RESUMES = 10  # incorrect_offset recoveries for one chunk
DEFAULT_MEMORY_BUDGET = 256 * MiB  # bytes of large-file chunks held at once
# The longest a sent file waits for more entries to join its batch while uploads keep coming
# (`dvc push` fills batches: dvc_put.py). Long enough for a batch of 1000 small files to fill
# at a hundred files/s; an upload stream that is slower still commits every 10 s.
COMMIT_MAX_WAIT_S = 10.0


class SessionGone(DropboxRemoteError):
    """An upload session can no longer be committed (expired, already finished, or inconsistent)."""


class _NoRestart(SessionGone):
    """The session is gone and its source cannot be read again from the start."""


WRITE_MODES = ("overwrite", "create")


def _commit_info(path: str, mode: str) -> Any:
    from dropbox import files

    if mode == "create":
        return files.CommitInfo(
            path=path, mode=files.WriteMode.add, autorename=False, strict_conflict=True, mute=True
        )
    return files.CommitInfo(path=path, mode=files.WriteMode.overwrite, mute=True)


def _check_mode(mode: str) -> str:
    if mode not in WRITE_MODES:
        raise ValueError(f"write mode must be one of {', '.join(WRITE_MODES)}, not {mode!r}")
    return mode


class _Rewind(Exception):
    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


class _Progress:
    """Bytes of one file sent so far, told to DVC's callback once each, as they leave.

    Requests report through `upload_progress` every MiB while they are sent; a retried request or
    a re-uploaded session sends bytes again, which are not counted again (the bar never goes back).
    """

    def __init__(self, callback: Any, check: Callable[[], None] = lambda: None):
        self.callback = callback
        self.reported = 0
        # The transfer's cancel check (transfer/cancel.py), every MiB sent: Ctrl-C in a 48 MiB
        # chunk on a slow link ends the request there, not when the chunk is up.
        self.check = check

    def advance_to(self, offset: int) -> None:
        if offset > self.reported:
            self.callback.relative_update(offset - self.reported)
            self.reported = offset

    def sending(self, offset: int, data: bytes) -> Any:
        """Context for the request that sends `data`, the file's bytes from `offset` on."""
        def sent(count: int) -> None:
            self.check()
            self.advance_to(offset + count)

        return upload_progress.sending(data, sent)


# -- commits -------------------------------------------------------------------------------------


class _Commit:
    """One finish entry handed to the committer, with what its retries need."""

    __slots__ = ("arg", "lookup_retries")

    def __init__(self, arg: Any):
        self.arg = arg
        self.lookup_retries = 0


class Uploads:
    """The uploads of one client, and its one batch committer."""

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
        commit_max_wait: float = COMMIT_MAX_WAIT_S,
        pack: bool = True,
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
                max_entry_wait=pacer.max_total_wait,
                # Entries refused together are one wait episode with the pacer's own waits.
                report=pacer.report_commit_wait,
            )
            # A cancelled transfer's entries stop waiting for their commit (transfer/cancel.py).
            pacer.cancels.listen(self.committer.fail_queued)
        # Small files go up in packs (packs.py); `batch_size 1` and `pack false` keep one
        # session per file.
        self.packs = Packs(client, pacer) if self.committer is not None and pack else None
        if self.packs is not None:
            pacer.cancels.listen(self.packs.sender.fail_queued)  # as the committer's, above
        # Bounded memory: each large-file upload holds one chunk; at most this many at once.
        self._chunk_slots = threading.BoundedSemaphore(max(1, memory_budget // chunk_size))
        # Byte progress inside a request (the SDK's private session: without it, per request).
        upload_progress.instrument(sdk_internals.http_session(client))

    def close(self) -> None:
        if self.packs is not None:
            self.packs.close()
        if self.committer is not None:
            self.committer.close()

    def expect(self, count: int) -> None:
        """`count` more files are on their way (a pipeline's `coming`): the packer and the
        committer keep filling their batches for them."""
        if self.packs is not None:
            self.packs.expect(count)
        if self.committer is not None:
            self.committer.expect(count)

    def upload_file(self, lpath: str, path: str, callback: Any = None) -> Any:
        """Upload the local file `lpath` to `path`; returns the FileMetadata once committed."""
        return pipeline.drive(self.upload_file_steps(lpath, path, callback))

    def upload_fileobj(
        self,
        fobj: BinaryIO,
        path: str,
        size: Optional[int],
        callback: Any = None,
        *,
        mode: str = "overwrite",
    ) -> Any:
        """Upload `fobj` (from its current position) to `path`; returns the FileMetadata.

        With `size`, exactly that many bytes must follow (else SourceChanged, nothing committed).
        """
        _check_mode(mode)
        callback = callback or upload_progress.no_callback()
        if size is not None:
            callback.set_size(size)
        source = Source(fobj, f"the data for {path}")
        progress = _Progress(callback, self.pacer.cancels.current.check)

        @contextlib.contextmanager
        def reopen(attempt: int) -> Iterator[tuple[Source, Optional[int]]]:
            if attempt and not source.rewind(0):
                raise _NoRestart(f"upload session for {path} is gone") from None
            yield source, size

        return pipeline.drive(self._upload_steps(reopen, path, progress, mode=mode))

    def upload_file_steps(
        self,
        lpath: str,
        path: str,
        callback: Any = None,
        on_sent: Optional[Callable[[], None]] = None,
        *,
        mode: str = "overwrite",
        pack: bool = True,
    ) -> pipeline.Steps[Any]:
        """`upload_file` as steps (transfer/pipeline.py): it yields the Future of its commit once
        its bytes are sent, so the thread can upload the next file meanwhile; returns the
        FileMetadata. The file is open only while its bytes are sent, never during the wait.
        `on_sent` is called once, when the bytes are sent (a progress bar for them can go)."""
        _check_mode(mode)
        callback = callback or upload_progress.no_callback()
        progress = _Progress(callback, self.pacer.cancels.current.check)
        if pack and self.packs is not None:
            size = os.path.getsize(lpath)
            if self.packs.takes(size):
                return packed_upload_steps(self, lpath, size, path, progress, on_sent, mode)

        @contextlib.contextmanager
        def reopen(attempt: int) -> Iterator[tuple[Source, Optional[int]]]:
            size = os.path.getsize(lpath)
            if not attempt:
                callback.set_size(size)
            with open(lpath, "rb") as fobj:
                yield Source(fobj, lpath), size

        return self._upload_steps(reopen, path, progress, on_sent, mode=mode)

    def _upload_steps(
        self,
        reopen: Callable[[int], AbstractContextManager[tuple[Source, Optional[int]]]],
        path: str,
        progress: _Progress,
        on_sent: Optional[Callable[[], None]] = None,
        mode: str = "overwrite",
    ) -> pipeline.Steps[Any]:
        """Send the bytes (`reopen(attempt)` gives the source), hand the commit over, yield its
        Future; a session found gone at commit time is uploaded again from the start."""
        for attempt in range(MAX_SESSION_RESTARTS + 1):
            committing = False
            try:
                with contextlib.ExitStack() as sending:
                    with reopen(attempt) as (source, size):
                        cursor, local_hash = self._send(source, path, size, progress, sending)
                    handed = self._hand_over(cursor, path, mode)
                if on_sent is not None:
                    on_sent()
                    on_sent = None
                committing = True
                if handed is None:
                    metadata = self._commit_alone(cursor, path, local_hash, mode)
                else:
                    try:
                        metadata = yield handed
                    except SessionGone as exc:
                        metadata = self._already_committed(path, local_hash, exc)
            except SessionGone as exc:
                if attempt == MAX_SESSION_RESTARTS or isinstance(exc, _NoRestart):
                    raise
                # Gone at commit time is expected after a retried commit that had landed (checked
                # by metadata first); gone while sending is worth a word.
                log = logger.debug if committing else logger.warning
                log("Dropbox: upload session for %s was lost, uploading again", path)
                continue
            return self._verified(metadata, local_hash, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        source: Source,
        path: str,
        size: Optional[int],
        progress: _Progress,
        sending: contextlib.ExitStack,
    ) -> tuple[Any, str]:
        """Send all bytes into a closed upload session: (its cursor, the bytes' content_hash).

        `sending` gets the committer's `uploading()` once this upload's entry is near (the caller
        hands the entry over before leaving it): at once for one request, with the last chunk
        of a session (a big file's long upload must not hold the small files' batch back).
        """
        if size is not None and size <= self.chunk_size:
            data = source.read_announced(size, 0, size)
            sending.enter_context(self._uploading())
            return self._send_small(data, progress)
        # A chunk is read only with a memory slot in hand: jobs x chunk_size could be gigabytes.
        with self._chunk_slots:
            first = source.read_announced(size, 0, self.chunk_size)
            if len(first) == self.chunk_size:
                held = [first]  # handed over, so only the session code holds the chunk
                del first
                return self._send_session(source, held, path, size, progress, sending)
        # Turned out small (unknown or wrong size).
        if size is None:
            progress.callback.set_size(len(first))
        sending.enter_context(self._uploading())
        return self._send_small(first, progress)

    def _send_small(self, data: bytes, progress: _Progress) -> tuple[Any, str]:
        """One `upload_session/start` that carries every byte and closes the session."""
        from dropbox import files

        local_hash = content_hash(data)
        with progress.sending(0, data):
            result = self.pacer.call(
                self.client.files_upload_session_start,
                data,
                close=True,
                content_hash=local_hash,
            )
        progress.advance_to(len(data))
        cursor = files.UploadSessionCursor(session_id=result.session_id, offset=len(data))
        return cursor, local_hash

    def _send_session(
        self,
        source: Source,
        held: list[bytes],
        path: str,
        size: Optional[int],
        progress: _Progress,
        sending: contextlib.ExitStack,
    ) -> tuple[Any, str]:
        """Sequential session: start with the held first chunk, append the rest chunk by chunk
        (one chunk in memory: each is dropped before the next is read), close on the last."""
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
            chunk = source.read_announced(size, sent, self.chunk_size)
            last = len(chunk) < self.chunk_size or (size is not None and sent + len(chunk) >= size)
            digests = block_digests(chunk)
            hasher.feed(sent, chunk, digests, final=last)
            request_hash = hash_of_digests(digests)
            try:
                if last:
                    # The last append closes the session; its commit goes through the committer,
                    # so big and small files share the serial batch commits.
                    sending.enter_context(self._uploading())
                    sent = self._append(
                        session_id, sent, chunk, request_hash, close=True, progress=progress
                    )
                    if hasher.size != sent:
                        raise SessionGone(f"upload of {path} lost track of its offset")
                    progress.advance_to(sent)
                    cursor = files.UploadSessionCursor(session_id=session_id, offset=sent)
                    return cursor, hasher.hexdigest()
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

    def _hand_over(self, cursor: Any, path: str, mode: str) -> Optional[Future[Any]]:
        """The entry to the committer (its Future), or None with `batch_size 1`."""
        from dropbox import files

        if self.committer is None:
            return None
        commit = _commit_info(path, mode)
        arg = files.UploadSessionFinishArg(cursor=cursor, commit=commit)
        return self.committer.submit(_Commit(arg))

    def _commit_alone(self, cursor: Any, path: str, local_hash: str, mode: str) -> Any:
        """`batch_size 1`: this file's own `upload_session/finish`."""
        from dropbox import exceptions

        commit = _commit_info(path, mode)
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

    def _already_committed(self, path: str, local_hash: str, cause: Exception) -> Any:
        """The session is gone: success if `path` already holds these bytes, else re-upload.

        In "create" mode too: a commit whose answer was lost finds its own file here. (The one
        case it cannot tell apart, the very same bytes already there before, then counts as
        created rather than as FileExistsError; nothing is overwritten either way.)"""
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
