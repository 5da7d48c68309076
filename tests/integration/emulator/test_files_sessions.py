"""Upload sessions (sequential, concurrent, batches) through the SDK against the emulator."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from dropbox import files
from dropbox.exceptions import ApiError

from tests.helpers.content_hash import content_hash, new_hasher
from tests.helpers.emulator import EmulatorProcess
from tests.helpers.emulator import sdk_client as make_client

MIB = 1024 * 1024
BLOCK = 4 * MIB


@pytest.fixture
def base() -> str:
    return f"/s-{uuid.uuid4().hex[:10]}"


def chash(data: bytes) -> str:
    return content_hash(data)


def cursor(session_id: str, offset: int) -> files.UploadSessionCursor:
    return files.UploadSessionCursor(session_id=session_id, offset=offset)


def test_sequential_session(sdk_client: Any, base: str) -> None:
    parts = [b"a" * 1000, b"b" * 2000, b"c" * 10]
    sid = sdk_client.files_upload_session_start(parts[0]).session_id
    assert sid
    sdk_client.files_upload_session_append_v2(parts[1], cursor(sid, 1000))
    md = sdk_client.files_upload_session_finish(
        parts[2], cursor(sid, 3000), files.CommitInfo(f"{base}/seq.bin")
    )
    data = b"".join(parts)
    assert md.size == len(data) and md.content_hash == chash(data)
    _, resp = sdk_client.files_download(f"{base}/seq.bin")
    with resp:
        assert resp.content == data


def test_incorrect_offset_closed_and_not_found(sdk_client: Any, base: str) -> None:
    sid = sdk_client.files_upload_session_start(b"12345").session_id
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"678", cursor(sid, 3))
    err = excinfo.value.error
    assert err.is_incorrect_offset() and err.get_incorrect_offset().correct_offset == 5
    sdk_client.files_upload_session_append_v2(b"678", cursor(sid, 5), close=True)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"9", cursor(sid, 8))
    assert excinfo.value.error.is_closed()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"9", cursor("pid_upload_session:nope", 0))
    assert excinfo.value.error.is_not_found()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(b"", cursor(sid, 2), files.CommitInfo(f"{base}/x"))
    lookup = excinfo.value.error.get_lookup_failed()
    assert lookup.is_incorrect_offset() and lookup.get_incorrect_offset().correct_offset == 8
    md = sdk_client.files_upload_session_finish(b"", cursor(sid, 8), files.CommitInfo(f"{base}/x"))
    assert md.size == 8
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(b"", cursor(sid, 8), files.CommitInfo(f"{base}/y"))
    assert excinfo.value.error.is_lookup_failed()


def test_append_v1(sdk_client: Any, base: str) -> None:
    sid = sdk_client.files_upload_session_start(b"ab").session_id
    sdk_client.files_upload_session_append(b"cd", sid, 2)
    md = sdk_client.files_upload_session_finish(b"", cursor(sid, 4), files.CommitInfo(f"{base}/v1"))
    assert md.content_hash == chash(b"abcd")


def test_finish_write_error_keeps_data(sdk_client: Any, base: str) -> None:
    sdk_client.files_create_folder_v2(f"{base}/taken")
    sid = sdk_client.files_upload_session_start(b"abc").session_id
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"def", cursor(sid, 3), files.CommitInfo(f"{base}/taken")
        )
    assert excinfo.value.error.get_path().get_conflict().is_folder()
    md = sdk_client.files_upload_session_finish(
        b"", cursor(sid, 6), files.CommitInfo(f"{base}/free")
    )
    assert md.content_hash == chash(b"abcdef")


def test_upload_conflict_session_can_be_finished(sdk_client: Any, base: str) -> None:
    sdk_client.files_upload(b"first", f"{base}/f")
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload(b"second", f"{base}/f")
    session_id = excinfo.value.error.get_path().upload_session_id
    md = sdk_client.files_upload_session_finish(
        b"", cursor(session_id, 6), files.CommitInfo(f"{base}/g")
    )
    assert md.content_hash == chash(b"second")


def test_concurrent_session_out_of_order(sdk_client: Any, base: str) -> None:
    data = bytes(range(256)) * (BLOCK // 256) * 2 + b"tail"
    start = files.UploadSessionType.concurrent
    sid = sdk_client.files_upload_session_start(b"", session_type=start).session_id
    # second block first, then the first one, then the closing remainder, in parallel
    pieces = [(BLOCK, data[BLOCK : 2 * BLOCK], False), (0, data[:BLOCK], False)]
    errors: list[BaseException] = []

    def append(offset: int, chunk: bytes, close: bool) -> None:
        try:
            sdk_client.files_upload_session_append_v2(chunk, cursor(sid, offset), close=close)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=p) for p in pieces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"", cursor(sid, 2 * BLOCK), files.CommitInfo(f"{base}/c")
        )
    assert excinfo.value.error.is_concurrent_session_not_closed()
    append(2 * BLOCK, data[2 * BLOCK :], True)
    assert not errors
    md = sdk_client.files_upload_session_finish(
        b"", cursor(sid, len(data)), files.CommitInfo(f"{base}/c")
    )
    assert md.size == len(data) and md.content_hash == chash(data)


def test_concurrent_session_rules(sdk_client: Any, base: str) -> None:
    concurrent = files.UploadSessionType.concurrent
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_start(b"data", session_type=concurrent)
    assert excinfo.value.error.is_concurrent_session_data_not_allowed()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_start(b"", session_type=concurrent, close=True)
    assert excinfo.value.error.is_concurrent_session_close_not_allowed()
    sid = sdk_client.files_upload_session_start(b"", session_type=concurrent).session_id
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"x" * 10, cursor(sid, 100))
    assert excinfo.value.error.is_concurrent_session_invalid_offset()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"x" * 10, cursor(sid, 0))
    assert excinfo.value.error.is_concurrent_session_invalid_data_size()
    # a closing piece at 4 MiB with nothing at 0: data is missing
    sdk_client.files_upload_session_append_v2(b"end", cursor(sid, BLOCK), close=True)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"", cursor(sid, BLOCK + 3), files.CommitInfo(f"{base}/m")
        )
    assert excinfo.value.error.is_concurrent_session_missing_data()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"more", cursor(sid, BLOCK + 3), files.CommitInfo(f"{base}/m")
        )
    assert excinfo.value.error.is_concurrent_session_data_not_allowed()
    big = sdk_client.files_upload_session_start(b"", session_type=concurrent).session_id
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"x", cursor(big, 2**41), close=True)
    assert excinfo.value.error.is_too_large()


def test_start_batch_and_finish_batch_v2(sdk_client: Any, base: str) -> None:
    ids = sdk_client.files_upload_session_start_batch(4).session_ids
    assert len(set(ids)) == 4
    contents = [b"file %d" % i for i in range(4)]
    for sid, data in zip(ids[:3], contents[:3]):
        sdk_client.files_upload_session_append_v2(data, cursor(sid, 0), close=True)
    sdk_client.files_upload_session_append_v2(contents[3], cursor(ids[3], 0))  # not closed
    sdk_client.files_create_folder_v2(f"{base}/f2")  # makes entry 2 conflict
    entries = [
        files.UploadSessionFinishArg(cursor(sid, len(data)), files.CommitInfo(f"{base}/f{i}"))
        for i, (sid, data) in enumerate(zip(ids, contents))
    ]
    entries.append(
        files.UploadSessionFinishArg(cursor("pid_upload_session:gone", 0), files.CommitInfo("/x"))
    )
    result = sdk_client.files_upload_session_finish_batch_v2(entries).entries
    assert [e.is_success() for e in result] == [True, True, False, False, False]
    assert result[0].get_success().content_hash == chash(contents[0])
    assert result[1].get_success().path_display == f"{base}/f1"
    assert result[2].get_failure().get_path().get_conflict().is_folder()
    assert result[3].get_failure().get_lookup_failed().is_not_closed()
    assert result[4].get_failure().get_lookup_failed().is_not_found()


def test_finish_batch_v2_is_one_commit(emulator: Any, sdk_client: Any, base: str) -> None:
    ids = sdk_client.files_upload_session_start_batch(5).session_ids
    for sid in ids:
        sdk_client.files_upload_session_append_v2(b"x", cursor(sid, 0), close=True)
    before = emulator.stats()["commits"]
    entries = [
        files.UploadSessionFinishArg(cursor(sid, 1), files.CommitInfo(f"{base}/c{i}"))
        for i, sid in enumerate(ids)
    ]
    result = sdk_client.files_upload_session_finish_batch_v2(entries)
    assert all(e.is_success() for e in result.entries)
    assert emulator.stats()["commits"] - before == 1


def test_finish_batch_v1_and_check(sdk_client: Any, base: str) -> None:
    sid = sdk_client.files_upload_session_start(b"v1 batch", close=True).session_id
    launch = sdk_client.files_upload_session_finish_batch(
        [files.UploadSessionFinishArg(cursor(sid, 8), files.CommitInfo(f"{base}/b"))]
    )
    assert launch.is_async_job_id()
    status = sdk_client.files_upload_session_finish_batch_check(launch.get_async_job_id())
    for _ in range(50):
        if status.is_complete():
            break
        status = sdk_client.files_upload_session_finish_batch_check(launch.get_async_job_id())
    entries = status.get_complete().entries
    assert entries[0].get_success().name == "b"
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish_batch_check("dbjid:unknown")
    assert excinfo.value.error.is_invalid_async_job_id()


def _pattern(index: int, size: int) -> bytes:
    """Deterministic, non-repeating-ish test data for chunk `index`."""
    seed = hashlib.sha256(b"%d" % index).digest()
    return (seed * (size // len(seed) + 1))[:size]


def peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (Linux), or 0 where unknown."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.slow
def test_300_mib_session_round_trip(
    emulator: Any, sdk_client: Any, base: str, tmp_path: Path
) -> None:
    chunk_size, chunks = 32 * MIB, 10  # 320 MiB
    rss_before = peak_rss(emulator.proc.pid)
    hasher, sha = new_hasher(), hashlib.sha256()
    sid = ""
    for index in range(chunks):
        chunk = _pattern(index, chunk_size)
        hasher.update(chunk)
        sha.update(chunk)
        if index == 0:
            sid = sdk_client.files_upload_session_start(chunk).session_id
        else:
            sdk_client.files_upload_session_append_v2(chunk, cursor(sid, index * chunk_size))
    md = sdk_client.files_upload_session_finish(
        b"", cursor(sid, chunks * chunk_size), files.CommitInfo(f"{base}/big.bin")
    )
    assert md.size == chunks * chunk_size
    assert md.content_hash == hasher.hexdigest()
    target = tmp_path / "big.bin"
    sdk_client.files_download_to_file(str(target), f"{base}/big.bin")
    got = hashlib.sha256()
    with open(target, "rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            got.update(block)
    assert target.stat().st_size == md.size
    assert got.hexdigest() == sha.hexdigest()
    # Bodies are spooled and sessions assembled on disk: the emulator's peak memory grows by
    # far less than the file (one request chunk at most).
    assert peak_rss(emulator.proc.pid) - rss_before < chunk_size + 64 * MIB


# -- concurrent sessions: the rules of the stone docs (UploadSessionAppendError,
# UploadSessionFinishError, upload_session/start) -------------------------------------------


def concurrent_session(dbx: Any) -> str:
    kind = files.UploadSessionType.concurrent
    return str(dbx.files_upload_session_start(b"", session_type=kind).session_id)


def test_concurrent_session_closed_by_its_last_append(sdk_client: Any, base: str) -> None:
    """"If true, the current session will be closed, at which point you won't be able to call
    files_upload_session_append_v2 anymore"; the finish's offset is the file's size."""
    sid = concurrent_session(sdk_client)
    sdk_client.files_upload_session_append_v2(b"end", cursor(sid, BLOCK), close=True)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"a" * BLOCK, cursor(sid, 0))
    assert excinfo.value.error.is_closed()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"x", cursor(sid, 2 * BLOCK), close=True)
    assert excinfo.value.error.is_closed()  # closing twice is an append after the close
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(b"", cursor(sid, 3), files.CommitInfo(f"{base}/c"))
    lookup = excinfo.value.error.get_lookup_failed()
    assert lookup.get_incorrect_offset().correct_offset == BLOCK + 3
    # v1 append has no close: its data must be whole blocks
    other = concurrent_session(sdk_client)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append(b"x" * 10, other, 0)
    assert excinfo.value.error.is_concurrent_session_invalid_data_size()


def test_concurrent_pieces_that_overlap_are_missing_data(sdk_client: Any, base: str) -> None:
    """Two blocks at 0, then one at 4 MiB (a different chunk size, as after a careless resume):
    the pieces do not follow each other, which finish refuses instead of making a 12 MiB file
    out of an 8 MiB session."""
    sid = concurrent_session(sdk_client)
    sdk_client.files_upload_session_append_v2(b"a" * (2 * BLOCK), cursor(sid, 0))
    sdk_client.files_upload_session_append_v2(b"b" * BLOCK, cursor(sid, BLOCK))
    sdk_client.files_upload_session_append_v2(b"", cursor(sid, 2 * BLOCK), close=True)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"", cursor(sid, 2 * BLOCK), files.CommitInfo(f"{base}/overlap")
        )
    assert excinfo.value.error.is_concurrent_session_missing_data()


def test_concurrent_file_ends_where_its_closing_append_ends(sdk_client: Any, base: str) -> None:
    """A block appended past the end before the close is not part of the file."""
    sid = concurrent_session(sdk_client)
    head = _pattern(1, BLOCK)
    sdk_client.files_upload_session_append_v2(head, cursor(sid, 0))
    sdk_client.files_upload_session_append_v2(b"z" * BLOCK, cursor(sid, 3 * BLOCK))
    sdk_client.files_upload_session_append_v2(b"end", cursor(sid, BLOCK), close=True)
    md = sdk_client.files_upload_session_finish(
        b"", cursor(sid, BLOCK + 3), files.CommitInfo(f"{base}/ends")
    )
    assert md.size == BLOCK + 3 and md.content_hash == chash(head + b"end")


def test_concurrent_sessions_finish_in_a_batch(sdk_client: Any, base: str) -> None:
    kind = files.UploadSessionType.concurrent
    ids = sdk_client.files_upload_session_start_batch(2, session_type=kind).session_ids
    data = _pattern(2, BLOCK) + b"tail"
    sdk_client.files_upload_session_append_v2(data[:BLOCK], cursor(ids[0], 0))
    sdk_client.files_upload_session_append_v2(data[BLOCK:], cursor(ids[0], BLOCK), close=True)
    sdk_client.files_upload_session_append_v2(data[:BLOCK], cursor(ids[1], 0))  # not closed
    entries = [
        files.UploadSessionFinishArg(cursor(sid, len(data)), files.CommitInfo(f"{base}/b{i}"))
        for i, sid in enumerate(ids)
    ]
    result = sdk_client.files_upload_session_finish_batch_v2(entries).entries
    assert result[0].get_success().content_hash == chash(data)
    assert result[1].get_failure().is_concurrent_session_not_closed()


# -- sessions live for a while (7 days on Dropbox) -----------------------------------------------


def test_sessions_expire_after_their_lifetime(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """Stone: "An upload session can be used for a maximum of 7 days" → not_found after that.
    Lifetime 200 s at time scale 0.01: 2 s."""
    with EmulatorProcess("--session-lifetime-s", "200", "--time-scale", "0.01") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = make_client(emu)
        sequential = dbx.files_upload_session_start(b"abc").session_id
        concurrent = concurrent_session(dbx)
        closed = dbx.files_upload_session_start(b"xyz", close=True).session_id
        born = time.monotonic()
        dbx.files_upload_session_append_v2(b"d", cursor(sequential, 3))  # young: fine
        dbx.files_upload_session_append_v2(b"c" * BLOCK, cursor(concurrent, 0))
        assert time.monotonic() - born < 2, "too slow to see a young session"
        time.sleep(max(0.0, born + 2.2 - time.monotonic()))
        with pytest.raises(ApiError) as excinfo:
            dbx.files_upload_session_append_v2(b"e", cursor(sequential, 4))
        assert excinfo.value.error.is_not_found()
        with pytest.raises(ApiError) as excinfo:
            dbx.files_upload_session_append_v2(b"end", cursor(concurrent, BLOCK), close=True)
        assert excinfo.value.error.is_not_found()
        with pytest.raises(ApiError) as excinfo:
            dbx.files_upload_session_finish(b"", cursor(sequential, 4), files.CommitInfo("/s"))
        assert excinfo.value.error.get_lookup_failed().is_not_found()
        entry = files.UploadSessionFinishArg(cursor(closed, 3), files.CommitInfo("/b"))
        result = dbx.files_upload_session_finish_batch_v2([entry]).entries[0]
        assert result.get_failure().get_lookup_failed().is_not_found()
        # a new session lives again, and the lifetime is a live knob
        emu.config(session_lifetime_s=0)
        fresh = dbx.files_upload_session_start(b"abc").session_id
        time.sleep(0.05)
        with pytest.raises(ApiError) as excinfo:
            dbx.files_upload_session_append_v2(b"d", cursor(fresh, 3))
        assert excinfo.value.error.is_not_found()
        assert emu.config(session_lifetime_s=604800)["session_lifetime_s"] == 604800
        dbx.files_upload_session_append_v2(b"d", cursor(fresh, 3))  # 7 days again
