"""Dropbox at its worst, through the official SDK: contention in the forms Dropbox shows it
(per batch entry, 409, 429), throttling (waits from Dropbox's range, plain-text 429s), jobs that
stay in_progress, slow commits, the `dropbox` profile and the time scale, all seeded."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest
import requests
from dropbox import exceptions, files

from tests.helpers.emulator import EmulatorProcess, sdk_client

POLL_LIMIT_S = 20


@pytest.fixture
def busy_namespace(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    """Commits hold the namespace for 3 s and nobody waits for it: a second commit loses."""
    with EmulatorProcess("--commit-ms", "3000", "--lock-wait-ms", "0") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        yield emu


def hold_namespace(emu: EmulatorProcess, pool: concurrent.futures.Executor) -> Any:
    """Start a commit that holds the home namespace; return once it holds it."""
    holder = sdk_client(emu)
    before = emu.stats()["commits"]
    future = pool.submit(holder.files_upload, b"holder", f"/hold/{time.monotonic_ns()}.txt")
    deadline = time.monotonic() + POLL_LIMIT_S
    while emu.stats()["commits"] == before:  # counted while the lock is still held
        assert time.monotonic() < deadline, "the holding commit never started"
        time.sleep(0.02)
    return future


def closed_sessions(dbx: Any, count: int, folder: str) -> list[files.UploadSessionFinishArg]:
    entries = []
    for i in range(count):
        data = f"{folder} {i}".encode()
        session = dbx.files_upload_session_start(data, close=True)
        entries.append(
            files.UploadSessionFinishArg(
                cursor=files.UploadSessionCursor(session.session_id, len(data)),
                commit=files.CommitInfo(path=f"{folder}/{i}.txt"),
            )
        )
    return entries


def poll(check: Any, job_id: str) -> Any:
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        status = check(job_id)
        if not status.is_in_progress():
            return status
        assert time.monotonic() < deadline, "job stayed in progress"
        time.sleep(0.1)


# -- contention ----------------------------------------------------------------------------------


def test_batch_that_loses_the_namespace_fails_its_entries(busy_namespace: EmulatorProcess) -> None:
    dbx = sdk_client(busy_namespace)
    entries = closed_sessions(dbx, 3, "/contended")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = hold_namespace(busy_namespace, pool)
        result = dbx.files_upload_session_finish_batch_v2(entries)  # a 200, not a 429
        holder.result(timeout=POLL_LIMIT_S)
    assert len(result.entries) == 3
    for entry in result.entries:
        assert entry.is_failure() and entry.get_failure().is_too_many_write_operations()
    with pytest.raises(exceptions.ApiError):
        dbx.files_get_metadata("/contended/0.txt")  # nothing was committed
    # The sessions stayed open: the same entries commit once the namespace is free.
    retried = dbx.files_upload_session_finish_batch_v2(entries)
    assert all(entry.is_success() for entry in retried.entries)
    realism = busy_namespace.control("GET", "realism")
    assert realism["counts"]["contention"] >= 1


def test_single_commit_contention_answers_429_by_default(busy_namespace: EmulatorProcess) -> None:
    dbx = sdk_client(busy_namespace)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = hold_namespace(busy_namespace, pool)
        with pytest.raises(exceptions.RateLimitError) as caught:
            dbx.files_upload(b"late", "/contended/single.txt")
        holder.result(timeout=POLL_LIMIT_S)
    assert caught.value.error.reason.is_too_many_write_operations()
    assert caught.value.backoff == 1


def test_single_commit_contention_409_forms(busy_namespace: EmulatorProcess) -> None:
    busy_namespace.control("POST", "config", {"contention_409_share": 1})
    dbx = sdk_client(busy_namespace)
    dbx.files_upload(b"to delete", "/forms/delete-me.txt")
    time.sleep(0.1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = hold_namespace(busy_namespace, pool)
        with pytest.raises(exceptions.ApiError) as upload:
            dbx.files_upload(b"late", "/forms/upload.txt")
        with pytest.raises(exceptions.ApiError) as delete:
            dbx.files_delete_v2("/forms/delete-me.txt")
        with pytest.raises(exceptions.ApiError) as folder:
            dbx.files_create_folder_v2("/forms/folder")
        holder.result(timeout=POLL_LIMIT_S)
    failed = upload.value.error.get_path()
    assert failed.reason.is_too_many_write_operations() and failed.upload_session_id
    assert delete.value.error.is_too_many_write_operations()
    assert folder.value.error.get_path().is_too_many_write_operations()
    # The upload's bytes wait in the session Dropbox names: finishing it needs no re-upload.
    done = dbx.files_upload_session_finish(
        b"",
        files.UploadSessionCursor(failed.upload_session_id, 4),
        files.CommitInfo(path="/forms/upload.txt"),
    )
    assert done.size == 4


def test_delete_batch_fails_single_entries(busy_namespace: EmulatorProcess) -> None:
    dbx = sdk_client(busy_namespace)
    for name in ("a", "b"):
        dbx.files_upload(name.encode(), f"/gone/{name}.txt")
    time.sleep(0.1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = hold_namespace(busy_namespace, pool)
        launch = dbx.files_delete_batch(
            [files.DeleteArg("/gone/a.txt"), files.DeleteArg("/gone/b.txt")]
        )
        holder.result(timeout=POLL_LIMIT_S)
    status = poll(dbx.files_delete_batch_check, launch.get_async_job_id())
    assert status.is_complete()  # never the deprecated whole-job DeleteBatchError
    for entry in status.get_complete().entries:
        assert entry.is_failure() and entry.get_failure().is_too_many_write_operations()
    assert dbx.files_get_metadata("/gone/a.txt").size == 1


def test_batch_contention_can_be_a_whole_call_429(busy_namespace: EmulatorProcess) -> None:
    busy_namespace.control("POST", "config", {"batch_contention_429_share": 1})
    dbx = sdk_client(busy_namespace)
    entries = closed_sessions(dbx, 2, "/whole")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = hold_namespace(busy_namespace, pool)
        with pytest.raises(exceptions.RateLimitError) as caught:
            dbx.files_upload_session_finish_batch_v2(entries)
        holder.result(timeout=POLL_LIMIT_S)
    assert caught.value.error.reason.is_too_many_write_operations()


def test_namespace_commit_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorProcess("--namespace-commits-per-s", "1") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        outcomes = []
        for i in range(4):  # far above one commit a second
            try:
                dbx.files_create_folder_v2(f"/budget/{i}")
                outcomes.append("ok")
            except exceptions.RateLimitError as exc:
                assert exc.error.reason.is_too_many_write_operations()
                outcomes.append("429")
        assert outcomes[0] == "ok" and "429" in outcomes


# -- throttling ----------------------------------------------------------------------------------


def burst_of_429s(dbx: Any, count: int) -> list[tuple[bool, Optional[int]]]:
    """(plain text?, backoff) of the first `count` 429s of a burst (bounded)."""
    seen: list[tuple[bool, Optional[int]]] = []
    for i in range(count * 4):
        try:
            dbx.check_user(str(i))
        except exceptions.RateLimitError as exc:
            seen.append((exc.error is None, exc.backoff))
            if len(seen) == count:
                break
    return seen


def test_plain_text_429(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--rate-limit-per-s", "1", "--plain-text-429-share", "1")
    with EmulatorProcess(*args) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        seen = burst_of_429s(sdk_client(emu), 2)
        assert seen and all(
            plain and backoff is not None and backoff >= 1 for plain, backoff in seen
        )
        token = emu.token()["access_token"]
        raw = None
        for _ in range(5):
            raw = requests.post(
                f"{emu.url}/2/check/user",
                json={"query": "q"},
                headers={"Authorization": f"Bearer {token}"},
                verify=emu.ca_bundle,
                timeout=30,
            )
            if raw.status_code == 429:
                break
        assert raw is not None and raw.status_code == 429
        assert raw.headers["Content-Type"].startswith("text/plain")
        assert int(raw.headers["Retry-After"]) >= 1


def test_waits_come_from_dropbox_range_and_are_time_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Full scale: too_many_requests asks for 15-30 s, as Dropbox does.
    with EmulatorProcess("--profile", "dropbox", "--rate-limit-per-s", "1") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        seen = burst_of_429s(sdk_client(emu), 3)
        assert seen and all(15 <= (backoff or 0) <= 30 for _, backoff in seen)
    # At 0.01 the same waits are 0.15-0.3 s, asked for as whole seconds rounded up: 1.
    args = ("--profile", "dropbox", "--time-scale", "0.01", "--rate-limit-per-s", "1")
    with EmulatorProcess(*args, "--plain-text-429-share", "0") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        seen = burst_of_429s(dbx, 1)
        assert seen == [(False, 1)]
        refused_query = "1"  # the bucket holds one request: "0" passed, "1" was refused
        # Another request during the wait is refused too, but is no retry; the refused one
        # sent again at once is.
        with pytest.raises(exceptions.RateLimitError):
            dbx.check_user("another")
        assert emu.control("GET", "realism")["counts"]["early_retries"] == 0
        with pytest.raises(exceptions.RateLimitError):
            dbx.check_user(refused_query)
        assert emu.control("GET", "realism")["counts"]["early_retries"] == 1
        time.sleep(1.0)  # what it was told
        assert dbx.check_user("in time").result == "in time"


def test_contention_waits_are_scaled_proportionally(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--commit-ms", "300000", "--lock-wait-ms", "0", "--time-scale", "0.01")
    with EmulatorProcess(*args, "--contention-retry-after-s", "300") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            holder = hold_namespace(emu, pool)  # 300 s of commit time, scaled: 3 s
            with pytest.raises(exceptions.RateLimitError) as caught:
                dbx.files_upload(b"late", "/scaled.txt")
            holder.result(timeout=POLL_LIMIT_S)
        assert caught.value.backoff == 3  # 300 s * 0.01


def test_same_seed_same_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(seed: str) -> list[tuple[bool, Optional[int]]]:
        args = ("--rate-limit-per-s", "1", "--plain-text-429-share", "0.5")
        with EmulatorProcess(*args, "--too-many-requests-retry-after-s", "15-300") as emu:
            emu.control("POST", "config", {"seed": int(seed)})
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
            return burst_of_429s(sdk_client(emu), 8)

    first, again, other = run("5"), run("5"), run("6")
    assert len(first) == 8 and first == again
    assert first != other
    assert {plain for plain, _ in first} == {True, False}


# -- jobs and slow commits -----------------------------------------------------------------------


def test_jobs_stay_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    # 150 s of job time at a scale of 0.01: 1.5 s in progress.
    with EmulatorProcess("--job-in-progress-s", "150", "--time-scale", "0.01") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        dbx.files_upload(b"x", "/jobs/old.txt")
        launch = dbx.files_delete_batch([files.DeleteArg("/jobs/old.txt")])
        job_id = launch.get_async_job_id()
        assert dbx.files_delete_batch_check(job_id).is_in_progress()
        assert dbx.files_get_metadata("/jobs/old.txt").size == 1  # the job has not run yet
        status = poll(dbx.files_delete_batch_check, job_id)
        assert status.get_complete().entries[0].is_success()

        entries = closed_sessions(dbx, 2, "/jobs/new")
        started = time.monotonic()
        launch = dbx.files_upload_session_finish_batch(entries)
        job_id = launch.get_async_job_id()
        assert dbx.files_upload_session_finish_batch_check(job_id).is_in_progress()
        status = poll(dbx.files_upload_session_finish_batch_check, job_id)
        assert time.monotonic() - started >= 1.4
        assert all(entry.is_success() for entry in status.get_complete().entries)
        assert dbx.files_get_metadata("/jobs/new/1.txt").size > 0


def test_slow_commits_take_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--slow-commit-share", "1", "--slow-commit-ms", "800")
    with EmulatorProcess(*args) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        dbx.check_user()
        started = time.monotonic()
        dbx.files_upload(b"slow", "/slow.txt")
        assert time.monotonic() - started >= 0.8
        emu.control("POST", "config", {"time_scale": 0.1})  # 80 ms
        started = time.monotonic()
        dbx.files_upload(b"faster", "/faster.txt")
        assert time.monotonic() - started < 0.7


# -- the profile through the control API ---------------------------------------------------------


def test_profile_through_config_with_overrides(emulator: EmulatorProcess) -> None:
    original = emulator.control("GET", "config")
    try:
        view = emulator.control(
            "POST", "config", {"profile": "dropbox", "time_scale": 0.01, "plain_text_429_share": 0}
        )
        assert view["profile"] == "dropbox" and view["time_scale"] == 0.01
        assert view["plain_text_429_share"] == 0  # overridden in the same request
        assert view["contention_retry_after_s"] == [15.0, 300.0]
        assert view["latency_ms"] == 110.0 and view["enforce_retry_after"] is True
        realism = emulator.control("GET", "realism")
        assert set(realism["sources"]) == set(realism["values"])
        assert "rclone#5008" in realism["sources"]["job_in_progress_s"]
        for bad in (
            {"profile": "gentle"},
            {"plain_text_429_share": 2},
            {"job_in_progress_s": [5, 1]},
            {"time_scale": 0},
            {"seed": "x"},
        ):
            reply = requests.post(
                f"{emulator.ready['control_url']}/config",
                json=bad,
                verify=emulator.ca_bundle,
                timeout=30,
            )
            assert reply.status_code == 400, bad
    finally:
        emulator.control("POST", "config", {"profile": None, "time_scale": 1.0})
    assert emulator.control("GET", "config") == original
