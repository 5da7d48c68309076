"""The pacer's bounds follow what the server asks for (issue 10 item 7, issue 11 items 1 and 5).

Asked-for waits are honoured in full and bounded by a configurable total; errors back off up to a
cap for a bounded *time*; each wait episode is shown once, the batch committer's per-entry waits
included. Fake clock, no I/O.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import requests
from dropbox import auth, exceptions

from dvc_dropbox.sdk_errors import classify, new_pacer
from dvc_dropbox.transfer.batcher import BatchCommitter, RetryEntry
from dvc_dropbox.transfer.pacer import (
    DEFAULT_ERROR_WAIT_LIMIT_S,
    DEFAULT_RETRY_WAIT_LIMIT_S,
    DropboxRetryError,
    Pacer,
    WaitReport,
)
from tests.unit.test_pacer import FakeTime, failing, make_pacer, rate_limited

CONTENTION = auth.RateLimitReason.too_many_write_operations


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_several_300_s_waits_in_one_call_are_waited_out_in_full() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rand=lambda: 0.99)  # the longest jitter: still within the default
    assert pacer.call(failing([rate_limited(CONTENTION, 300)] * 4)) == "ok"
    assert len(t.sleeps) == 4
    assert all(slept >= 300 for slept in t.sleeps)  # never cut short
    assert DEFAULT_RETRY_WAIT_LIMIT_S >= 1800


def test_a_wait_longer_than_any_backoff_cap_is_not_capped() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_backoff=30)
    assert pacer.call(failing([rate_limited(CONTENTION, 900)])) == "ok"
    assert t.sleeps == [900]


def test_the_total_of_asked_waits_is_configurable_and_named_in_the_message() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_total_wait=500)
    with pytest.raises(DropboxRetryError) as info:
        pacer.call(failing([rate_limited(CONTENTION, 300)] * 3))
    assert t.sleeps == [300]  # the second 300 s would pass the limit: give up, do not cut it
    assert "(limit 500 s)" in str(info.value) and "retry_wait_limit" in str(info.value)


def default_pacer(t: FakeTime, rand: float) -> Pacer:
    """The pacer with its default bounds, on a fake clock."""
    return Pacer(classify, sleep=t.sleep, clock=t.clock, rand=lambda: rand)


def test_a_burst_of_tens_of_server_errors_is_ridden_out() -> None:
    t = FakeTime()
    pacer = default_pacer(t, 0.99)  # the longest jitter
    burst: list[BaseException] = [exceptions.InternalServerError("req", 503, "busy")] * 20
    burst += [requests.exceptions.ConnectionError("reset")] * 4
    assert pacer.call(failing(burst)) == "ok"
    assert len(t.sleeps) == 24
    assert t.sleeps[:3] == pytest.approx([1.2475, 2.495, 2.495])  # exponential...
    assert max(t.sleeps) == pytest.approx(2 * 1.2475)  # ...up to rclone's 2 s, with jitter
    assert sum(t.sleeps) <= DEFAULT_ERROR_WAIT_LIMIT_S


def test_two_serial_bursts_of_20_end_well_within_two_minutes() -> None:
    """Issue 16 item 6: 20 x 503, then 20 x 500 on the next call of a serial phase."""
    t = FakeTime()
    pacer = default_pacer(t, 0.99)
    for status in (503, 500):
        burst = [exceptions.InternalServerError("req", status, "busy")] * 20
        assert pacer.call(failing(list(burst))) == "ok"
    assert sum(t.sleeps) < 100  # 2 x 48.6 s at the longest jitter; was 2 x 218 s


def test_a_server_that_stays_down_is_reported_within_a_minute() -> None:
    t = FakeTime()
    pacer = default_pacer(t, 0.0)
    with pytest.raises(DropboxRetryError, match="check the network connection"):
        pacer.call(failing([exceptions.InternalServerError("req", 503, "down")] * 1000))
    assert t.now - 1000 <= DEFAULT_ERROR_WAIT_LIMIT_S == 60


def test_errors_are_bounded_by_time_since_the_first_not_by_a_count() -> None:
    t = FakeTime()
    pacer = make_pacer(t, max_error_wait=120)

    def slow_failure() -> str:
        t.now += 50  # each attempt takes 50 s (a read timeout) before it fails
        raise requests.exceptions.ReadTimeout("read timed out")

    with pytest.raises(DropboxRetryError) as info:
        pacer.call(slow_failure)
    assert str(info.value).startswith("Dropbox call slow_failure failed 3 times in a row (timed")
    assert t.now - 1000 <= 120 + 50


def test_an_episode_is_shown_once_and_a_new_reason_or_a_later_storm_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dvc.dvc_dropbox")
    t = FakeTime()
    report = WaitReport(t.clock)
    message = "Dropbox asked to slow down (%s); waiting %.0f s before retrying"
    for _ in range(65):  # one storm: 65 entries told to wait at about the same time
        report.wait("too_many_write_operations", 15, message)
    t.now += 15
    report.wait("too_many_write_operations", 30, message)  # right after: the same episode
    report.wait("too_many_requests", 15, message)  # another reason: its own line
    t.now += 300
    report.wait("too_many_write_operations", 20, message)  # much later: a new episode
    assert warnings(caplog) == [
        "Dropbox asked to slow down (too_many_write_operations); waiting 15 s before retrying",
        "Dropbox asked to slow down (too_many_requests); waiting 15 s before retrying",
        "Dropbox asked to slow down (too_many_write_operations); waiting 20 s before retrying",
    ]
    assert report.announced == 3


def test_the_committers_per_entry_waits_share_the_pacers_episodes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="dvc.dvc_dropbox")
    pacer = new_pacer(8)
    refused: set[int] = set(range(40))

    def commit(entries: list[int]) -> list[Any]:
        outcomes: list[Any] = []
        for entry in entries:
            if entry in refused:
                refused.discard(entry)
                outcomes.append(RetryEntry(RuntimeError("busy"), delay=1.0, reason="busy"))
            else:
                outcomes.append(entry)
        return outcomes

    committer: BatchCommitter[int, int] = BatchCommitter(
        commit, batch_size=1000, idle_timeout=0.01, report=pacer.report_commit_wait
    )
    results: dict[int, int] = {}

    def upload(item: int) -> None:
        with committer.uploading():
            results[item] = committer.commit(item)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    committer.close()
    assert results == {i: i for i in range(40)}
    assert warnings(caplog) == ["Dropbox asked to slow down (busy); committing again in 1 s"]


def test_an_entry_is_bounded_by_its_total_wait() -> None:
    def commit(entries: list[int]) -> list[Any]:
        return [RetryEntry(ValueError("still busy"), delay=0.01, reason="busy") for _ in entries]

    committer: BatchCommitter[int, int] = BatchCommitter(
        commit, batch_size=10, idle_timeout=0.01, max_entry_wait=0.1
    )
    with pytest.raises(ValueError, match="still busy"):
        committer.commit(1)
    committer.close()
    # 0.01 + 0.02 + 0.04 fit in 0.1 s, 0.08 more does not: four tries, three waits.
    assert committer.entry_retries == 3


def test_the_pacer_constructor_takes_the_new_bounds() -> None:
    pacer = Pacer(classify, max_total_wait=42, max_error_wait=7)
    assert (pacer.max_total_wait, pacer.max_error_wait) == (42, 7)


def test_retry_wait_limit_is_a_remote_option() -> None:
    from dvc import config_schema

    from dvc_dropbox._register import remote_options
    from dvc_dropbox.errors import DropboxConfigError
    from dvc_dropbox.fs import DropboxFS

    schema = remote_options(config_schema)
    assert schema["retry_wait_limit"]("600") == 600  # what `dvc remote modify` validates with

    assert DropboxFS().settings.retry_wait_limit == DEFAULT_RETRY_WAIT_LIMIT_S
    assert DropboxFS(retry_wait_limit="600").settings.retry_wait_limit == 600
    with pytest.raises((DropboxConfigError, ValueError), match="retry_wait_limit must be"):
        DropboxFS(retry_wait_limit="soon")
