"""Many files through few threads: uploads that wait for their commit without holding a thread.

A file's transfer is written as *steps*: a generator that does its blocking work (HTTP requests)
in whichever thread runs it, and yields a `Future` where it has to wait for something another
thread does (its commit, by the batch committer). `drive` runs steps in the calling thread,
blocking on each Future (a single `put_file`). `Pipeline` runs the steps of many files on
`workers` threads: a file that yields parks without a thread, and is resumed on a worker once its
Future is done, so `workers` bounds the requests in flight while up to `max_in_flight` files are
under way (sent, waiting for their commit). Resumed files go before new ones, so a file that is
done waiting is finished (and counted) before more are started.

Outcomes are collected by the thread that called `run` (DVC's main thread), which reports them
(progress, per-file errors) and shows a status while files wait. Pure mechanism: nothing here
knows about Dropbox or DVC.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Yields the Futures it waits for, is sent their results (or has their errors thrown in).
Steps = Generator["Future[Any]", Any, R]

STATUS_INTERVAL_S = 0.5


def drive(steps: Steps[R]) -> R:
    """Run `steps` to the end in this thread, blocking on every Future it yields."""
    try:
        future = next(steps)
        while True:
            try:
                value = future.result()
            except BaseException as exc:
                future = steps.throw(exc)
            else:
                future = steps.send(value)
    except StopIteration as stop:
        return stop.value


class _Task(Generic[T]):
    __slots__ = ("error", "item", "parked", "steps", "value")

    def __init__(self, item: T):
        self.item = item
        self.steps: Optional[Steps[Any]] = None
        self.parked = False  # has yielded at least once (its entry is handed over)
        self.value: Any = None
        self.error: Optional[BaseException] = None


class Pipeline(Generic[T]):
    """Runs the steps of many items on a few worker threads (see the module's docstring).

    `start(item)` makes an item's steps; `finish(item, result, error)` gets its outcome, in the
    thread that called `run`. `coming(n)` is told how many items may still hand something over
    before their first wait: +1 while the items are not all taken, +1 for each item taken, -1
    when it first waits or ends (the batch committer's `expect`). `status(waiting)` is called
    from `run`'s thread every `status_interval` s with the number of items parked on a Future.
    """

    def __init__(
        self,
        start: Callable[[T], Steps[Any]],
        finish: Callable[[T, Any, Optional[BaseException]], None],
        *,
        workers: int,
        max_in_flight: int,
        coming: Optional[Callable[[int], None]] = None,
        status: Optional[Callable[[int], None]] = None,
        status_interval: float = STATUS_INTERVAL_S,
        name: str = "dropbox-upload",
        clock: Callable[[], float] = time.monotonic,
    ):
        if workers < 1 or max_in_flight < workers:
            raise ValueError("need 1 <= workers <= max_in_flight")
        self._start = start
        self._finish = finish
        self.workers = workers
        self.max_in_flight = max_in_flight
        self._coming = coming or (lambda count: None)
        self._status = status
        self._status_interval = status_interval
        self._name = name
        self._clock = clock
        self._cond = threading.Condition()
        self._ready: collections.deque[_Task[T]] = collections.deque()  # resumed, to run first
        self._done: collections.deque[_Task[T]] = collections.deque()  # ended, to report
        self._items: Iterator[T] = iter(())
        self._exhausted = False
        self._items_error: Optional[BaseException] = None  # what the item iterator raised
        self._worker_error: Optional[BaseException] = None  # what ended a worker thread
        self._in_flight = 0  # taken and not yet reported as ended
        self._parked = 0  # waiting on a Future
        self._cancelled = False
        # Observability for tests and benchmarks.
        self.most_in_flight = 0
        self.most_parked = 0

    # -- the caller's thread -----------------------------------------------------------------

    def run(self, items: Iterable[T]) -> None:
        """Run every item; returns when each one's outcome went to `finish`.

        If `finish` raises (or the thread is interrupted), no new item starts, the workers end
        after their current step, and the exception propagates. Items parked then are left to
        their Futures: what they wait for (a commit) may still land, but they are not reported.
        If the item iterator raises, no new item starts either; the items under way end and are
        reported, then its exception propagates here (it is never lost with a worker thread).
        """
        self._items = iter(items)
        self._coming(1)
        threads = [
            threading.Thread(target=self._work, name=f"{self._name}-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        try:
            self._report_all()
        finally:
            with self._cond:
                self._cancelled = True
                self._cond.notify_all()
            for thread in threads:
                thread.join()
            if not self._exhausted:
                self._coming(-1)

    def _report_all(self) -> None:
        shown, shown_at = 0, -1e18
        while True:
            with self._cond:
                if not self._done and not (self._exhausted and self._in_flight == 0):
                    self._cond.wait(timeout=self._status_interval)
                if self._worker_error is not None:
                    raise self._worker_error  # its task may be lost: waiting could be forever
                ended = list(self._done)
                self._done.clear()
                parked = self._parked
                over = self._exhausted and self._in_flight == len(ended)
                if ended:
                    self._in_flight -= len(ended)
                    self._cond.notify_all()  # room for more items
            for task in ended:
                self._finish(task.item, task.value, task.error)
            if self._status is not None:
                # At most every status_interval (a terminal line costs CPU), and 0 at the end.
                now = self._clock()
                wanted = 0 if over else parked
                if wanted != shown and (over or now - shown_at >= self._status_interval):
                    shown, shown_at = wanted, now
                    self._status(wanted)
            if over:
                if self._items_error is not None:
                    raise self._items_error
                return

    # -- worker threads ----------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while True:
                task = self._next_task()
                if task is None:
                    return
                self._step(task)
        except BaseException as exc:  # e.g. `coming` raised: `run` raises it, waits no more
            with self._cond:
                if self._worker_error is None:
                    self._worker_error = exc
                self._cond.notify_all()

    def _next_task(self) -> Optional[_Task[T]]:
        with self._cond:
            while True:
                if self._cancelled:
                    task = None
                    break
                if self._ready:
                    task = self._ready.popleft()
                    break
                if not self._exhausted and self._in_flight < self.max_in_flight:
                    try:
                        item = next(self._items)
                    except BaseException as exc:
                        # The end of the items, or an error taking one: either way no item
                        # comes after. An error kept here is raised by `run` once the items
                        # under way are reported (the worker lives on to finish its share).
                        if not isinstance(exc, StopIteration):
                            self._items_error = exc
                        self._exhausted = True
                        self._coming(-1)  # now: this thread may wait below for a long time
                        self._cond.notify_all()
                        continue
                    self._in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self._in_flight)
                    self._coming(1)
                    task = _Task(item)
                    break
                if self._exhausted and not self._in_flight:
                    task = None
                    break
                self._cond.wait()
        return task

    def _step(self, task: _Task[T]) -> None:
        """Run one item until it waits on a Future or ends."""
        try:
            if task.steps is None:
                task.steps = self._start(task.item)
                future = next(task.steps)
            elif task.error is not None:
                error, task.error = task.error, None
                future = task.steps.throw(error)
            else:
                value, task.value = task.value, None
                future = task.steps.send(value)
        except StopIteration as stop:
            self._ended(task, stop.value, None)
            return
        except BaseException as exc:  # reported, never lost with the thread (run would hang)
            self._ended(task, None, exc)
            return
        if not task.parked:
            task.parked = True
            self._coming(-1)
        with self._cond:
            self._parked += 1
            self.most_parked = max(self.most_parked, self._parked)
        future.add_done_callback(lambda done: self._resume(task, done))

    def _ended(self, task: _Task[T], value: Any, error: Optional[BaseException]) -> None:
        if not task.parked:
            task.parked = True
            self._coming(-1)
        task.steps = None  # the generator's frame (and what it holds) can go now
        task.value, task.error = value, error
        with self._cond:
            self._done.append(task)
            self._cond.notify_all()

    def _resume(self, task: _Task[T], future: Future[Any]) -> None:
        """A parked item's Future is done (in the thread that completed it): back in line."""
        try:
            task.value = future.result()
        except BaseException as exc:
            task.error = exc
        with self._cond:
            self._parked -= 1
            self._ready.append(task)
            self._cond.notify_all()
