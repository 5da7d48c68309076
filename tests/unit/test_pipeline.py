"""The pipeline (transfer/pipeline.py) and the committer's non-blocking side, with fakes (no I/O).

What is pinned: few worker threads carry many files that wait (parked) at once; the workers
bound the work running at once, `max_in_flight` the files under way; each outcome is reported
once, in the caller's thread, with a failure only for its own file; the committer fills one
batch with entries from far more files than there are workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any, Optional

import pytest

from dvc_dropbox.transfer.batcher import BatchCommitter
from dvc_dropbox.transfer.pipeline import Pipeline, Steps, drive


class Recorder:
    """Counts the steps that run at once (the stand-in for HTTP requests in flight)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def work(self) -> None:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(0.002)
        with self.lock:
            self.running -= 1


def test_drive_sends_results_and_throws_errors_into_the_steps() -> None:
    def steps() -> Generator[Future[Any], Any, str]:
        ok: Future[Any] = Future()
        ok.set_result(2)
        got = yield ok
        bad: Future[Any] = Future()
        bad.set_exception(ValueError("refused"))
        try:
            yield bad
        except ValueError as exc:
            return f"{got} then {exc}"
        return "not reached"

    assert drive(steps()) == "2 then refused"


def test_drive_without_a_wait_returns_the_value() -> None:
    def steps() -> Steps[int]:
        return 7
        yield  # pragma: no cover - makes this a generator

    assert drive(steps()) == 7


def test_few_workers_carry_many_waiting_files_and_report_each_once() -> None:
    batches: list[int] = []

    def commit(entries: list[int]) -> list[int]:
        batches.append(len(entries))
        return [entry * 10 for entry in entries]

    committer: BatchCommitter[int, int] = BatchCommitter(
        commit, batch_size=1000, idle_timeout=30, stream_idle_timeout=30, max_wait=30
    )
    recorder = Recorder()
    caller = threading.get_ident()
    reported: dict[int, tuple[Any, Optional[BaseException]]] = {}
    threads: set[int] = set()

    def start(item: int) -> Steps[int]:
        with committer.uploading():
            recorder.work()
            future = committer.submit(item)
        value = yield future
        return int(value) + 1

    def finish(item: int, value: Any, error: Optional[BaseException]) -> None:
        threads.add(threading.get_ident())
        assert item not in reported
        reported[item] = (value, error)

    statuses: list[int] = []
    pipeline = Pipeline(
        start,
        finish,
        workers=4,
        max_in_flight=1000,
        coming=committer.expect,
        status=statuses.append,
        status_interval=0.01,
    )
    pipeline.run(range(300))
    committer.close()
    assert reported == {i: (i * 10 + 1, None) for i in range(300)}
    assert threads == {caller}  # outcomes are reported in the caller's thread
    assert recorder.most_running <= 4
    # Nothing else was coming only at the very end: all 300 went in one batch.
    assert batches == [300]
    assert pipeline.most_parked > 4
    assert statuses[-1] == 0


def test_max_in_flight_bounds_the_files_under_way() -> None:
    pending: list[Future[Any]] = []
    lock = threading.Lock()

    def start(item: int) -> Steps[int]:
        future: Future[Any] = Future()
        with lock:
            pending.append(future)
        yield future
        return item

    release = threading.Event()

    def resolver() -> None:
        # Resolve waits in rounds, as a committer would, until everything is done.
        while not release.is_set():
            time.sleep(0.005)
            with lock:
                ready, pending[:] = list(pending), []
            for future in ready:
                future.set_result(None)

    thread = threading.Thread(target=resolver, daemon=True)
    thread.start()
    done: list[int] = []
    pipeline = Pipeline(
        start, lambda item, value, error: done.append(value), workers=3, max_in_flight=10
    )
    pipeline.run(range(100))
    release.set()
    thread.join(5)
    assert sorted(done) == list(range(100))
    assert pipeline.most_in_flight <= 10


def test_a_failure_is_reported_for_its_own_file_only() -> None:
    def start(item: int) -> Steps[int]:
        future: Future[Any] = Future()
        if item == 5:
            future.set_exception(OSError("refused"))
        else:
            future.set_result(item)
        value = yield future
        return int(value)

    outcomes: dict[int, Any] = {}

    def finish(item: int, value: Any, error: Optional[BaseException]) -> None:
        outcomes[item] = error if error is not None else value

    Pipeline(start, finish, workers=2, max_in_flight=4).run(range(10))
    assert isinstance(outcomes.pop(5), OSError)
    assert outcomes == {i: i for i in range(10) if i != 5}


def test_an_error_in_finish_stops_new_files_and_propagates() -> None:
    started: list[int] = []

    def start(item: int) -> Steps[int]:
        started.append(item)
        return item
        yield  # pragma: no cover

    def finish(item: int, value: Any, error: Optional[BaseException]) -> None:
        raise RuntimeError("stop")

    pipeline = Pipeline(start, finish, workers=1, max_in_flight=1)
    with pytest.raises(RuntimeError, match="stop"):
        pipeline.run(range(1000))
    assert len(started) < 1000


# Generous: the pipeline's own work here takes milliseconds; on today's main `run` never returns.
RUN_BOUND_S = 20


def _run_bounded(pipeline: Pipeline[int], items: Any) -> Optional[BaseException]:
    """What `pipeline.run(items)` raised (None if it returned), from a thread joined with a
    bound, so that a run that spins fails the test instead of hanging it."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            pipeline.run(items)
        except BaseException as exc:
            raised.append(exc)

    runner = threading.Thread(target=target, name="test-pipeline-run", daemon=True)
    runner.start()
    runner.join(RUN_BOUND_S)
    assert not runner.is_alive(), f"Pipeline.run still running after {RUN_BOUND_S} s"
    return raised[0] if raised else None


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]


class AlwaysRaising:
    """An item iterator that raises on every call (not a generator, which stops after one)."""

    def __init__(self) -> None:
        self.calls = 0

    def __iter__(self) -> AlwaysRaising:
        return self

    def __next__(self) -> int:
        self.calls += 1
        raise OSError("listing the files failed")


def _items_then_error(count: int) -> Generator[int, None, None]:
    yield from range(count)
    raise OSError("listing the files failed")


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("kind", ["generator", "always"])
def test_an_error_in_the_items_reaches_the_caller_and_every_thread_ends(
    workers: int, kind: str
) -> None:
    name = f"test-items-{kind}-{workers}"
    balance = 0
    reported: list[int] = []

    def coming(count: int) -> None:
        nonlocal balance
        balance += count

    def start(item: int) -> Steps[int]:
        future: Future[Any] = Future()
        future.set_result(item)
        value = yield future
        return int(value)

    def finish(item: int, value: Any, error: Optional[BaseException]) -> None:
        assert error is None
        reported.append(value)

    pipeline = Pipeline(start, finish, workers=workers, max_in_flight=4, coming=coming, name=name)
    items = _items_then_error(3) if kind == "generator" else AlwaysRaising()
    error = _run_bounded(pipeline, items)
    assert isinstance(error, OSError) and str(error) == "listing the files failed"
    # The items taken before the error are finished and reported, none twice.
    assert sorted(reported) == ([0, 1, 2] if kind == "generator" else [])
    if isinstance(items, AlwaysRaising):
        assert items.calls == 1  # no worker asks a failed iterator again
    assert balance == 0  # the committer expects nothing more
    assert _threads_named(name) == []


def test_a_worker_that_dies_does_not_leave_run_waiting() -> None:
    # `coming` (the batch committer's `expect`) failing in a worker thread: the task it was
    # ending is never reported, so `run` cannot wait for it; it raises the error instead.
    def coming(count: int) -> None:
        if count < 0:
            raise RuntimeError("committer closed")

    def start(item: int) -> Steps[int]:
        return item
        yield  # pragma: no cover

    name = "test-worker-dies"
    pipeline = Pipeline(
        start, lambda *a: None, workers=2, max_in_flight=2, coming=coming, name=name
    )
    error = _run_bounded(pipeline, range(5))
    assert isinstance(error, RuntimeError) and str(error) == "committer closed"
    assert _threads_named(name) == []


def test_coming_returns_to_zero() -> None:
    balance: list[int] = []
    total = 0

    def coming(count: int) -> None:
        nonlocal total
        total += count
        balance.append(total)

    def start(item: int) -> Steps[int]:
        future: Future[Any] = Future()
        future.set_result(item)
        yield future
        return item

    Pipeline(start, lambda *a: None, workers=3, max_in_flight=6, coming=coming).run(range(50))
    assert total == 0
    assert min(balance) >= 0


def test_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        Pipeline(lambda item: iter(()), lambda *a: None, workers=0, max_in_flight=1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError):
        Pipeline(lambda item: iter(()), lambda *a: None, workers=4, max_in_flight=2)  # type: ignore[arg-type,return-value]


def test_expected_entries_hold_a_partial_batch_back() -> None:
    batches: list[list[str]] = []

    def commit(entries: list[str]) -> list[str]:
        batches.append(list(entries))
        return entries

    committer: BatchCommitter[str, str] = BatchCommitter(
        commit, batch_size=10, idle_timeout=30, stream_idle_timeout=30, max_wait=30
    )
    committer.expect(1)
    first = committer.submit("a")
    time.sleep(0.2)
    assert batches == [] and not first.done()  # one more is expected: the batch waits
    assert committer.waiting == 1
    second = committer.submit("b")
    committer.expect(-1)
    assert first.result(5) == "a" and second.result(5) == "b"
    committer.close()
    assert batches == [["a", "b"]]


def test_submitted_entries_wait_longer_for_their_batch_than_blocked_threads() -> None:
    batches: list[list[str]] = []

    def commit(entries: list[str]) -> list[str]:
        batches.append(list(entries))
        return entries

    committer: BatchCommitter[str, str] = BatchCommitter(
        commit, batch_size=10, idle_timeout=0.05, stream_idle_timeout=30, max_wait=30
    )
    with committer.uploading():  # an upload still sending: only a timeout sends the batch
        future = committer.submit("streamed")
        time.sleep(0.3)
        assert not future.done()  # no thread waits for it: the long idle timeout applies
        blocked = threading.Thread(target=committer.commit, args=("blocking",))
        blocked.start()
        blocked.join(5)  # a thread blocked on its commit: the short idle timeout applies
    assert future.result(5) == "streamed"
    committer.close()
    assert batches == [["streamed", "blocking"]]


def test_a_pull_without_j_takes_the_remotes_jobs() -> None:
    from dvc_objects.fs.base import FileSystem

    from dvc_dropbox.dvc_get import download_workers

    assert download_workers(None, 64) == 64
    assert download_workers(FileSystem._JOBS, 64) == 64  # dvc-data's "no -j" for a pull
    assert download_workers(FileSystem._JOBS + 1, 64) == FileSystem._JOBS + 1
    assert download_workers(3, 64) == 3
