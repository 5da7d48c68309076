"""The transfer layer against the emulator in its own process, through the real SDK over HTTPS.

Stats are the session emulator's global counters, so every test compares before/after deltas;
faults and config changes are undone by the `clean_emulator` fixture.
"""

from __future__ import annotations

import io
import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from dropbox import files

from dvc_dropbox.errors import DropboxIntegrityError
from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer import Transfers, content_hash
from dvc_dropbox.transfer.downloads import MAX_VERIFY_ATTEMPTS, plan_ranges
from dvc_dropbox.transfer.pacer import Pacer
from dvc_dropbox.transfer.uploads import _Rewind
from tests.helpers.emulator import EmulatorProcess

MiB = 1024 * 1024
CHUNK = 4 * MiB


def sdk_hash(data: bytes) -> str:
    return content_hash(data)  # checked against the spec's test vectors in test_transfer_hash.py


class Recorder:
    """The pacer's sleep, recorded (the assertion is on what we asked to wait, not the clock)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def clean_emulator(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.control("DELETE", "faults")
    before = emulator.control("GET", "config")
    yield emulator
    emulator.control("DELETE", "faults")
    emulator.control(
        "POST",
        "config",
        {
            "commit_ms": before["commit_ms"],
            "lock_wait_ms": before["lock_wait_ms"],
            "latency_ms": before["latency_ms"],
            "rate_limit_per_s": before["rate_limit_per_s"],
        },
    )


@pytest.fixture
def root() -> str:
    return f"/p2-{uuid.uuid4().hex[:10]}"


def make(
    client: Any,
    *,
    jobs: int = 8,
    batch_size: int = 1000,
    idle_timeout: float = 0.2,
    **pacer_kwargs: Any,
) -> Transfers:
    pacer = Pacer(classify, max_in_flight=jobs, **pacer_kwargs)
    return Transfers(
        client,
        pacer,
        chunk_size=CHUNK,
        batch_size=batch_size,
        jobs=jobs,
        # Tests that count batches use a long idle timeout, so only "everyone is waiting" or a full
        # batch can trigger a commit (a slow thread start must not split a batch).
        commit_idle_timeout=idle_timeout,
        commit_max_wait=max(2.0, idle_timeout),
    )


def delta(after: dict[str, Any], before: dict[str, Any], route: str) -> int:
    return after["requests"].get(route, 0) - before["requests"].get(route, 0)


def upload_all(transfers: Transfers, items: dict[str, bytes], jobs: int) -> dict[str, Any]:
    """Upload every item from its own thread, all starting together (like DVC's workers)."""
    barrier = threading.Barrier(len(items)) if len(items) <= jobs else None

    def one(path: str) -> Any:
        data = items[path]
        if barrier is not None:
            barrier.wait(30)
        return transfers.upload_fileobj(io.BytesIO(data), path, len(data))

    with ThreadPoolExecutor(jobs) as pool:
        return dict(zip(items, pool.map(one, items)))


def small_files(root: str, count: int, size: int = 1000) -> dict[str, bytes]:
    return {f"{root}/{i:02x}/obj{i}": os.urandom(size) for i in range(count)}


def test_small_files_go_through_batch_commits_only(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    emu = clean_emulator
    count, batch_size = 24, 8
    transfers = make(sdk_client, jobs=count, batch_size=batch_size, idle_timeout=30)
    items = small_files(root, count)
    before = emu.stats()
    results = upload_all(transfers, items, jobs=count)
    after = emu.stats()
    transfers.close()
    for path, metadata in results.items():
        assert metadata.path_lower == path.lower()
        assert metadata.content_hash == sdk_hash(items[path])
    assert delta(after, before, "files/upload_session/start") == count
    assert delta(after, before, "files/upload_session/finish_batch_v2") == math.ceil(
        count / batch_size
    )
    assert delta(after, before, "files/upload_session/finish") == 0
    assert delta(after, before, "files/upload") == 0
    assert after["commits"] - before["commits"] == math.ceil(count / batch_size)
    for path, data in list(items.items())[:3]:
        _, response = sdk_client.files_download(path)
        assert response.content == data
        response.close()


def test_batch_size_one_commits_each_file(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    emu = clean_emulator
    transfers = make(sdk_client, jobs=4, batch_size=1)
    items = small_files(root, 6)
    before = emu.stats()
    upload_all(transfers, items, jobs=4)
    after = emu.stats()
    assert delta(after, before, "files/upload_session/finish") == 6
    assert delta(after, before, "files/upload_session/finish_batch_v2") == 0


def test_write_contention_on_a_batch_is_retried_without_reuploading(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    emu = clean_emulator
    emu.control(
        "POST",
        "faults",
        {
            "route": "files/upload_session/finish_batch_v2",
            "status": 429,
            "reason": "too_many_write_operations",
            "retry_after": 1,
            "times": 1,
        },
    )
    transfers = make(sdk_client, jobs=5, idle_timeout=30)
    items = small_files(root, 5)
    before = emu.stats()
    results = upload_all(transfers, items, jobs=5)
    after = emu.stats()
    assert len(results) == 5
    assert delta(after, before, "files/upload_session/start") == 5  # bytes sent once
    assert delta(after, before, "files/upload_session/finish_batch_v2") == 2
    assert transfers.pacer.retries == {"too_many_write_operations": 1}


def test_commit_lock_contention_with_single_commits_is_paced(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    """`batch_size 1` + a slow write lock: 429 too_many_write_operations, retried, all stored."""
    emu = clean_emulator
    emu.control("POST", "config", {"commit_ms": 150, "lock_wait_ms": 10})
    transfers = make(sdk_client, jobs=8, batch_size=1)
    items = small_files(root, 8)
    before = emu.stats()
    results = upload_all(transfers, items, jobs=8)
    after = emu.stats()
    assert {m.content_hash for m in results.values()} == {sdk_hash(d) for d in items.values()}
    assert transfers.pacer.retries.get("too_many_write_operations", 0) > 0
    assert delta(after, before, "files/upload_session/start") == 8  # never re-uploaded
    assert delta(after, before, "files/upload_session/finish") > 8


def test_pacer_honours_retry_after(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    emu = clean_emulator
    emu.control(
        "POST",
        "faults",
        {
            "route": "files/upload_session/start",
            "status": 429,
            "reason": "too_many_requests",
            "retry_after": 2,
            "times": 1,
        },
    )
    sleep = Recorder()
    transfers = make(sdk_client, jobs=2, sleep=sleep)
    before = emu.stats()
    metadata = transfers.upload_fileobj(io.BytesIO(b"paced"), f"{root}/paced", 5)
    after = emu.stats()
    assert metadata.size == 5
    assert sum(sleep.sleeps) >= 2  # never less than the server asked for
    assert delta(after, before, "files/upload_session/start") == 2


def test_too_many_requests_storm_lowers_concurrency(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    emu = clean_emulator
    emu.control("POST", "config", {"rate_limit_per_s": 8})
    jobs = 16
    transfers = make(sdk_client, jobs=jobs)
    items = small_files(root, 40, size=100)
    results = upload_all(transfers, items, jobs=jobs)
    emu.control("POST", "config", {"rate_limit_per_s": 0})
    assert len(results) == 40
    assert transfers.pacer.retries.get("too_many_requests", 0) > 0
    assert transfers.pacer.lowest_limit < jobs


def test_large_file_round_trip_with_dropped_append(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str, tmp_path: Path
) -> None:
    emu = clean_emulator
    data = os.urandom(3 * CHUNK + 12345)
    source = tmp_path / "large.bin"
    source.write_bytes(data)
    emu.control(
        "POST",
        "faults",
        {
            "route": "files/upload_session/append_v2",
            "drop_connection": True,
            "after_bytes": MiB,
            "times": 1,
        },
    )
    transfers = make(sdk_client, jobs=2)
    before = emu.stats()
    metadata = transfers.upload_file(str(source), f"{root}/large.bin", None)
    after = emu.stats()
    assert metadata.size == len(data)
    assert metadata.content_hash == sdk_hash(data)
    # 1 start + 3 appends (the last one closes) + 1 retried append; one batch commit.
    assert delta(after, before, "files/upload_session/start") == 1
    assert delta(after, before, "files/upload_session/append_v2") == 4
    assert delta(after, before, "files/upload_session/finish_batch_v2") == 1

    target = tmp_path / "back.bin"
    got = transfers.download_file(f"{root}/large.bin", str(target), None)
    assert got.content_hash == metadata.content_hash
    assert target.read_bytes() == data


def test_unknown_size_non_seekable_stream(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str
) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            piece = self._data.read(min(len(buffer), 100_000))  # short reads, like a pipe
            buffer[: len(piece)] = piece
            return len(piece)

    transfers = make(sdk_client, jobs=2)
    for size in (0, 17, CHUNK, 2 * CHUNK + 1):
        data = os.urandom(size)
        metadata = transfers.upload_fileobj(Pipe(data), f"{root}/pipe{size}", None)
        assert metadata.size == size
        assert metadata.content_hash == sdk_hash(data)


def test_append_resumes_from_correct_offset_after_a_lost_answer(
    clean_emulator: EmulatorProcess, sdk_client: Any
) -> None:
    """The request arrived but its answer was lost: the retry learns `correct_offset`."""
    first, second = os.urandom(CHUNK), os.urandom(CHUNK)
    session = sdk_client.files_upload_session_start(first).session_id
    cursor = files.UploadSessionCursor(session_id=session, offset=CHUNK)
    sdk_client.files_upload_session_append_v2(second, cursor)  # "lost answer"
    transfers = make(sdk_client, jobs=1)
    # Our retry of the same append: the server is already at 2 chunks.
    end = transfers._append(session, CHUNK, second, content_hash(second), close=False)
    assert end == 2 * CHUNK
    # A server behind us (it "lost" data we thought it had) asks for a rewind.
    with pytest.raises(_Rewind) as info:
        transfers._append(session, 3 * CHUNK, b"x", content_hash(b"x"), close=False)
    assert info.value.offset == 2 * CHUNK


def test_download_resumes_after_a_dropped_connection(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str, tmp_path: Path
) -> None:
    emu = clean_emulator
    data = os.urandom(2 * CHUNK + 7)
    transfers = make(sdk_client, jobs=2)
    transfers.upload_fileobj(io.BytesIO(data), f"{root}/d.bin", len(data))
    emu.control(
        "POST",
        "faults",
        {"route": "files/download", "drop_connection": True, "after_bytes": MiB, "times": 1},
    )
    before = emu.stats()
    transfers.download_file(f"{root}/d.bin", str(tmp_path / "d.bin"), None)
    after = emu.stats()
    assert (tmp_path / "d.bin").read_bytes() == data
    # The cut whole-file answer, then one Range request per chunk (range 0 resumed where it broke).
    assert delta(after, before, "files/download") == 1 + len(plan_ranges(len(data), CHUNK))
    assert [p.name for p in tmp_path.iterdir()] == ["d.bin"]


def test_corrupt_download_raises_and_leaves_nothing(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str, tmp_path: Path
) -> None:
    emu = clean_emulator
    data = os.urandom(CHUNK + 99)
    transfers = make(sdk_client, jobs=2)
    transfers.upload_fileobj(io.BytesIO(data), f"{root}/c.bin", len(data))
    # Every request of every try of download_file (one per chunk-sized range), then the
    # streaming read below.
    times = MAX_VERIFY_ATTEMPTS * len(plan_ranges(len(data), CHUNK)) + 1
    emu.control("POST", "faults", {"route": "files/download", "corrupt_body": True, "times": times})
    target = tmp_path / "out" / "c.bin"
    target.parent.mkdir()
    with pytest.raises(DropboxIntegrityError, match="content_hash"):
        transfers.download_file(f"{root}/c.bin", str(target), None)
    assert list(target.parent.iterdir()) == []
    # A whole-file streaming read is checked too, when it reaches the end.
    with pytest.raises(DropboxIntegrityError), transfers.open_read(f"{root}/c.bin") as reader:
        reader.read()
    emu.control("DELETE", "faults")
    transfers.download_file(f"{root}/c.bin", str(target), None)
    assert target.read_bytes() == data


@pytest.mark.parametrize("sdk_has_extra_headers", [True, False])
def test_open_read_ranges(
    clean_emulator: EmulatorProcess,
    sdk_client: Any,
    root: str,
    sdk_has_extra_headers: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ranged reads; also the way SDK 12.0/12.1 (no `extra_headers`) must take."""
    from dvc_dropbox.transfer import downloads as transfer

    if not sdk_has_extra_headers:
        monkeypatch.setattr(transfer, "_download_takes_headers", lambda client: False)
    elif not transfer._download_takes_headers(sdk_client):
        pytest.skip("dropbox SDK < 12.2 has no extra_headers (the False case covers it)")
    data = os.urandom(CHUNK + 1000)
    transfers = make(sdk_client, jobs=2)
    transfers.upload_fileobj(io.BytesIO(data), f"{root}/r.bin", len(data))
    path = f"{root}/r.bin"
    with transfers.open_read(path) as reader:
        assert reader.read() == data
    with transfers.open_read(path, start=10, end=5000) as reader:
        assert reader.read() == data[10:5000]
    with transfers.open_read(path, start=CHUNK) as reader:
        assert reader.read() == data[CHUNK:]
    with transfers.open_read(path, start=7, end=7) as reader:
        assert reader.read() == b""
    with transfers.open_read(path, start=len(data) + 10) as reader:
        assert reader.read() == b""


def test_empty_file_round_trip(
    clean_emulator: EmulatorProcess, sdk_client: Any, root: str, tmp_path: Path
) -> None:
    transfers = make(sdk_client, jobs=2)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    metadata = transfers.upload_file(str(empty), f"{root}/empty", None)
    assert metadata.size == 0
    transfers.download_file(f"{root}/empty", str(tmp_path / "back"), None)
    assert (tmp_path / "back").read_bytes() == b""
    with transfers.open_read(f"{root}/empty") as reader:
        assert reader.read() == b""
