"""Offset writes and reads of a ranged download (transfer/positioned.py), on both paths.

Windows has no `os.pread`/`os.pwrite`; these tests take them out of `os` (as on Windows) to run
the fallback here: threads writing ranges at their offsets through duplicated descriptors while
another reads the prefix back must still give the file's bytes, and the md5 a DVC object's name
says must still come out of a ranged download's follower.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

import pytest

from dvc_dropbox.transfer import BLOCK_SIZE
from dvc_dropbox.transfer.content_hash import NameHasher, ObjectName
from dvc_dropbox.transfer.downloads import _OwnFd, _RangedJob, plan_ranges
from dvc_dropbox.transfer.positioned import PositionedIO, have_positioned_calls

KiB = 1024
MiB = 1024 * KiB
JOIN_BOUND_S = 30


@pytest.fixture
def windows_os(monkeypatch: pytest.MonkeyPatch) -> None:
    """`os` as on Windows: no pread, no pwrite (a call to either would raise AttributeError)."""
    monkeypatch.delattr(os, "pread")
    monkeypatch.delattr(os, "pwrite")


def test_positioned_calls_are_used_where_the_os_has_them() -> None:
    assert have_positioned_calls()  # Linux, macOS: the fast path
    assert PositionedIO().positioned


@pytest.mark.parametrize("missing", ["pread", "pwrite"])
def test_without_either_call_the_fallback_is_chosen(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delattr(os, missing)
    assert not have_positioned_calls()
    assert not PositionedIO().positioned


def _race(path: Path, positioned_io: PositionedIO, data: bytes, piece: int) -> None:
    """Write `data` as four ranges, each from its own thread and descriptor in `piece`-byte
    writes, while a fifth thread reads offsets back; checks the file and every read."""
    quarter = len(data) // 4
    errors: list[BaseException] = []
    seen: list[tuple[int, bytes]] = []
    done = threading.Event()
    with open(path, "w+b") as out:
        os.ftruncate(out.fileno(), len(data))

        def write(own: _OwnFd, start: int, end: int) -> None:
            try:
                with own as fd:
                    for pos in range(start, end, piece):
                        positioned_io.write(fd, data[pos : min(end, pos + piece)], pos)
            except BaseException as exc:
                errors.append(exc)

        def read(own: _OwnFd) -> None:
            try:
                with own as fd:
                    for i in range(2000):
                        if done.is_set():
                            return
                        offset = (i * 7919 * KiB) % len(data)
                        seen.append((offset, positioned_io.read(fd, piece, offset)))
            except BaseException as exc:
                errors.append(exc)

        writers = [
            threading.Thread(target=write, args=(_OwnFd(out.fileno()), i * quarter, end))
            for i, end in enumerate([quarter, 2 * quarter, 3 * quarter, len(data)])
        ]
        reader = threading.Thread(target=read, args=(_OwnFd(out.fileno()),))
        for thread in [*writers, reader]:
            thread.start()
        for thread in writers:
            thread.join(JOIN_BOUND_S)
        done.set()
        reader.join(JOIN_BOUND_S)
        assert not any(t.is_alive() for t in [*writers, reader])
    assert errors == []
    assert path.read_bytes() == data
    # A read sees zeros (not yet written) or the file's bytes, never bytes of another offset.
    for offset, got in seen:
        assert len(got) == min(piece, len(data) - offset)
        for run in re.finditer(rb"[^\x00]+", got):
            assert run.group() == data[offset + run.start() : offset + run.end()], offset


@pytest.mark.parametrize("piece", [512, 64 * KiB + 3])
def test_the_fallback_writes_every_range_at_its_offset(
    tmp_path: Path, windows_os: None, piece: int
) -> None:
    positioned_io = PositionedIO()
    assert not positioned_io.positioned
    data = bytes(range(1, 256)) * (4 * MiB // 255)  # no zero byte: a read can tell zeros apart
    _race(tmp_path / "f", positioned_io, data, piece)


def test_the_fast_path_writes_every_range_at_its_offset(tmp_path: Path) -> None:
    data = bytes(range(1, 256)) * (4 * MiB // 255)
    _race(tmp_path / "f", PositionedIO(positioned=True), data, 4 * KiB)


def test_a_read_past_the_end_is_empty_on_both_paths(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as src:
        for positioned in (True, False):
            positioned_io = PositionedIO(positioned=positioned)
            assert positioned_io.read(src.fileno(), 4, 8) == b"89"
            assert positioned_io.read(src.fileno(), 4, 10) == b""


def test_a_ranged_job_follows_its_md5_without_pread_or_pwrite(
    tmp_path: Path, windows_os: None
) -> None:
    # Ranges written out of order through the job's own offset writes, as the range threads of
    # a download do, while its follower hashes the prefix: the md5 the DVC name says comes out.
    data = os.urandom(5 * BLOCK_SIZE + 99)
    ranges = plan_ranges(len(data), BLOCK_SIZE)
    name = NameHasher(ObjectName(hashlib.md5(data).hexdigest(), legacy=False))

    class Progress:
        total = 0

        def relative_update(self, count: int) -> None:
            self.total += count

    job = _RangedJob(ranges, Progress())
    assert not job.positioned.positioned
    with open(tmp_path / "f", "w+b") as out:
        fd = out.fileno()
        os.ftruncate(fd, len(data))
        follower = threading.Thread(target=job.run_guarded, args=(job.follow, _OwnFd(fd), name))
        follower.start()
        for index in [3, 5, 0, 2, 1, 4]:
            start, end = ranges[index]
            for pos in range(start, end, MiB):
                piece = data[pos : min(end, pos + MiB)]
                job.positioned.write(fd, piece, pos)
                job.wrote(index, len(piece))
        job.finish()
        follower.join(JOIN_BOUND_S)
        assert not follower.is_alive()
    job.raise_failure()
    assert name.matches()
    assert (tmp_path / "f").read_bytes() == data
