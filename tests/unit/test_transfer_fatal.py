"""transfer.fatal: the stop switch of one transfer, and DVC's own `generic.transfer` under it
(through its hook, dvc_hooks).

Pure logic: the failures are the plugin's own exceptions (and the SDK's real types); the transfer
is dvc-objects' real `generic.transfer` from a local folder into a local filesystem that fails
like a full Dropbox after a few files.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest
from dropbox import auth, exceptions, files
from dvc_objects.fs.local import LocalFileSystem

from dvc_dropbox import adapter, sdk_errors
from dvc_dropbox.dvc_hooks.generic import wrap_transfer
from dvc_dropbox.errors import (
    DropboxAuthError,
    DropboxConfigError,
    DropboxFullError,
    DropboxIntegrityError,
    DropboxRemoteError,
    DropboxTransferStopped,
)
from dvc_dropbox.transfer import fatal

FULL = DropboxFullError("Dropbox is full: no room for /r/files/md5/aa/bb (insufficient_space)")
REVOKED = DropboxAuthError("Dropbox rejected the access token. To fix it, log in again")


def api(error: object) -> exceptions.ApiError:
    return exceptions.ApiError("req-1", error, None, None)


# -- what is fatal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        FULL,
        REVOKED,
        api(files.UploadSessionFinishError.path(files.WriteError.insufficient_space)),
        api(files.UploadSessionFinishError.path(files.WriteError.no_write_permission)),
        api(files.UploadSessionFinishError.path(files.WriteError.disallowed_name)),
        exceptions.AuthError("req-1", auth.AuthError.invalid_access_token),
        OSError(errno.ENOSPC, "No space left on device", "/cache/aa/bb"),
    ],
    ids=["full", "auth", "raw-space", "read-only", "bad-name", "raw-auth", "local-disk-full"],
)
def test_causes_every_file_meets_are_fatal(exc: BaseException) -> None:
    assert sdk_errors.transfer_fatal(exc)
    text = sdk_errors.fatal_text(exc)
    assert "Error(" not in text and "req-1" not in text, text


@pytest.mark.parametrize(
    "exc",
    [
        api(
            files.UploadSessionFinishError.path(
                files.WriteError.conflict(files.WriteConflictError.file_ancestor)
            )
        ),
        api(files.UploadSessionFinishError.path(files.WriteError.too_many_write_operations)),
        DropboxIntegrityError("downloaded bytes do not match"),
        DropboxConfigError("cannot write x: a parent is a file"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "x"),
        DropboxRemoteError("Dropbox error for x: path/other"),
    ],
    ids=["file-ancestor", "contention", "corrupt", "one-path", "not-found", "other"],
)
def test_what_concerns_one_file_is_not_fatal(exc: BaseException) -> None:
    assert not sdk_errors.transfer_fatal(exc)


def test_fatal_text_words_raw_causes() -> None:
    raw = exceptions.AuthError("req-1", auth.AuthError.invalid_access_token)
    assert sdk_errors.fatal_text(raw) == (
        "Dropbox refused the credentials (invalid_access_token); re-authorize and run the "
        "command again"
    )
    disk = OSError(errno.ENOSPC, "No space left on device", "/cache/aa/bb")
    assert sdk_errors.fatal_text(disk).startswith(
        "the local disk is full (No space left on device writing /cache/aa/bb)"
    )
    space = api(files.UploadSessionFinishError.path(files.WriteError.insufficient_space))
    assert sdk_errors.fatal_text(space).startswith("Dropbox is full")


# -- the switch -----------------------------------------------------------------------------------


def test_the_first_fatal_failure_trips_the_switch_and_everything_after_is_quiet() -> None:
    stop = fatal.TransferStop(fatal.UPLOAD)
    other = DropboxRemoteError("Dropbox error for x: path/other")
    assert not stop.failed(other)  # reported as usual: the other files may succeed
    assert not stop.stopped and not stop.skip()
    stop.check()  # does not raise

    assert stop.failed(FULL)
    assert stop.stopped and stop.cause is FULL
    assert stop.failed(other) and stop.failed(REVOKED)  # in flight while stopping: quiet
    assert stop.cause is FULL  # the first cause is the one told
    assert stop.skip() and stop.skipped == 1
    with pytest.raises(fatal.Skipped):
        stop.check()
    assert stop.failed(fatal.Skipped("not uploaded"))
    assert stop.quieted == 2


def test_the_one_error_says_the_cause_the_fix_and_that_nothing_is_lost() -> None:
    stop = fatal.TransferStop(fatal.DOWNLOAD)
    stop.failed(REVOKED)
    with pytest.raises(DropboxTransferStopped) as info:
        stop.raise_if_stopped()
    assert str(info.value) == (
        "Dropbox rejected the access token. To fix it, log in again. Stopped the download at "
        "this error; what was already downloaded is kept, so after the fix, running the "
        "command again downloads the rest"
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_the_handler_passes_on_only_what_the_stop_does_not_cover() -> None:
    seen: list[tuple[Any, Any, BaseException]] = []
    stop = fatal.TransferStop()
    assert stop.handler(None) is None
    report = stop.handler(lambda f, t, e: seen.append((f, t, e)))
    assert report is not None
    other = FileExistsError(errno.EEXIST, "File exists", "b")
    report("a", "b", other)
    report("c", "d", FULL)
    report("e", "f", other)
    assert seen == [("a", "b", other)]


def test_direction_is_checked() -> None:
    with pytest.raises(ValueError):
        fatal.TransferStop("sideways")


class Holder:
    pass


def test_overlapping_transfers_of_one_filesystem_share_one_switch_until_both_end() -> None:
    fs = Holder()
    assert fatal.current(fs) is None
    fatal.check(fs)  # no transfer: nothing to check
    with pytest.raises(DropboxTransferStopped), fatal.stopping(fs, fatal.UPLOAD) as outer:
        with pytest.raises(DropboxTransferStopped), fatal.stopping(fs, fatal.UPLOAD) as inner:
            assert inner is outer and fatal.current(fs) is outer
            inner.failed(FULL)
        assert fatal.current(fs) is outer  # the outer transfer still runs
        with pytest.raises(fatal.Skipped):
            fatal.check(fs)
    assert fatal.current(fs) is None  # the next transfer starts afresh
    with fatal.stopping(fs, fatal.UPLOAD) as fresh:
        assert not fresh.stopped


def test_an_exception_on_its_way_out_is_not_replaced() -> None:
    fs = Holder()
    with pytest.raises(KeyError), fatal.stopping(fs, fatal.UPLOAD) as stop:
        stop.failed(FULL)
        raise KeyError("already failing")
    assert fatal.current(fs) is None


# -- DVC's generic.transfer under the switch -------------------------------------------------------


class FillingFS(LocalFileSystem):
    """A local filesystem that fails like a full Dropbox once `room` files are in."""

    def __init__(self, room: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.room = room
        self.started = 0
        self.lock = threading.Lock()

    def put_file(self, from_file: Any, to_info: Any, *args: Any, **kwargs: Any) -> None:
        fatal.check(self)  # as DropboxFileSystem.put_file does
        with self.lock:
            self.started += 1
            full = self.started > self.room
        if full:
            raise FULL
        super().put_file(from_file, to_info, *args, **kwargs)


def guarded_transfer(is_dropbox: Any) -> Any:
    """DVC's own `generic.transfer` under the hook's stop switch, `is_dropbox` saying which
    filesystem counts as Dropbox."""
    from dvc_objects.fs import generic

    # Importing the adapter installed the hook: what it wraps is DVC's own function.
    assert adapter.dvc_hooks.is_hook(generic.transfer)
    return wrap_transfer(adapter.dvc_hooks.original(generic.transfer), is_dropbox)


def sources(tmp_path: Path, count: int) -> tuple[list[str], list[str]]:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    from_paths, to_paths = [], []
    for i in range(count):
        (src / f"f{i}").write_bytes(b"x" * i)
        from_paths.append(str(src / f"f{i}"))
        to_paths.append(str(dest / f"f{i}"))
    return from_paths, to_paths


@pytest.mark.parametrize("room", [0, 3], ids=["first-file", "fourth-file"])
def test_dvc_transfer_stops_at_the_first_fatal_failure_with_one_error(
    tmp_path: Path, room: int
) -> None:
    transfer = guarded_transfer(lambda fs: isinstance(fs, FillingFS))
    from_paths, to_paths = sources(tmp_path, 40)
    to_fs = FillingFS(room)
    reported: list[BaseException] = []

    with pytest.raises(DropboxTransferStopped, match=r"^Dropbox is full.*Stopped the upload"):
        transfer(
            LocalFileSystem(),
            from_paths,
            to_fs,
            to_paths,
            batch_size=1,  # one at a time: exactly `room` files get in
            on_error=lambda f, t, e: reported.append(e),
        )

    assert reported == []  # not one line per file
    assert to_fs.started == room + 1  # nothing started after the fatal failure
    done = [p for p in to_paths if Path(p).exists()]
    assert len(done) == room
    assert fatal.current(to_fs) is None


def test_dvc_transfer_without_fatal_failures_reports_as_before(tmp_path: Path) -> None:
    transfer = guarded_transfer(lambda fs: isinstance(fs, FillingFS))
    from_paths, to_paths = sources(tmp_path, 5)
    reported: list[BaseException] = []
    transfer(
        LocalFileSystem(),
        from_paths,
        FillingFS(10),
        to_paths,
        batch_size=2,
        on_error=lambda f, t, e: reported.append(e),
    )
    assert reported == [] and all(Path(p).exists() for p in to_paths)
