"""`files/upload_session/append_batch` through the official SDK against the emulator: many
sessions' bytes in one body, whole-call errors, per-entry results beside successes, the 150 MiB
bound, lost answers, faults and the per-token request budget."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from dropbox import files, stone_validators
from dropbox.exceptions import ApiError, BadInputError, RateLimitError

from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess
from tests.helpers.emulator import sdk_client as make_client
from tests.integration.emulator.test_lost_answers import assert_cut, control_raw
from tests.integration.emulator.test_transport import MiB, _raw_request, post

ROUTE = "files/upload_session/append_batch"
BLOCK = 4 * MiB
Piece = tuple[str, int, bytes, bool]  # session id, offset, bytes, close


@pytest.fixture
def base() -> str:
    return f"/ab-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def token(emulator: EmulatorProcess) -> str:
    return str(emulator.token()["access_token"])


@pytest.fixture
def faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    yield emulator
    emulator.clear_faults()


def cursor(session_id: str, offset: int) -> files.UploadSessionCursor:
    return files.UploadSessionCursor(session_id=session_id, offset=offset)


def append_batch(
    client: Any, pieces: list[Piece], *, body: Optional[bytes] = None, hashed: bool = True
) -> list[files.UploadSessionAppendBatchResultEntry]:
    """One append_batch call; `body` defaults to the pieces' bytes concatenated."""
    entries = [
        files.UploadSessionAppendBatchArgEntry(cursor(sid, offset), len(data), close)
        for sid, offset, data, close in pieces
    ]
    if body is None:
        body = b"".join(data for _, _, data, _ in pieces)
    digest = content_hash(body) if hashed else None
    result = client.files_upload_session_append_batch(body, entries, content_hash=digest)
    return list(result.entries)


def finish_all(client: Any, base: str, sessions: list[tuple[str, int]]) -> list[Any]:
    entries = [
        files.UploadSessionFinishArg(cursor(sid, size), files.CommitInfo(f"{base}/f{i:03d}"))
        for i, (sid, size) in enumerate(sessions)
    ]
    return list(client.files_upload_session_finish_batch_v2(entries).entries)


def download(client: Any, path: str) -> bytes:
    _, resp = client.files_download(path)
    with resp:
        return bytes(resp.content)


def test_300_sessions_in_one_append_batch_then_finish_batch_v2(
    emulator: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    ids = sdk_client.files_upload_session_start_batch(300).session_ids
    # Sizes from 0 to ~17 KiB, one of 300 KiB (a large slice, copied to a piece file); the
    # body (~2.8 MiB) is spooled to disk, so the slices come from the spooled file.
    contents = [b"%03d:" % i + bytes([i % 251]) * (i * 57) for i in range(300)]
    contents[7] = b""
    contents[150] = bytes(range(256)) * 1200
    before = emulator.stats()
    results = append_batch(sdk_client, [(sid, 0, c, True) for sid, c in zip(ids, contents)])
    after = emulator.stats()
    assert [r.is_success() for r in results] == [True] * 300
    assert after["requests"][ROUTE] - before["requests"].get(ROUTE, 0) == 1
    assert after["commits"] == before["commits"]  # session data takes no namespace lock
    committed = finish_all(sdk_client, base, [(sid, len(c)) for sid, c in zip(ids, contents)])
    assert [e.is_success() for e in committed] == [True] * 300
    for entry, data in zip(committed, contents):
        metadata = entry.get_success()
        assert (metadata.size, metadata.content_hash) == (len(data), content_hash(data))
    assert download(sdk_client, f"{base}/f150") == contents[150]
    assert download(sdk_client, f"{base}/f299") == contents[299]


def test_small_body_kept_in_memory_and_sessions_continued(sdk_client: Any, base: str) -> None:
    """A small body (not spooled) split in memory; a session may take several appends in one
    call, in the entries' order, and more bytes from a later append_v2."""
    first, second = sdk_client.files_upload_session_start_batch(2).session_ids
    results = append_batch(
        sdk_client, [(first, 0, b"abc", False), (second, 0, b"xyz", True), (first, 3, b"de", False)]
    )
    assert all(r.is_success() for r in results)
    sdk_client.files_upload_session_append_v2(b"f", cursor(first, 5), close=True)
    committed = finish_all(sdk_client, base, [(first, 6), (second, 3)])
    assert download(sdk_client, f"{base}/f000") == b"abcdef"
    assert committed[1].get_success().content_hash == content_hash(b"xyz")


def test_length_mismatch_appends_nothing(sdk_client: Any) -> None:
    (sid,) = sdk_client.files_upload_session_start_batch(1).session_ids
    for body in (b"abcd", b"ab"):  # more and fewer bytes than the lengths say
        with pytest.raises(ApiError) as excinfo:
            append_batch(sdk_client, [(sid, 0, b"abc", False)], body=body)
        assert excinfo.value.error.is_length_mismatch()
    results = append_batch(sdk_client, [(sid, 0, b"abc", False)])
    assert results[0].is_success()  # offset 0 still: the refused calls appended nothing


def test_content_hash_mismatch_appends_nothing(sdk_client: Any) -> None:
    first, second = sdk_client.files_upload_session_start_batch(2).session_ids
    entries = [
        files.UploadSessionAppendBatchArgEntry(cursor(first, 0), 3, False),
        files.UploadSessionAppendBatchArgEntry(cursor(second, 0), 3, False),
    ]
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_batch(
            b"abcdef", entries, content_hash=content_hash(b"abcdeX")
        )
    assert excinfo.value.error.is_content_hash_mismatch()
    results = append_batch(sdk_client, [(first, 0, b"abc", False), (second, 0, b"def", False)])
    assert all(r.is_success() for r in results)


def test_per_entry_failures_beside_successes(sdk_client: Any, base: str) -> None:
    ids = sdk_client.files_upload_session_start_batch(5).session_ids
    sdk_client.files_upload_session_append_v2(b"12345", cursor(ids[1], 0))
    sdk_client.files_upload_session_append_v2(b"done", cursor(ids[2], 0), close=True)
    concurrent = files.UploadSessionType.concurrent
    parallel = sdk_client.files_upload_session_start(b"", session_type=concurrent).session_id
    pieces: list[Piece] = [
        (ids[0], 0, b"good-0", True),
        (ids[1], 2, b"late", False),  # incorrect_offset: 5 bytes are there
        (ids[2], 4, b"more", False),  # closed
        ("pid_upload_session:gone", 0, b"lost", True),  # not_found
        (parallel, 1000, b"x" * 10, False),  # concurrent: offset not a multiple of 4 MiB
        (parallel, 0, b"y" * 10, False),  # concurrent: length not a multiple of 4 MiB
        (ids[3], 0, b"good-3", True),
    ]
    results = append_batch(sdk_client, pieces)
    assert [r.is_success() for r in results] == [True, False, False, False, False, False, True]
    offset_error = results[1].get_failure()
    assert offset_error.is_incorrect_offset()
    assert offset_error.get_incorrect_offset().correct_offset == 5
    assert results[2].get_failure().is_closed()
    assert results[3].get_failure().is_not_found()
    assert results[4].get_failure().is_concurrent_session_invalid_offset()
    assert results[5].get_failure().is_concurrent_session_invalid_data_size()
    committed = finish_all(sdk_client, base, [(ids[0], 6), (ids[3], 6)])
    assert [e.is_success() for e in committed] == [True, True]
    assert download(sdk_client, f"{base}/f001") == b"good-3"


def test_concurrent_session_blocks_in_one_batch(sdk_client: Any, base: str) -> None:
    """A concurrent session's 4 MiB blocks, out of order, and its closing remainder."""
    data = bytes(range(256)) * (BLOCK // 256) * 2 + b"tail"
    concurrent = files.UploadSessionType.concurrent
    sid = sdk_client.files_upload_session_start(b"", session_type=concurrent).session_id
    pieces: list[Piece] = [
        (sid, BLOCK, data[BLOCK : 2 * BLOCK], False),
        (sid, 0, data[:BLOCK], False),
        (sid, 2 * BLOCK, data[2 * BLOCK :], True),
    ]
    assert all(r.is_success() for r in append_batch(sdk_client, pieces))
    metadata = sdk_client.files_upload_session_finish(
        b"", cursor(sid, len(data)), files.CommitInfo(f"{base}/c")
    )
    assert (metadata.size, metadata.content_hash) == (len(data), content_hash(data))


def test_too_large_entry(sdk_client: Any) -> None:
    concurrent = files.UploadSessionType.concurrent
    sid = sdk_client.files_upload_session_start(b"", session_type=concurrent).session_id
    results = append_batch(sdk_client, [(sid, 2**41, b"x", True)])
    assert results[0].get_failure().is_too_large()


def test_500_entries_served_501_refused(
    emulator: EmulatorProcess, sdk_client: Any, token: str
) -> None:
    """`max_items=500`: the SDK checks it before sending; the emulator decodes as strictly."""
    ids = sdk_client.files_upload_session_start_batch(500).session_ids
    results = append_batch(sdk_client, [(sid, 0, b"%d" % i, True) for i, sid in enumerate(ids)])
    assert len(results) == 500 and all(r.is_success() for r in results)
    entry = {"cursor": {"session_id": "pid_upload_session:x", "offset": 0}, "length": 0}
    arg = json.dumps({"entries": [dict(entry, close=False)] * 501})
    head = (
        f"POST /2/{ROUTE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\nDropbox-API-Arg: {arg}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    headers, body = _raw_request(emulator, head)
    assert headers.startswith(b"HTTP/1.1 400 "), headers
    assert body.startswith(f'Error in call to API function "{ROUTE}"'.encode()), body
    assert b"entries" in body and b"500" in body, body
    with pytest.raises(stone_validators.ValidationError):
        append_batch(make_client(emulator), [("pid_upload_session:x", 0, b"", False)] * 501)


def test_150_mib_bound_is_on_the_body(
    emulator: EmulatorProcess, sdk_client: Any, token: str
) -> None:
    """A Content-Length over 150 MiB is refused before any byte of the body is read, as
    Dropbox refuses such a payload (so nothing near 150 MiB is sent here); lengths that claim
    more than the small body carries are a length_mismatch, not payload_too_large."""
    (sid,) = sdk_client.files_upload_session_start_batch(1).session_ids
    over = 150 * MiB + 1
    entries = [files.UploadSessionAppendBatchArgEntry(cursor(sid, 0), over, True)]
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_batch(b"small", entries)
    assert excinfo.value.error.is_length_mismatch()
    before = emulator.stats()["bytes_in"]
    entry = {"cursor": {"session_id": sid, "offset": 0}, "close": True}
    arg = json.dumps({"entries": [dict(entry, length=over)]})
    head = (
        f"POST /2/{ROUTE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\nDropbox-API-Arg: {arg}\r\n"
        f"Content-Length: {over}\r\n\r\n"
    ).encode()
    headers, body = _raw_request(emulator, head, b"x" * 4096)
    assert headers.startswith(b"HTTP/1.1 409 "), headers
    payload = json.loads(body)
    assert payload["error"] == {".tag": "payload_too_large"}
    assert payload["error_summary"].startswith("payload_too_large/")
    assert emulator.stats()["bytes_in"] - before < MiB


def test_lost_answer_then_retry_meets_incorrect_offset(
    faults: EmulatorProcess, sdk_client: Any
) -> None:
    first, second = sdk_client.files_upload_session_start_batch(2).session_ids
    faults.fault(route=ROUTE, drop_connection="after_processing")
    pieces: list[Piece] = [(first, 0, b"abc", False), (second, 0, b"defg", False)]
    with pytest.raises(Exception) as excinfo:
        append_batch(sdk_client, pieces)
    assert_cut(excinfo)
    results = append_batch(sdk_client, pieces)  # the same call again: it had landed
    offsets = [r.get_failure().get_incorrect_offset().correct_offset for r in results]
    assert offsets == [3, 4]


def test_injected_entry_failure_leaves_that_session_unchanged(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    faults.fault(route=ROUTE, entry_failure="not_found", times=1)
    ids = sdk_client.files_upload_session_start_batch(3).session_ids
    pieces: list[Piece] = [(sid, 0, b"file %d" % i, True) for i, sid in enumerate(ids)]
    results = append_batch(sdk_client, pieces)
    assert results[0].get_failure().is_not_found()
    assert [r.is_success() for r in results[1:]] == [True, True]
    assert faults.faults() == []
    retried = append_batch(sdk_client, pieces[:1])  # the failed entry alone, at offset 0
    assert retried[0].is_success()
    committed = finish_all(sdk_client, base, [(sid, 6) for sid in ids])
    assert [e.is_success() for e in committed] == [True] * 3


def test_entry_fault_for_finishes_leaves_append_batch_alone(
    faults: EmulatorProcess, sdk_client: Any
) -> None:
    """A `too_many_write_operations` entry fault is not a tag of append_batch's entries."""
    faults.fault(route="files/upload_session/*", entry_failure="too_many_write_operations")
    (sid,) = sdk_client.files_upload_session_start_batch(1).session_ids
    assert append_batch(sdk_client, [(sid, 0, b"a", True)])[0].is_success()
    assert len(faults.faults()) == 1


def test_one_request_of_the_token_budget(emulator: EmulatorProcess, sdk_client: Any) -> None:
    """A 300-entry append_batch costs one request of the per-token budget (Dropbox does not
    publish whether a batch costs more): with a budget of one request, it is served, and the
    token's next request is refused."""
    ids = sdk_client.files_upload_session_start_batch(300).session_ids
    limited = make_client(emulator)  # its own token: a full bucket of one request
    emulator.config(rate_limit_per_s=0.05)
    try:
        results = append_batch(limited, [(sid, 0, b"%d" % i, True) for i, sid in enumerate(ids)])
        assert all(r.is_success() for r in results)
        with pytest.raises(RateLimitError):
            limited.files_upload_session_start_batch(1)
    finally:
        emulator.config(rate_limit_per_s=None)


def test_start_batch_limits_and_a_full_pack(
    emulator: EmulatorProcess, sdk_client: Any, token: str, base: str
) -> None:
    """start_batch takes 1 to 1,000 sessions (`UInt64(min_value=1, max_value=1000)`): 1,000
    sessions filled by two append_batch calls of 500 and committed by one finish_batch_v2."""
    for count in (0, 1001):
        resp = post(
            emulator,
            "/2/files/upload_session/start_batch",
            token=token,
            body=json.dumps({"num_sessions": count}),
        )
        assert resp.status_code == 400, resp.text
        assert "num_sessions" in resp.text
    ids = sdk_client.files_upload_session_start_batch(1000).session_ids
    assert len(set(ids)) == 1000
    for half in (ids[:500], ids[500:]):
        results = append_batch(sdk_client, [(sid, 0, sid.encode(), True) for sid in half])
        assert all(r.is_success() for r in results)
    committed = finish_all(sdk_client, base, [(sid, len(sid)) for sid in ids])
    assert [e.is_success() for e in committed] == [True] * 1000
    assert committed[999].get_success().content_hash == content_hash(ids[999].encode())


def test_unknown_route_fault_for_a_fallback(faults: EmulatorProcess, sdk_client: Any) -> None:
    """`"unknown_route": true` answers what Dropbox answers for a route it does not serve: the
    SDK raises BadInputError; nothing ran (the sessions are as they were)."""
    faults.fault(route="files/upload_session/start_batch", unknown_route=True)
    faults.fault(route=ROUTE, unknown_route=True, times=2)
    with pytest.raises(BadInputError) as excinfo:
        sdk_client.files_upload_session_start_batch(2)
    assert excinfo.value.message == 'Unknown API function: "files/upload_session/start_batch"'
    (sid,) = sdk_client.files_upload_session_start_batch(1).session_ids
    for _ in range(2):
        with pytest.raises(BadInputError) as excinfo:
            append_batch(sdk_client, [(sid, 0, b"abc", True)])
        assert excinfo.value.message == f'Unknown API function: "{ROUTE}"'
    assert append_batch(sdk_client, [(sid, 0, b"abc", True)])[0].is_success()
    for spec in (
        {"route": ROUTE, "unknown_route": True, "status": 503},
        {"route": ROUTE, "unknown_route": True, "drop_connection": "after_processing"},
        {"route": ROUTE, "unknown_route": "yes"},
    ):
        resp = control_raw(faults, "POST", "faults", spec)
        assert resp.status_code == 400, spec
    assert faults.faults() == []
