"""Packed small-file uploads (issue 17 item 1, design.md decision 15).

At Dropbox's limits a request is the cost, not a byte. A file of at most `PACK_FILE_LIMIT` bytes
is read once into memory, hashed once for its own `content_hash` (checked against the commit's
metadata; never again on a retry), and handed to the one *packer* of its client, which sends many
such files together. The pack's body is hashed once more for the request's `content_hash`: its
4 MiB blocks do not line up with the files, so it cannot be built from their hashes.

- `upload_session/start_batch` opens the sessions, up to 1,000 per call, for every file waiting
  in the packer at once (a pool: a push of 1,200 files opens them in 2 calls, not one per pack);
- one `upload_session/append_batch` per pack carries the bytes of up to `PACK_ENTRIES` (500,
  Dropbox's maximum) files, concatenated, at most `PACK_BODY_LIMIT` bytes, each entry with
  `close=True`, the body with its own `content_hash`;
- each file's commit entry then goes to the batch committer (`finish_batch_v2`), as before.

The packer is a `BatchCommitter` of its own (one pack in flight, filled like the commit batches:
dvc_put.py tells it how many files are still coming). A pack of one file, with nothing else to
pack it with (a single `put_file`, the `.dir` listing after a push), is one `upload_session/start`
instead: one request rather than two.

Failures: an entry the answer refuses (`not_found`, `incorrect_offset`, `closed`, `too_large`,
...) is sent again on its own in a later pack, with a new session; never the whole pack. A call
that fails as a whole without touching any session (`length_mismatch`, `content_hash_mismatch`)
is sent again from the same, still open, sessions, `MAX_PACK_RESENDS` times; 5xx and dropped
connections are retried by the pacer with the same sessions, and after a lost answer the retry
finds its entries `closed` (or at their end) by the first attempt: those count as sent. If the
account refuses the batch routes (400 `BadInputError` such as "Unknown API function", a 409
`other`), the run falls back to per-file sessions (`PacksRefused`), with one debug (`-v`) line.

Memory: the bytes of files waiting in the packer (and the one pack in flight) are bounded by
`PACK_MEMORY` (a file is read only once its bytes fit), plus the body being sent, at most
`PACK_BODY_LIMIT`: at most 96 MiB of file data at once, whatever the number of files.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import DropboxRemoteError
from ..options import MiB
from .batcher import BatchCommitter, RetryEntry
from .content_hash import content_hash
from .pacer import Pacer, logger
from .pipeline import Steps
from .sources import Source

if TYPE_CHECKING:
    from .uploads import Uploads

# Files up to one content_hash block: each is one block digest, so its hash is one pass, and a
# pack of them is far below the 150 MiB body limit. Larger files keep their own sessions.
PACK_FILE_LIMIT = 4 * MiB
PACK_ENTRIES = 500  # UploadSessionAppendBatchArg.entries: max_items=500
START_BATCH_LIMIT = 1000  # UploadSessionStartBatchArg.num_sessions: 1..1000
PACK_BODY_LIMIT = 32 * MiB  # per append_batch (Dropbox takes 150 MiB); sent one at a time
PACK_MEMORY = 64 * MiB  # bytes of files read and not yet sent, in all packs waiting
MAX_PACK_RESENDS = 2  # a pack refused as a whole (length or hash mismatch) is sent again
MAX_ENTRY_ATTEMPTS = 4  # an entry refused on its own: packs it is sent in, in all


class PacksRefused(DropboxRemoteError):
    """The account refuses the batch session routes: this file goes up in its own session."""


class PackEntry:
    """One file's bytes waiting for (or in) a pack."""

    __slots__ = ("data", "session_id")

    def __init__(self, data: bytes):
        self.data = data
        self.session_id: Optional[str] = None  # opened by start_batch, dropped if refused


class _ByteBudget:
    """Bytes held at once; a file bigger than the whole budget still goes, alone."""

    def __init__(self, limit: int, check: Callable[[], None] = lambda: None):
        self.limit = limit
        self.held = 0
        self.most_held = 0
        self._cond = threading.Condition()
        self._check = check  # raises once the transfer is cancelled (transfer/cancel.py)

    def acquire(self, size: int) -> None:
        with self._cond:
            while self.held and self.held + size > self.limit:
                # A short wait: Ctrl-C or a one-cause stop ends a wait for room within a second.
                self._check()
                self._cond.wait(timeout=0.25)
            self.held += size
            self.most_held = max(self.most_held, self.held)

    def release(self, size: int) -> None:
        with self._cond:
            self.held -= size
            self._cond.notify_all()

    @contextlib.contextmanager
    def hold(self, size: int) -> Iterator[None]:
        self.acquire(size)
        try:
            yield
        finally:
            self.release(size)


class _Refused(Exception):
    """Inside the packer: the batch routes are refused for this account."""


class Packs:
    """The packer of one client (see the module's docstring)."""

    def __init__(
        self,
        client: Any,
        pacer: Pacer,
        *,
        file_limit: int = PACK_FILE_LIMIT,
        entries: int = PACK_ENTRIES,
        body_limit: int = PACK_BODY_LIMIT,
        memory: int = PACK_MEMORY,
        idle_timeout: float = 0.2,
        max_wait: float = 2.0,
    ):
        self.client = client
        self.pacer = pacer
        self.file_limit = file_limit
        self.refused = False
        self._pool: list[str] = []  # open sessions from start_batch, not yet used
        self._last_ask = 0  # sessions the last start_batch asked for
        self._lock = threading.Lock()
        self.budget = _ByteBudget(memory, check=lambda: pacer.cancels.current.check())
        self.sender: BatchCommitter[PackEntry, Any] = BatchCommitter(
            self._send_pack,
            batch_size=entries,
            idle_timeout=idle_timeout,
            max_wait=max_wait,
            max_attempts=MAX_ENTRY_ATTEMPTS,
            max_entry_wait=pacer.max_total_wait,
            report=pacer.report_commit_wait,
            weight=lambda entry: len(entry.data),
            max_weight=body_limit,
        )
        # Observability for tests and benchmarks.
        self.packs_sent = 0
        self.entries_appended = 0
        self.entry_resends = 0

    def takes(self, size: Optional[int]) -> bool:
        """Whether a file of `size` bytes goes in a pack."""
        return size is not None and size <= self.file_limit and not self.refused

    def expect(self, count: int) -> None:
        self.sender.expect(count)

    def submit(self, data: bytes) -> Future[Any]:
        """Hand over one file's bytes, taken from the budget by `budget.acquire(len(data))`;
        the Future gives its closed session's cursor. The packer drops the bytes and gives
        their budget back as soon as the entry is answered, in its own thread: a file waiting
        for a pack holds no worker, and the workers blocked in `acquire` need none of them
        to resume (otherwise 64 workers waiting for room could wait for each other)."""
        size = len(data)
        future = self.sender.submit(PackEntry(data))
        future.add_done_callback(lambda _: self.budget.release(size))
        return future

    def close(self) -> None:
        self.sender.close()

    # -- the packer's thread -----------------------------------------------------------------

    def _send_pack(self, entries: list[PackEntry]) -> list[Any]:
        try:
            if len(entries) == 1 and entries[0].session_id is None and not self.sender.waiting - 1:
                return [self._send_alone(entries[0])]
            self._open_sessions(entries)
            return self._append(entries)
        except _Refused as refused:
            error = PacksRefused(str(refused))
            return [error for _ in entries]

    def _send_alone(self, entry: PackEntry) -> Any:
        from dropbox import files

        result = self.pacer.call(
            self.client.files_upload_session_start,
            entry.data,
            close=True,
            content_hash=content_hash(entry.data),
        )
        return files.UploadSessionCursor(session_id=result.session_id, offset=len(entry.data))

    def _open_sessions(self, entries: list[PackEntry]) -> None:
        """A session for every entry without one: from the pool, else one `start_batch` for
        all the files waiting in the packer or still coming to it (up to 1,000), so later packs
        need none.

        The packer cannot know how many files a push has (DVC's list streams in), and the first
        pack may go before most are read (a loaded machine): each call therefore asks for at
        least twice the last one, so a push costs a few calls more than ⌈files / 1,000⌉, never
        one per pack. Sessions left unused cost nothing and expire on their own."""
        from dropbox import exceptions

        needed = [e for e in entries if e.session_id is None]
        if len(self._pool) < len(needed):
            waiting = self.sender.waiting + self.sender.coming
            short = max(len(needed), waiting) - len(self._pool)
            wanted = min(START_BATCH_LIMIT, max(short, 2 * self._last_ask))
            self._last_ask = wanted
            try:
                result = self.pacer.call(self.client.files_upload_session_start_batch, wanted)
            except (exceptions.BadInputError, exceptions.ApiError) as exc:
                raise self._refuse("start_batch", exc) from None
            self._pool.extend(result.session_ids)
            if len(self._pool) < len(needed):
                raise DropboxRemoteError(
                    f"upload_session/start_batch answered {len(result.session_ids)} sessions "
                    f"for {wanted}"
                )
        for entry in needed:
            entry.session_id = self._pool.pop()

    def _append(self, entries: list[PackEntry]) -> list[Any]:
        """One `append_batch` for the pack (sent again as a whole if it never reached a
        session); one outcome per entry."""
        from dropbox import exceptions, files

        body = b"".join(e.data for e in entries)
        arg = [
            files.UploadSessionAppendBatchArgEntry(
                cursor=files.UploadSessionCursor(session_id=e.session_id, offset=0),
                length=len(e.data),
                close=True,
            )
            for e in entries
        ]
        body_hash = content_hash(body)
        attempts = 0

        def append_batch(*args: Any, **kwargs: Any) -> Any:
            nonlocal attempts
            attempts += 1  # the pacer's retries included: an earlier one may have landed
            return self.client.files_upload_session_append_batch(*args, **kwargs)

        append_batch.__name__ = "files_upload_session_append_batch"
        for resend in range(MAX_PACK_RESENDS + 1):
            try:
                result = self.pacer.call(append_batch, body, arg, content_hash=body_hash)
                break
            except exceptions.BadInputError as exc:
                raise self._refuse("append_batch", exc) from None
            except exceptions.ApiError as exc:
                error = exc.error
                if getattr(error, "is_other", lambda: False)():
                    raise self._refuse("append_batch", exc) from None
                whole = error.is_length_mismatch() or error.is_content_hash_mismatch()
                if not whole or resend == MAX_PACK_RESENDS:
                    raise
                # Nothing was appended: the same sessions take the same bytes again.
                logger.debug("Dropbox: append_batch refused as a whole (%s), sending again", exc)
        self.packs_sent += 1
        del body
        if len(result.entries) != len(entries):
            raise DropboxRemoteError(
                f"append_batch answered {len(result.entries)} entries for {len(entries)}"
            )
        outcomes = [
            self._outcome(entry, item, retried=attempts > 1)
            for entry, item in zip(entries, result.entries)
        ]
        for entry, outcome in zip(entries, outcomes):
            if not isinstance(outcome, RetryEntry):
                entry.data = b""  # on the server: the batcher keeps the entry a little longer
        return outcomes

    def _outcome(self, entry: PackEntry, item: Any, *, retried: bool) -> Any:
        from dropbox import files

        from .. import sdk_errors

        cursor = files.UploadSessionCursor(session_id=entry.session_id, offset=len(entry.data))
        if item.is_success():
            self.entries_appended += 1
            return cursor
        failure = item.get_failure()
        landed = failure.is_closed() or (
            failure.is_incorrect_offset()
            and failure.get_incorrect_offset().correct_offset == len(entry.data)
        )
        if retried and landed:
            self.entries_appended += 1
            return cursor  # an attempt whose answer was lost appended and closed it
        # This entry alone goes again, in a later pack, with a new session.
        entry.session_id = None
        self.entry_resends += 1
        reason = f"append_batch entry {sdk_errors.summary(failure)}"
        return RetryEntry(sdk_errors.api_error(failure), delay=0.1, reason=reason)

    def _refuse(self, route: str, exc: BaseException) -> _Refused:
        with self._lock:
            first, self.refused = not self.refused, True
        if first:
            logger.debug(
                "Dropbox refused upload_session/%s for this account (%s): uploading each small "
                "file in its own session for the rest of this run",
                route,
                type(exc).__name__,
            )
        self._pool.clear()
        return _Refused(f"Dropbox refused upload_session/{route}")


# -- one small file's steps (Uploads.upload_file_steps) -------------------------------------


def packed_upload_steps(
    up: Uploads,
    lpath: str,
    size: int,
    path: str,
    progress: Any,
    on_sent: Optional[Callable[[], None]],
    mode: str,
) -> Steps[Any]:
    """A small file through a pack (packs.py): read and hashed once, its bytes wait for
    their pack without a thread, then its commit entry goes to the committer. `size` is the
    one the packing was decided on: exactly those bytes are read (else SourceChanged)."""
    from .uploads import SessionGone  # uploads.py imports this module

    assert up.packs is not None and up.committer is not None
    progress.callback.set_size(size)
    packs = up.packs
    packs.budget.acquire(size)  # given back by the packer once the bytes are sent
    try:
        with open(lpath, "rb") as fobj:
            data = Source(fobj, lpath).read_announced(size, 0, size)
        local_hash = content_hash(data)
        sent = packs.submit(data)
    except BaseException:
        packs.budget.release(size)
        raise
    del data  # only the packer holds the bytes while the file waits
    # Its commit entry comes once the pack is sent: the committer waits for it.
    up.committer.expect(1)
    handed = None
    try:
        try:
            cursor = yield sent
        except PacksRefused:
            pass  # below, once the committer no longer waits for this file's entry
        else:
            progress.advance_to(size)
            handed = up._hand_over(cursor, path, mode)
    finally:
        up.committer.expect(-1)
    if handed is None:
        # The account refuses packs: this file (read again) in its own session.
        callback = progress.callback
        again = up.upload_file_steps(lpath, path, callback, on_sent, mode=mode, pack=False)
        return (yield from again)
    if on_sent is not None:
        on_sent()
    try:
        metadata = yield handed
    except SessionGone as exc:
        try:
            metadata = up._already_committed(path, local_hash, exc)
        except SessionGone:
            # Its session was lost: this file goes up again in its own session.
            logger.debug("Dropbox: upload session for %s was lost, uploading again", path)
            again = up.upload_file_steps(lpath, path, progress.callback, mode=mode, pack=False)
            return (yield from again)
    return up._verified(metadata, local_hash, path)
