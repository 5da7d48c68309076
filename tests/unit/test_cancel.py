"""One cancel event per transfer (issue 16 item 7, design.md decision 20): every wait ends at once.

Real threads and real (short) time: a wait of minutes must end within a fraction of a second of
the cancel. No I/O.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from dropbox import auth, exceptions

from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer import fatal
from dvc_dropbox.transfer.batcher import BatchCommitter, RetryEntry
from dvc_dropbox.transfer.cancel import Cancels, TransferCancelled
from dvc_dropbox.transfer.pacer import Pacer

CONTENTION = auth.RateLimitReason.too_many_write_operations
# Every bound below: how long a cancelled wait may take to end (the promise is "at once").
ENDS_WITHIN_S = 2.0


def in_thread(fn: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def refusals(retry_after: float) -> Any:
    def fn() -> str:
        raise exceptions.RateLimitError("req", auth.RateLimitError(CONTENTION, retry_after), 300)

    return fn


def test_a_300_s_retry_after_ends_when_the_transfer_is_cancelled() -> None:
    pacer = Pacer(classify)  # real sleeps
    with pacer.cancels.transfer() as cancel:
        thread, errors = in_thread(lambda: pacer.call(refusals(300)))
        time.sleep(0.3)
        assert thread.is_alive()  # waiting out the 300 s
        started = time.monotonic()
        cancel.set("interrupted")
        thread.join(ENDS_WITHIN_S)
        assert not thread.is_alive()
        assert time.monotonic() - started < ENDS_WITHIN_S
    assert len(errors) == 1 and isinstance(errors[0], TransferCancelled)


def test_backoff_and_polls_end_too_and_no_request_starts_after_the_cancel() -> None:
    pacer = Pacer(classify, first_backoff=100, max_backoff=100, max_error_wait=1000)
    attempts: list[int] = []

    def server_error() -> str:
        attempts.append(1)
        raise exceptions.InternalServerError("req", 503, "busy")

    with pacer.cancels.transfer() as cancel:
        backing_off, errors = in_thread(lambda: pacer.call(server_error))
        polling, poll_errors = in_thread(
            lambda: pacer.poll(lambda: False, done=bool, interval=100, max_interval=100)
        )
        time.sleep(0.3)
        cancel.set("stopping")
        backing_off.join(ENDS_WITHIN_S)
        polling.join(ENDS_WITHIN_S)
        assert not backing_off.is_alive() and not polling.is_alive()
        with pytest.raises(TransferCancelled):
            pacer.call(lambda: "never sent")
    assert attempts == [1]
    assert isinstance(errors[0], TransferCancelled)
    assert isinstance(poll_errors[0], TransferCancelled)


def test_the_next_transfer_starts_with_a_fresh_event() -> None:
    cancels = Cancels()
    with cancels.transfer() as first:
        with cancels.transfer() as nested:
            assert nested is first  # overlapping transfers of one client share it
        first.set("interrupted")
    with cancels.transfer() as second:
        assert not second.cancelled
    assert not cancels.current.cancelled


def test_entries_waiting_for_their_commit_fail_at_once() -> None:
    cancels = Cancels()
    calls: list[int] = []

    def contention(entries: list[str]) -> list[Any]:
        calls.append(len(entries))
        return [RetryEntry(RuntimeError("contention"), delay=300.0) for _ in entries]

    committer: BatchCommitter[str, Any] = BatchCommitter(
        contention, batch_size=10, idle_timeout=0.01, max_retry_delay=300.0
    )
    cancels.listen(committer.fail_queued)
    try:
        with cancels.transfer() as cancel:
            future = committer.submit("entry")
            deadline = time.monotonic() + 5
            while not calls and time.monotonic() < deadline:
                time.sleep(0.01)
            assert calls == [1] and not future.done()  # waiting out its 300 s retry delay
            cancel.set("interrupted")
            with pytest.raises(TransferCancelled):
                future.result(timeout=ENDS_WITHIN_S)
    finally:
        committer.close()


def test_a_one_cause_stop_cancels_every_wait() -> None:
    from dvc_dropbox.errors import DropboxFullError

    pacer = Pacer(classify)
    with pacer.cancels.transfer() as cancel:
        stop = fatal.TransferStop(fatal.UPLOAD, cancel)
        thread, errors = in_thread(lambda: pacer.call(refusals(300)))
        time.sleep(0.2)
        assert stop.failed(DropboxFullError("Dropbox is full"))
        thread.join(ENDS_WITHIN_S)
        assert not thread.is_alive()
        assert stop.failed(errors[0])  # the cancelled wait stays quiet


def test_an_interrupt_is_one_message_that_says_a_re_run_continues() -> None:
    stop = fatal.TransferStop(fatal.UPLOAD)
    stop.interrupt()
    assert stop.cancel.cancelled and stop.failed(TransferCancelled("cancelled"))
    message = str(stop.error())
    assert message.startswith("Interrupted: stopped the upload")
    assert "running the command again uploads the rest" in message
    assert "\n" not in message


def test_entries_of_the_batch_in_flight_stop_being_waited_for() -> None:
    cancels = Cancels()
    answer = threading.Event()
    sent: list[int] = []

    def slow_commit(entries: list[str]) -> list[Any]:
        sent.append(len(entries))
        answer.wait(30)  # a commit that takes its time (up to its read timeout)
        return [RetryEntry(RuntimeError("contention"), delay=0.01) for _ in entries]

    committer: BatchCommitter[str, Any] = BatchCommitter(
        slow_commit, batch_size=10, idle_timeout=0.01
    )
    cancels.listen(committer.fail_queued)
    try:
        with cancels.transfer() as cancel:
            future = committer.submit("entry")
            deadline = time.monotonic() + 5
            while not sent and time.monotonic() < deadline:
                time.sleep(0.01)
            cancel.set("interrupted")
            with pytest.raises(TransferCancelled):
                future.result(timeout=ENDS_WITHIN_S)
            answer.set()  # the call returns: its retry is not queued for a cancelled entry
            time.sleep(0.2)
            assert sent == [1] and committer.waiting == 0
    finally:
        committer.close()
