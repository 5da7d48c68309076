"""DropboxFS's retries go through the pacer: bounded, clock-driven, reported (issue 9 acceptance).

A scripted client object answers `delete_batch` / `delete_batch/check` with the SDK's real result
types, and scripted streams break off like dropped downloads; the pacer runs on a fake clock, so
hours of Dropbox-side waiting take milliseconds.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any, Callable

import pytest
import requests
from dropbox import files

from dvc_dropbox.connection import Connection, Settings
from dvc_dropbox.errors import DropboxRemoteError
from dvc_dropbox.files import DropboxReader
from dvc_dropbox.fs import DropboxFS
from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer.pacer import DropboxRetryError, Pacer
from tests.helpers.fake_time import FakeTime

PATHS = [f"dvc/project/files/md5/{i:02x}/{i:030x}" for i in range(4)]


def deleted(path: str) -> files.DeleteBatchResultEntry:
    metadata = files.FolderMetadata(name=path.rpartition("/")[2], id="id:x", path_lower=path)
    return files.DeleteBatchResultEntry.success(files.DeleteBatchResultData(metadata=metadata))


def refused(error: files.DeleteError) -> files.DeleteBatchResultEntry:
    return files.DeleteBatchResultEntry.failure(error)


class ScriptedClient:
    """delete_batch launches a job; each check of it answers what `job` says."""

    def __init__(
        self,
        job: Callable[[int], files.DeleteBatchJobStatus],
        launch: Callable[[list[files.DeleteArg]], files.DeleteBatchLaunch] | None = None,
    ) -> None:
        self.job = job
        self.launch = launch
        self.launched: list[list[str]] = []
        self.checks = 0

    def files_delete_batch(self, entries: list[files.DeleteArg]) -> files.DeleteBatchLaunch:
        self.launched.append([e.path for e in entries])
        if self.launch is not None:
            return self.launch(entries)
        return files.DeleteBatchLaunch.async_job_id(f"dbjid:{len(self.launched)}")

    def files_delete_batch_check(self, async_job_id: str) -> files.DeleteBatchJobStatus:
        self.checks += 1
        return self.job(self.checks)


class ScriptedConnection(Connection):
    def __init__(self, client: ScriptedClient, pacer: Pacer) -> None:  # no credentials, no HTTP
        self.settings = Settings()
        self.client = client
        self.pacer = pacer
        self.checked = True


def scripted_fs(client: ScriptedClient, t: FakeTime, **pacer_kwargs: Any) -> DropboxFS:
    fs = DropboxFS()
    pacer_kwargs.setdefault("first_backoff", 1.0)  # the waits these tests count: 1, 2, 4...
    pacer = Pacer(classify, sleep=t.sleep, clock=t.clock, rand=lambda: 0.0, **pacer_kwargs)
    fs._conn = ScriptedConnection(client, pacer)
    return fs


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_delete_job_that_meets_contention_forever_ends_in_a_clear_bounded_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dvc.dvc_dropbox")
    t = FakeTime()
    contention = files.DeleteBatchJobStatus.failed(files.DeleteBatchError.too_many_write_operations)
    client = ScriptedClient(lambda _: contention)
    fs = scripted_fs(client, t, max_total_wait=600)

    started = time.monotonic()
    with pytest.raises(DropboxRetryError) as info:
        fs.rm(PATHS)
    assert time.monotonic() - started < 1.0

    message = str(info.value)
    assert message.startswith("Dropbox kept answering too_many_write_operations to delete_batch")
    assert "gave up after waiting" in message and "(limit 600 s)" in message
    assert "Error(" not in message  # no SDK repr on screen...
    assert info.value.__cause__ is None and info.value.__suppress_context__  # ...nor in the chain
    # Bounded: a handful of launches (it used to recurse until RecursionError, 987 launches).
    assert 5 <= len(client.launched) <= 20
    assert all(paths == [f"/{p}" for p in PATHS] for paths in client.launched)
    # Every wait between two launches was the fake clock's; the waits follow each other, so they
    # are one wait episode: shown once, with the first wait's length (issue 11: "once per wait
    # episode, updated rather than repeated"), the others at debug level.
    assert len(client.launched) - 1 == len(t.sleeps)
    assert [r.getMessage() for r in warnings(caplog)] == [
        "Dropbox asked to slow down (too_many_write_operations); "
        f"waiting {t.sleeps[0]:.0f} s before retrying"
    ]
    still = [r for r in caplog.records if "still waiting" in r.getMessage()]
    assert len(still) == len(t.sleeps) - 1
    assert t.sleeps == sorted(t.sleeps) and sum(t.sleeps) <= 600


def test_a_job_in_progress_is_polled_on_the_clock_then_its_entries_count() -> None:
    t = FakeTime()
    done = files.DeleteBatchJobStatus.complete(
        files.DeleteBatchResult(
            entries=[
                deleted(PATHS[0]),
                refused(files.DeleteError.path_lookup(files.LookupError.not_found)),  # gone: fine
                deleted(PATHS[2]),
                deleted(PATHS[3]),
            ]
        )
    )
    client = ScriptedClient(lambda n: files.DeleteBatchJobStatus.in_progress if n < 5 else done)
    fs = scripted_fs(client, t)
    fs.rm(PATHS)
    assert len(client.launched) == 1 and client.checks == 5
    assert t.sleeps == [0.05, 0.1, 0.2, 0.4]  # no real sleep: the pacer's clock


def test_a_job_that_never_ends_is_bounded_by_the_poll_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dvc.dvc_dropbox")
    t = FakeTime()
    client = ScriptedClient(lambda _: files.DeleteBatchJobStatus.in_progress)
    fs = scripted_fs(client, t)
    started = time.monotonic()
    with pytest.raises(DropboxRetryError, match="did not finish delete_batch within 900 s"):
        fs.rm(PATHS)
    assert time.monotonic() - started < 1.0
    assert sum(t.sleeps) <= 900 and client.checks > 100
    # One warning for the whole poll; each wait at debug level.
    assert [r.getMessage() for r in warnings(caplog)] == [
        "Dropbox is still working on delete_batch after 10 s; waiting for it (at most 900 s)"
    ]
    assert sum("delete_batch in progress" in r.getMessage() for r in caplog.records) > 100


def test_entries_that_meet_contention_are_deleted_again_after_a_reported_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dvc.dvc_dropbox")
    t = FakeTime()

    def launch(entries: list[files.DeleteArg]) -> files.DeleteBatchLaunch:
        answers = [
            refused(files.DeleteError.too_many_write_operations)
            if e.path.endswith("1") and len(entries) > 1
            else deleted(e.path)
            for e in entries
        ]
        return files.DeleteBatchLaunch.complete(files.DeleteBatchResult(entries=answers))

    client = ScriptedClient(lambda _: files.DeleteBatchJobStatus.other, launch=launch)
    fs = scripted_fs(client, t)
    fs.rm(PATHS)
    assert client.launched == [[f"/{p}" for p in PATHS], [f"/{PATHS[1]}"]]
    assert t.sleeps == [1.0]
    assert [r.getMessage() for r in warnings(caplog)] == [
        "Dropbox asked to slow down (too_many_write_operations); waiting 1 s before retrying"
    ]


def test_other_failures_are_not_retried() -> None:
    t = FakeTime()
    failed = files.DeleteBatchJobStatus.failed(files.DeleteBatchError.other)
    client = ScriptedClient(lambda _: failed)
    with pytest.raises(DropboxRemoteError, match=r"^Dropbox delete_batch failed: other$"):
        scripted_fs(client, t).rm(PATHS)
    assert len(client.launched) == 1 and t.sleeps == []

    def launch(entries: list[files.DeleteArg]) -> files.DeleteBatchLaunch:
        denied = files.DeleteError.path_write(files.WriteError.no_write_permission)
        answers = [refused(denied)] + [deleted(e.path) for e in entries[1:]]
        return files.DeleteBatchLaunch.complete(files.DeleteBatchResult(entries=answers))

    client = ScriptedClient(lambda _: files.DeleteBatchJobStatus.other, launch=launch)
    with pytest.raises(DropboxRemoteError, match=r"could not delete .*: path_write/no_write_perm"):
        scripted_fs(client, t).rm(PATHS)
    assert len(client.launched) == 1 and t.sleeps == []


class BreakingStream:
    """A download body that breaks off after `budget` bytes (a dropped connection)."""

    def __init__(self, data: bytes, budget: int) -> None:
        self._data = data
        self._budget = budget

    def read(self, n: int) -> bytes:
        if self._budget <= 0:
            raise requests.exceptions.ChunkedEncodingError("connection broken: IncompleteRead")
        piece = self._data[: min(n, self._budget)]
        self._data = self._data[len(piece) :]
        self._budget -= len(piece)
        return piece

    def close(self) -> None:
        return None


def test_a_read_that_breaks_off_reopens_at_its_offset_after_a_reported_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dvc.dvc_dropbox")
    t = FakeTime()
    data = bytes(range(256)) * 16
    opened: list[int] = []
    fs = scripted_fs(ScriptedClient(lambda _: files.DeleteBatchJobStatus.other), t)

    def open_read(start: int) -> BreakingStream:
        opened.append(start)
        return BreakingStream(data[start:], 1000)

    reader = DropboxReader("dvc/project/big", len(data), open_read, retry=fs.conn.pacer.retry)
    assert io.BufferedReader(reader, buffer_size=1 << 20).read() == data
    assert opened == [0, 1000, 2000, 3000, 4000]
    assert t.sleeps == [1.0] * 4  # one backoff per drop: the pacer's, on its clock
    # Reported like every wait (back-to-back waits of a second share a warning).
    assert {r.getMessage() for r in warnings(caplog)} == {
        "Dropbox request failed (connection error); waiting 1 s before retrying"
    }
    assert sum("call download: ChunkedEncodingError" in r.getMessage() for r in caplog.records) == 4


def test_a_read_that_keeps_breaking_off_ends_in_a_clear_error() -> None:
    t = FakeTime()
    # Waits 1+2+4+8+16 fit in 40 s of errors, the sixth (32) does not.
    fs = scripted_fs(
        ScriptedClient(lambda _: files.DeleteBatchJobStatus.other),
        t,
        max_error_wait=40,
        max_backoff=16,
    )
    opened: list[int] = []

    def open_read(start: int) -> BreakingStream:
        opened.append(start)
        return BreakingStream(b"x" * 10, 0 if opened[1:] else 10)

    reader = DropboxReader("dvc/project/big", 100, open_read, retry=fs.conn.pacer.retry)
    with pytest.raises(DropboxRetryError) as info:
        io.BufferedReader(reader).read()
    assert str(info.value).startswith(
        "Dropbox call download failed 6 times in a row (connection error), giving up"
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert opened == [0] + [10] * 5  # the first break is on the stream already open
    assert t.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]
