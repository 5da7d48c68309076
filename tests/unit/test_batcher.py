"""Unit tests of the batch committer's pure logic with a fake commit function (no I/O)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dvc_dropbox.transfer.batcher import BatchCommitter, RetryEntry


class FakeCommit:
    """Records batches; answers each entry with `done:<entry>` unless told otherwise."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.retry_once: set[Any] = set()
        self.fail: set[Any] = set()
        self.gate = gate
        self._lock = threading.Lock()

    def __call__(self, entries: list[Any]) -> list[Any]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.batches.append(list(entries))
        if self.gate is not None:
            self.gate.wait(10)
        outcomes: list[Any] = []
        for entry in entries:
            if entry in self.retry_once:
                self.retry_once.discard(entry)
                outcomes.append(RetryEntry(RuntimeError("busy"), delay=0.01, reason="busy"))
            elif entry in self.fail:
                outcomes.append(ValueError(f"bad {entry}"))
            else:
                outcomes.append(f"done:{entry}")
        with self._lock:
            self.in_flight -= 1
        return outcomes


def run_uploads(committer: BatchCommitter[Any, Any], items: list[Any], jobs: int) -> list[Any]:
    def upload(item: Any) -> Any:
        with committer.uploading():
            return committer.commit(item)

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(upload, items))


def test_each_commit_gets_its_own_result_in_few_batches() -> None:
    fake = FakeCommit()
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=1000, idle_timeout=5)
    results = run_uploads(committer, list(range(200)), jobs=16)
    committer.close()
    assert results == [f"done:{i}" for i in range(200)]
    assert sorted(e for batch in fake.batches for e in batch) == list(range(200))
    assert fake.max_in_flight == 1  # serial batch commits
    # Uploads all wait at once, so batches hold many entries (never one per file).
    assert len(fake.batches) < 200 / 4


def test_flushes_at_once_when_every_upload_waits() -> None:
    """No idle wait: a lone upload is committed without waiting for the (long) idle timeout."""
    fake = FakeCommit()
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=1000, idle_timeout=600)
    done = threading.Event()

    def lone() -> None:
        with committer.uploading():
            committer.commit("only")
        done.set()

    thread = threading.Thread(target=lone)
    thread.start()
    assert done.wait(30), "the lone entry was held back although nothing else was coming"
    thread.join()
    committer.close()
    assert fake.batches == [["only"]]


def test_waits_for_uploads_still_in_progress() -> None:
    fake = FakeCommit()
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=1000, idle_timeout=600)
    second_may_commit = threading.Event()
    results: list[Any] = []

    def first() -> None:
        with committer.uploading():
            results.append(committer.commit("a"))

    def second(started: threading.Event) -> None:
        with committer.uploading():
            started.set()
            second_may_commit.wait(10)
            results.append(committer.commit("b"))

    started = threading.Event()
    t2 = threading.Thread(target=second, args=(started,))
    t2.start()
    assert started.wait(10)
    t1 = threading.Thread(target=first)
    t1.start()
    # "a" must not be committed alone while "b" is still uploading.
    t1.join(0.3)
    assert fake.batches == []
    second_may_commit.set()
    t1.join(10)
    t2.join(10)
    committer.close()
    assert fake.batches == [["a", "b"]]
    assert sorted(results) == ["done:a", "done:b"]


def test_idle_timeout_flushes_when_an_upload_is_slow() -> None:
    fake = FakeCommit()
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=1000, idle_timeout=0.05)
    release = threading.Event()

    def slow() -> None:
        with committer.uploading():
            release.wait(30)

    blocker = threading.Thread(target=slow)
    blocker.start()
    try:
        with committer.uploading():
            assert committer.commit("x") == "done:x"
    finally:
        release.set()
        blocker.join(10)
        committer.close()


def test_batch_size_caps_each_call() -> None:
    fake = FakeCommit()
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=7, idle_timeout=5)
    run_uploads(committer, list(range(50)), jobs=20)
    committer.close()
    assert all(len(batch) <= 7 for batch in fake.batches)
    assert sum(len(batch) for batch in fake.batches) == 50


def test_retry_entry_commits_again_without_the_caller_noticing() -> None:
    fake = FakeCommit()
    fake.retry_once = {3, 5}
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=1000, idle_timeout=5)
    results = run_uploads(committer, list(range(10)), jobs=10)
    committer.close()
    assert results == [f"done:{i}" for i in range(10)]
    committed = [e for batch in fake.batches for e in batch]
    assert committed.count(3) == 2 and committed.count(5) == 2
    assert committer.entry_retries == 2


def test_retries_are_bounded() -> None:
    class AlwaysBusy(FakeCommit):
        def __call__(self, entries: list[Any]) -> list[Any]:
            self.batches.append(list(entries))
            return [RetryEntry(RuntimeError("still busy"), delay=0.001) for _ in entries]

    fake = AlwaysBusy()
    committer: BatchCommitter[Any, Any] = BatchCommitter(
        fake, batch_size=10, idle_timeout=5, max_attempts=3
    )
    with pytest.raises(RuntimeError, match="still busy"):
        committer.commit("x")
    committer.close()
    assert len(fake.batches) == 3


def test_entry_failure_and_whole_call_failure() -> None:
    fake = FakeCommit()
    fake.fail = {"bad"}
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=10, idle_timeout=5)
    with pytest.raises(ValueError, match="bad bad"):
        committer.commit("bad")
    assert committer.commit("good") == "done:good"
    committer.close()

    def broken(entries: list[Any]) -> list[Any]:
        raise OSError("network down")

    committer = BatchCommitter(broken, batch_size=10, idle_timeout=5)
    with pytest.raises(OSError, match="network down"):
        committer.commit("x")
    committer.close()


def test_one_batch_in_flight_while_others_queue() -> None:
    gate = threading.Event()
    fake = FakeCommit(gate)
    committer: BatchCommitter[Any, Any] = BatchCommitter(fake, batch_size=1000, idle_timeout=0.01)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(committer.commit, i) for i in range(8)]
        for _ in range(200):
            if fake.batches:
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.1)
        gate.set()
        results = sorted(f.result(30) for f in futures)
    committer.close()
    assert fake.max_in_flight == 1
    assert results == sorted(f"done:{i}" for i in range(8))


def test_rejects_bad_batch_size() -> None:
    with pytest.raises(ValueError):
        BatchCommitter(FakeCommit(), batch_size=0)
    with pytest.raises(ValueError):
        BatchCommitter(FakeCommit(), batch_size=1001)
