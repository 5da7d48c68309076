"""The batch committer: many uploaders, one serial committer (design.md decision 5).

Dropbox serialises commits per namespace, so parallel single-file commits collide. Uploaders send
their bytes in parallel (no lock), then hand a finish entry to the one committer of their client
and wait for *their own* entry's result ("sync" batching). The committer sends up to `batch_size`
entries per call, one call in flight at a time.

When to send: as soon as every upload in progress is waiting for a commit (nothing else is coming,
so waiting longer only adds latency), when `batch_size` entries are ready, when no new entry came
for `idle_timeout` (the uploads still busy are slow, e.g. a big file: they must not hold the others
back), or at the latest `max_wait` after the oldest entry became sendable.
Uploads announce themselves with `uploading()` so the committer can count them. Right after a
batch returns, its threads need a moment to start their next upload: until each of them has
done so (or `linger` seconds passed) they still count as coming, so a round of uploads stays one
batch instead of splitting in two.

Two ways to hand an entry over: `commit` blocks the calling thread until that entry's own result
(a single `put_file`), `submit` returns a `Future` at once, so the thread that sent the bytes can
send the next file while the entry waits (`dvc push`, transfer/pipeline.py: one batch then holds
far more entries than there are uploads in flight). A pipeline announces the entries it will hand
over with `expect`, so the committer does not send a partial batch while more are coming.

This module is pure logic: the commit call and the per-entry retry decision come from the caller
(`uploads.py` maps them to `upload_session/finish_batch_v2`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Callable, Generic, Optional, TypeVar

E = TypeVar("E")
R = TypeVar("R")

logger = logging.getLogger("dvc.dvc_dropbox")

# The committer thread exits after this long without work; the next commit starts a new one.
THREAD_IDLE_EXIT_S = 5.0


class RetryEntry(Exception):
    """Returned (not raised) by a commit function for an entry to commit again later.

    The entry's bytes are already on the server; only its commit is repeated, in a later batch.
    """

    def __init__(self, cause: BaseException, delay: float = 1.0, reason: str = "retry"):
        super().__init__(str(cause))
        self.cause = cause
        self.delay = delay
        self.reason = reason


def _log_wait(reason: str, delay: float) -> None:
    """Without a shared report (unit use): every wait at debug level."""
    logger.debug("Dropbox: %s; committing again in %.1f s", reason, delay)


class CommitterClosed(RuntimeError):
    """The committer was closed while an entry was waiting."""


class _Pending(Generic[E]):
    __slots__ = (
        "attempts",
        "entry",
        "future",
        "not_before",
        "queued_at",
        "resolved",
        "thread",
        "waited",
    )

    def __init__(self, entry: E, now: float, thread: Optional[int]):
        self.entry = entry
        # The thread blocked on this entry (`commit`), None for `submit`: only a blocked
        # thread comes back to upload again right after its batch returns.
        self.thread = thread
        self.queued_at = now
        self.not_before = now
        self.attempts = 0
        self.waited = 0.0
        self.resolved = False  # under the committer's lock: resolved once (see fail_queued)
        self.future: Future[Any] = Future()


CommitFn = Callable[[list[E]], Sequence[Any]]


class BatchCommitter(Generic[E, R]):
    """Collects entries from many threads and commits them in serial batches.

    `commit_batch(entries)` returns one outcome per entry, in order: the result, an exception
    (that entry fails), or a `RetryEntry` (commit that entry again after its delay, doubling up to
    `max_retry_delay`, for at most `max_entry_wait` seconds of waits in total per entry, and
    `max_attempts` times if given). Waits go to `report(reason, delay)` (the pacer's WaitReport:
    a round of entries refused together is one message, not one per entry).
    If `commit_batch` raises, every entry of that batch fails with the exception.
    """

    def __init__(
        self,
        commit_batch: CommitFn[E],
        *,
        batch_size: int,
        idle_timeout: float = 0.2,
        stream_idle_timeout: float = 2.0,
        max_wait: float = 2.0,
        linger: float = 0.1,
        max_attempts: Optional[int] = None,
        max_retry_delay: float = 30.0,
        max_entry_wait: float = 1800.0,
        report: Optional[Callable[[str, float], None]] = None,
        weight: Optional[Callable[[E], int]] = None,
        max_weight: Optional[int] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self._commit_batch = commit_batch
        self.batch_size = batch_size
        self.idle_timeout = idle_timeout
        # With no thread blocked on a commit (only `submit`ted entries) a pause in arrivals
        # costs no thread, only the time until the files count: wait longer for the batch.
        self.stream_idle_timeout = max(idle_timeout, stream_idle_timeout)
        self.max_wait = max_wait
        self.linger = linger
        self.max_attempts = max_attempts
        self.max_retry_delay = max_retry_delay
        self.max_entry_wait = max_entry_wait
        self._report = report or _log_wait
        # A batch is also full at `max_weight` (packs: the bytes of one request body); an entry
        # heavier than that still goes, alone.
        self._weight = weight
        self.max_weight = max_weight
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: list[_Pending[E]] = []  # waiting to be sent, in arrival order
        self._active = 0  # uploads in progress (inside `uploading()`) + entries `expect`ed
        self._blocked_inside = 0  # of those, threads blocked in `commit` (not sending anything)
        self._inside = threading.local()  # per thread: depth of `uploading()`
        self._waiting = 0  # entries handed over and not yet resolved
        self._blocking = 0  # of those, handed over by `commit` (a thread waits for each)
        self._in_flight = False
        self._sending: list[_Pending[E]] = []  # the batch in flight
        self._lingering_until = 0.0  # after a batch: its uploaders may come back until then
        self._returning: set[int] = set()  # threads whose entry was just resolved
        self._last_done = -1e18  # when the last batch returned
        self._last_arrival = -1e18  # when the newest entry was handed over
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        # Observability for tests and benchmarks.
        self.batches_sent = 0
        self.batch_sizes: list[int] = []
        self.entry_retries = 0

    # -- uploader side -----------------------------------------------------------------------

    @contextlib.contextmanager
    def uploading(self) -> Iterator[None]:
        """Mark an upload as in progress: the committer waits for it before a partial batch.

        Hand the entry over (`submit`/`commit`) inside, so there is no moment in which the
        upload is neither in progress nor waiting (the committer would send without it).
        """
        depth = getattr(self._inside, "depth", 0)
        self._inside.depth = depth + 1
        with self._cond:
            self._active += 1
            self._returning.discard(threading.get_ident())
        try:
            yield
        finally:
            self._inside.depth = depth
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def expect(self, count: int) -> None:
        """`count` more entries are on their way (negative: that many fewer), from uploads that
        have not called `uploading()` yet: the committer keeps filling the batch for them."""
        with self._cond:
            self._active += count
            self._cond.notify_all()

    def submit(self, entry: E) -> Future[R]:
        """Hand over one entry; its own result (or error) arrives through the returned Future.

        The Future's callbacks run in the committer's thread: they must only hand work on.
        """
        return self._enqueue(entry, None).future

    def commit(self, entry: E) -> R:
        """Hand over one entry and block until its own result (or error) is known."""
        pending = self._enqueue(entry, threading.get_ident())
        pending.future.add_done_callback(self._unblocked)
        inside = getattr(self._inside, "depth", 0) > 0
        if inside:
            with self._cond:
                self._blocked_inside += 1
                self._cond.notify_all()
        try:
            return pending.future.result()
        finally:
            if inside:
                with self._cond:
                    self._blocked_inside -= 1

    def _enqueue(self, entry: E, thread: Optional[int]) -> _Pending[E]:
        with self._cond:
            if self._closed:
                raise CommitterClosed("the batch committer is closed")
            pending: _Pending[E] = _Pending(entry, self._clock(), thread)
            self._last_arrival = pending.queued_at
            self._queue.append(pending)
            self._waiting += 1
            if thread is not None:
                self._blocking += 1
            self._ensure_thread()
            self._cond.notify_all()
        return pending

    def _unblocked(self, future: Future[Any]) -> None:
        with self._cond:
            self._blocking -= 1

    def _idle_timeout(self) -> float:
        return self.idle_timeout if self._blocking else self.stream_idle_timeout

    @property
    def waiting(self) -> int:
        """Entries handed over whose commit has not been answered yet (for progress)."""
        return self._waiting

    @property
    def coming(self) -> int:
        """Uploads in progress or announced (`expect`): entries that may still be handed over."""
        return max(0, self._active)

    def fail_queued(self, error: BaseException) -> None:
        """Fail every entry handed over with `error`, at once: the transfer was cancelled
        (transfer/cancel.py). Those waiting to be sent (or waiting out a retry delay) are never
        sent; those of the batch in flight stop being waited for (its call, up to a commit's
        read timeout, ends in the committer's thread; what it commits is whole files). The
        committer stays open for the next transfer."""
        with self._cond:
            queued, self._queue = self._queue, []
            queued += self._sending
            self._cond.notify_all()
        for pending in queued:
            self._resolve(pending, error=error)

    def close(self) -> None:
        """Fail whatever still waits and stop the committer thread (idempotent)."""
        with self._cond:
            self._closed = True
            queued, self._queue = self._queue, []
            self._cond.notify_all()
            thread = self._thread
        for pending in queued:
            self._resolve(pending, error=CommitterClosed("the batch committer was closed"))
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    # -- committer side ----------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="dropbox-batch-committer", daemon=True
            )
            self._thread.start()

    def _next_batch(self) -> Optional[list[_Pending[E]]]:
        """Under the lock: the entries to send now (taken off the queue), or None."""
        now = self._clock()
        ready = [p for p in self._queue if p.not_before <= now]
        if not ready:
            return None
        returning = bool(self._returning) and now < self._lingering_until
        # Nothing else is coming: no upload is sending bytes (threads blocked in `commit` inside
        # `uploading()` send nothing) and no pipeline expects more entries.
        everyone_waiting = self._active - self._blocked_inside <= 0 and not returning
        # Time spent behind an in-flight batch counts neither as idle nor as waiting.
        oldest = max(min(p.queued_at for p in ready), self._last_done)
        newest = max(self._last_arrival, self._last_done)
        batch = self._take(ready)
        if (
            len(ready) >= self.batch_size
            or len(batch) < len(ready)
            or everyone_waiting
            or now - newest >= self._idle_timeout()
            or now - oldest >= self.max_wait
            or self._closed
        ):
            chosen = set(map(id, batch))
            self._queue = [p for p in self._queue if id(p) not in chosen]
            return batch
        return None

    def _take(self, ready: list[_Pending[E]]) -> list[_Pending[E]]:
        """The first ready entries that fit one batch: `batch_size` of them, within `max_weight`
        (at least one)."""
        batch = ready[: self.batch_size]
        if self._weight is None or self.max_weight is None:
            return batch
        total = 0
        for count, pending in enumerate(batch):
            total += self._weight(pending.entry)
            if count and total > self.max_weight:
                return batch[:count]
        return batch

    def _wait_time(self) -> float:
        now = self._clock()
        deadlines = [THREAD_IDLE_EXIT_S + now]
        if self._returning and self._lingering_until > now:
            deadlines.append(self._lingering_until)
        for p in self._queue:
            if p.not_before > now:
                deadlines.append(p.not_before)
            else:
                deadlines.append(max(p.queued_at, self._last_done) + self.max_wait)
        if self._queue:
            deadlines.append(max(self._last_arrival, self._last_done) + self._idle_timeout())
        return max(0.001, min(deadlines) - now)

    def _run(self) -> None:
        idle_since = self._clock()
        while True:
            with self._cond:
                batch = self._next_batch()
                while batch is None:
                    if self._closed:
                        self._thread = None
                        return
                    if not self._queue and self._clock() - idle_since >= THREAD_IDLE_EXIT_S:
                        self._thread = None  # a later commit starts a fresh thread
                        return
                    self._cond.wait(timeout=self._wait_time())
                    batch = self._next_batch()
                self._in_flight = True
                self._sending = batch
            try:
                self._send(batch)
            finally:
                with self._cond:
                    self._in_flight = False
                    self._sending = []
                    idle_since = self._last_done = self._clock()
                    # Threads that will likely upload again; a lone uploader never waits for
                    # itself (it is the one committing next).
                    resolved = {
                        p.thread for p in batch if p.thread is not None and p.future.done()
                    }
                    self._returning = resolved if len(resolved) > 1 else set()
                    self._lingering_until = idle_since + self.linger
                    self._cond.notify_all()

    def _send(self, batch: list[_Pending[E]]) -> None:
        self.batches_sent += 1
        self.batch_sizes.append(len(batch))
        try:
            outcomes = list(self._commit_batch([p.entry for p in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(
                    f"batch commit returned {len(outcomes)} results for {len(batch)} entries"
                )
        except BaseException as exc:  # the whole call failed: every entry fails with it
            for pending in batch:
                self._resolve(pending, error=exc)
            return
        # One clock reading for the whole batch: entries retried with the same delay become due
        # together and go out in one batch again (not one by one as each becomes ready).
        answered = self._clock()
        for pending, outcome in zip(batch, outcomes):
            if isinstance(outcome, RetryEntry):
                self._retry(pending, outcome, answered)
            elif isinstance(outcome, BaseException):
                self._resolve(pending, error=outcome)
            else:
                self._resolve(pending, result=outcome)

    def _retry(self, pending: _Pending[E], retry: RetryEntry, answered: float) -> None:
        if pending.resolved:
            return  # failed meanwhile (a cancelled transfer): not committed again
        pending.attempts += 1
        delay = min(self.max_retry_delay, retry.delay * (2 ** min(pending.attempts - 1, 10)))
        if (self.max_attempts is not None and pending.attempts >= self.max_attempts) or (
            pending.waited + delay > self.max_entry_wait
        ):
            self._resolve(pending, error=retry.cause)
            return
        pending.waited += delay
        self._report(retry.reason, delay)
        with self._cond:
            self.entry_retries += 1
            if self._closed:
                error: BaseException = CommitterClosed("the batch committer was closed")
            else:
                pending.not_before = answered + delay
                pending.queued_at = pending.not_before
                self._queue.append(pending)
                self._cond.notify_all()
                return
        self._resolve(pending, error=error)

    def _resolve(
        self,
        pending: _Pending[E],
        *,
        result: Any = None,
        error: Optional[BaseException] = None,
    ) -> None:
        with self._cond:
            if pending.resolved:
                return
            pending.resolved = True
            self._waiting -= 1
            self._cond.notify_all()
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result)
