"""Unit tests of the pacer's pure logic: retry decisions, waits, AIMD limit (fake clock, no I/O)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import pytest
import requests
from dropbox import auth, exceptions, files

from dvc_dropbox.sdk_errors import classify, rate_limit_reason, write_contention
from dvc_dropbox.transfer.pacer import Action, Decision, DropboxRetryError, Pacer
from tests.helpers.fake_time import FakeTime


def make_pacer(t: FakeTime, **kwargs: Any) -> Pacer:
    kwargs.setdefault("rand", lambda: 0.0)
    # The mechanism's tests count in waits of 1, 2, 4, 8... s; the defaults' own numbers are
    # tested in test_wait_bounds.py.
    kwargs.setdefault("first_backoff", 1.0)
    kwargs.setdefault("max_backoff", 10.0)
    return Pacer(classify, sleep=t.sleep, clock=t.clock, **kwargs)


def rate_limited(reason: Any, retry_after: float) -> exceptions.RateLimitError:
    return exceptions.RateLimitError("req", auth.RateLimitError(reason, retry_after), retry_after)


def failing(errors: list[BaseException], result: str = "ok") -> Callable[[], str]:
    pending = list(errors)

    def fn() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return fn


def test_honours_retry_after_of_too_many_requests() -> None:
    t = FakeTime()
    pacer = make_pacer(t)
    fn = failing([rate_limited(auth.RateLimitReason.too_many_requests, 7)])
    assert pacer.call(fn) == "ok"
    assert t.sleeps and sum(t.sleeps) >= 7
    assert pacer.retries == {"too_many_requests": 1}


def test_jitter_never_waits_less_than_asked() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rand=lambda: 0.99)
    fn = failing([rate_limited(auth.RateLimitReason.too_many_write_operations, 3)])
    assert pacer.call(fn) == "ok"
    assert t.sleeps[0] >= 3 and t.sleeps[0] <= 3 * 1.25


def test_write_contention_409_is_retried() -> None:
    t = FakeTime()
    pacer = make_pacer(t)
    error = files.UploadSessionFinishError.too_many_write_operations
    fn = failing([exceptions.ApiError("req", error, None, None)] * 2)
    assert pacer.call(fn) == "ok"
    assert len(t.sleeps) == 2
    assert pacer.retries == {"too_many_write_operations": 2}


def test_other_api_errors_are_not_retried() -> None:
    t = FakeTime()
    pacer = make_pacer(t)
    error = files.LookupError.not_found
    with pytest.raises(exceptions.ApiError):
        pacer.call(failing([exceptions.ApiError("req", error, None, None)]))
    assert t.sleeps == []


def test_server_and_connection_errors_are_bounded() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_error_wait=10)  # waits 1+2+4 fit, the 4th (8) not
    errors: list[BaseException] = [
        exceptions.InternalServerError("req", 503, "busy"),
        requests.exceptions.ConnectionError("reset"),
        exceptions.InternalServerError("req", 500, "oops"),
    ]
    assert pacer.call(failing(list(errors))) == "ok"
    with pytest.raises(DropboxRetryError, match="failed 4 times"):
        pacer.call(failing([*errors, requests.exceptions.ConnectionError("again")]))


def test_total_wait_is_bounded_with_a_clear_error() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_total_wait=60)
    storm = [rate_limited(auth.RateLimitReason.too_many_requests, 25)] * 10
    with pytest.raises(DropboxRetryError, match="too_many_requests") as info:
        pacer.call(failing(storm))
    assert "gave up" in str(info.value)
    assert sum(t.sleeps) <= 60


def test_too_many_requests_halves_the_limit_once_per_storm_then_recovers() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_in_flight=16)
    storm = rate_limited(auth.RateLimitReason.too_many_requests, 2)
    # Several calls answered 429 at the same moment count as one congestion event.
    pacer._on_too_many_requests(2)
    pacer._on_too_many_requests(2)
    pacer._on_too_many_requests(2)
    assert pacer.limit == 8
    t.now += 5
    assert pacer.call(failing([storm])) == "ok"
    assert pacer.limit == 4
    assert pacer.lowest_limit == 4
    for _ in range(200):
        pacer.call(failing([]))
    assert pacer.limit == 16


def test_limit_bounds_requests_in_flight() -> None:
    pacer = Pacer(classify, max_in_flight=3)
    pacer._limit = 2.0
    inside = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def work() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        gate.wait(5)
        with lock:
            inside -= 1

    threads = [threading.Thread(target=pacer.call, args=(work,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for _ in range(100):
        with lock:
            if inside == 2:
                break
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert peak == 2


def test_long_waits_are_announced_once_per_storm(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTime()
    pacer = make_pacer(t)
    caplog.set_level(logging.WARNING, logger="dvc.dvc_dropbox")
    pacer._announce("too_many_requests", 30)
    pacer._announce("too_many_requests", 30)
    pacer._announce("too_many_requests", 0.5)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert "waiting 30 s" in messages[0]


def test_classifiers() -> None:
    upload = files.UploadError.path(
        files.UploadWriteFailed(
            reason=files.WriteError.too_many_write_operations, upload_session_id="x"
        )
    )
    assert write_contention(upload)
    assert write_contention(files.DeleteError.too_many_write_operations)
    assert write_contention(
        files.UploadSessionFinishError.path(files.WriteError.too_many_write_operations)
    )
    assert not write_contention(
        files.UploadSessionFinishError.path(
            files.WriteError.conflict(files.WriteConflictError.file)
        )
    )
    assert not write_contention(
        files.UploadSessionFinishError.lookup_failed(files.UploadSessionLookupError.not_found)
    )
    plain = exceptions.RateLimitError("req", None, 5)
    assert rate_limit_reason(plain) == "too_many_requests"
    ops = rate_limited(auth.RateLimitReason.too_many_write_operations, 1)
    assert rate_limit_reason(ops) == "too_many_write_operations"


def test_a_policy_decides_and_the_pacer_knows_no_sdk_type() -> None:
    t = FakeTime()
    seen: list[BaseException] = []

    def policy(exc: BaseException) -> Decision:
        seen.append(exc)
        if isinstance(exc, KeyError):
            return Decision(Action.RETRY, "asked to wait", retry_after=2.0)
        return Decision(Action.FAIL, "no")

    pacer = Pacer(policy, sleep=t.sleep, clock=t.clock, rand=lambda: 0.0)
    assert pacer.call(failing([KeyError("a"), KeyError("b")])) == "ok"
    assert t.sleeps == [2.0, 2.0] and pacer.retries == {"asked to wait": 2}
    with pytest.raises(LookupError):
        pacer.call(failing([LookupError("c")]))
    assert [type(e) for e in seen] == [KeyError, KeyError, LookupError]


def test_retry_holds_no_slot_so_its_own_calls_run_at_limit_one() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_in_flight=1)
    inner = failing([exceptions.InternalServerError("req", 503, "busy")])
    outer_errors = failing(
        [exceptions.ApiError("req", files.DeleteError.too_many_write_operations, None, None)]
    )

    def operation() -> str:
        outer_errors()  # the operation's own verdict, as a failed delete job raises it
        return pacer.call(inner)

    done = threading.Event()
    result: list[str] = []
    worker = threading.Thread(target=lambda: (result.append(pacer.retry(operation)), done.set()))
    worker.start()
    assert done.wait(5), "retry() held the only slot its own call needed"
    assert result == ["ok"]
    assert pacer.retries == {"too_many_write_operations": 1, "server error": 1}


def test_timeouts_and_connection_errors_are_told_apart(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_error_wait=4)  # waits 1+2 fit, the 3rd (4) not
    caplog.set_level(logging.WARNING, logger="dvc.dvc_dropbox")
    errors: list[BaseException] = [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("refused"),
        requests.exceptions.ReadTimeout("read timed out"),
    ]
    with pytest.raises(DropboxRetryError) as info:
        pacer.call(failing(errors))
    assert str(info.value).startswith("Dropbox call fn failed 3 times in a row (timed out)")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "ReadTimeout(" not in str(info.value)
    assert [r.getMessage() for r in caplog.records] == [
        "Dropbox request failed (timed out); waiting 1 s before retrying",
        "Dropbox request failed (connection error); waiting 2 s before retrying",
    ]


def test_poll_waits_on_the_clock_until_done() -> None:
    t = FakeTime()
    pacer = make_pacer(t)
    answers = iter(["running", "running", "running", "done"])
    assert pacer.poll(lambda: next(answers), done=lambda a: a == "done") == "done"
    assert t.sleeps == [0.05, 0.1, 0.2]
    with pytest.raises(DropboxRetryError, match="did not finish job within 3 s"):
        pacer.poll(lambda: "running", done=lambda a: a == "done", what="job", deadline=3)
