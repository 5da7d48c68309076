"""Parallel ranged downloads, the pure parts: range planning, the written prefix the md5 follows,
combining the ranges' block digests into the file's content_hash."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from dvc_dropbox.transfer import BLOCK_SIZE, ContentHasher, content_hash
from dvc_dropbox.transfer.content_hash import NameHasher, ObjectName, hexdigest_of_parts
from dvc_dropbox.transfer.downloads import WrittenPrefix, _OwnFd, _RangedJob, plan_ranges

MiB = 1024 * 1024


class Progress:
    def __init__(self) -> None:
        self.total = 0

    def relative_update(self, count: int) -> None:
        self.total += count


@pytest.mark.parametrize(
    ("size", "range_size", "expected"),
    [
        (0, 4 * MiB, []),
        (1, 4 * MiB, [(0, 1)]),
        (8 * MiB, 4 * MiB, [(0, 4 * MiB), (4 * MiB, 8 * MiB)]),
        (8 * MiB + 1, 4 * MiB, [(0, 4 * MiB), (4 * MiB, 8 * MiB), (8 * MiB, 8 * MiB + 1)]),
        (20 * MiB, 8 * MiB, [(0, 8 * MiB), (8 * MiB, 16 * MiB), (16 * MiB, 20 * MiB)]),
    ],
)
def test_ranges_cover_the_file_from_block_boundaries(
    size: int, range_size: int, expected: list[tuple[int, int]]
) -> None:
    ranges = plan_ranges(size, range_size)
    assert ranges == expected
    assert all(start % BLOCK_SIZE == 0 for start, _ in ranges)


def test_ranges_of_a_large_file_are_contiguous() -> None:
    size = 1024 * MiB + 12345
    ranges = plan_ranges(size, 48 * MiB)
    assert len(ranges) == 22
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


@pytest.mark.parametrize("range_size", [0, MiB, 4 * MiB + 1, -4 * MiB])
def test_a_range_size_off_the_block_grid_is_refused(range_size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 4 MiB"):
        plan_ranges(10 * MiB, range_size)


def test_written_prefix_grows_only_over_complete_ranges() -> None:
    ranges = [(0, 10), (10, 20), (20, 25)]
    prefix = WrittenPrefix(ranges)
    prefix.wrote(2, 5)  # the last range, complete: nothing before it is
    assert prefix.value == 0
    prefix.wrote(1, 4)
    assert prefix.value == 0
    prefix.wrote(0, 3)
    assert prefix.value == 3  # part of the first range
    prefix.wrote(0, 7)
    assert prefix.value == 14  # range 0 whole, then what range 1 has
    prefix.wrote(1, 6)
    assert prefix.value == 25  # range 2 was already complete


def test_ranges_hashed_apart_give_the_files_content_hash() -> None:
    data = os.urandom(3 * 2 * BLOCK_SIZE + 777)
    parts = []
    for start, end in plan_ranges(len(data), 2 * BLOCK_SIZE):
        hasher = ContentHasher()
        # Fed in odd pieces, as a resumed range arrives: the block digests do not depend on it.
        for pos in range(start, end, 3 * MiB + 5):
            hasher.update(data[pos : min(end, pos + 3 * MiB + 5)])
        parts.append(hasher)
    assert len(parts) == 4
    assert hexdigest_of_parts(parts) == content_hash(data)


def test_a_part_ending_inside_a_block_must_be_the_last() -> None:
    first, second = ContentHasher(), ContentHasher()
    first.update(b"x" * (BLOCK_SIZE + 1))
    second.update(b"y")
    with pytest.raises(ValueError, match="last part"):
        hexdigest_of_parts([first, second])
    assert hexdigest_of_parts([second]) == content_hash(b"y")


def test_a_corrupt_range_changes_the_combined_hash() -> None:
    data = bytearray(os.urandom(2 * BLOCK_SIZE + 10))
    expected = content_hash(bytes(data))
    data[BLOCK_SIZE + 7] ^= 0xFF
    parts = []
    for start, end in plan_ranges(len(data), BLOCK_SIZE):
        hasher = ContentHasher()
        hasher.update(bytes(data[start:end]))
        parts.append(hasher)
    assert hexdigest_of_parts(parts) != expected


def _write_ranges(
    path: Path, data: bytes, ranges: list[tuple[int, int]], order: list[int], legacy: bool
) -> tuple[_RangedJob, NameHasher]:
    """Write `data` as `ranges` in `order`, in 1 MiB pieces, while `follow` hashes behind."""
    name = NameHasher(ObjectName(hashlib.md5(data).hexdigest(), legacy=legacy))
    job = _RangedJob(ranges, Progress())
    with open(path, "w+b") as out:
        fd = out.fileno()
        os.ftruncate(fd, len(data))
        follower = threading.Thread(target=job.run_guarded, args=(job.follow, _OwnFd(fd), name))
        follower.start()
        for index in order:
            start, end = ranges[index]
            for pos in range(start, end, MiB):
                piece = data[pos : min(end, pos + MiB)]
                os.pwrite(fd, piece, pos)
                job.wrote(index, len(piece))
        job.finish()
        follower.join(timeout=30)
        assert not follower.is_alive()
    job.raise_failure()
    return job, name


@pytest.mark.parametrize("legacy", [False, True])
def test_the_md5_follows_ranges_written_out_of_order(tmp_path: Path, legacy: bool) -> None:
    data = os.urandom(5 * BLOCK_SIZE + 99)
    if legacy:
        data = data.replace(b"\r", b"x")  # no CRLF: the dos2unix md5 (DVC 2 names) is the md5
    ranges = plan_ranges(len(data), BLOCK_SIZE)
    job, name = _write_ranges(tmp_path / "f", data, ranges, [3, 5, 0, 2, 1, 4], legacy)
    assert name.matches()
    assert name.hexdigest() == hashlib.md5(data).hexdigest()
    assert job.callback.total == len(data)


def test_the_md5_of_an_incomplete_file_does_not_match(tmp_path: Path) -> None:
    data = os.urandom(3 * BLOCK_SIZE)
    ranges = plan_ranges(len(data), BLOCK_SIZE)
    _, name = _write_ranges(tmp_path / "f", data, ranges, [0, 2], legacy=False)  # range 1 missing
    assert not name.matches()


def test_a_failure_stops_the_job_and_is_raised(tmp_path: Path) -> None:
    job = _RangedJob(plan_ranges(3 * BLOCK_SIZE, BLOCK_SIZE), Progress())
    assert job.claim() == 0

    def broken() -> None:
        raise OSError("disk full")

    job.run_guarded(broken)
    assert job.stopped
    assert job.claim() is None  # nobody starts another range
    with pytest.raises(OSError, match="disk full"):
        job.raise_failure()
