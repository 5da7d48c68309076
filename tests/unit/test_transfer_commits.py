"""Unit tests of how batch-commit entry failures are handled, with a scripted stand-in client.

Every entry-failure kind is pinned here with SDK result objects; the emulator's `entry_failure`
fault covers `too_many_write_operations` on the real wire (test_entry_retry.py).
"""

from __future__ import annotations

import datetime
import io
import threading
from typing import Any

import pytest
from dropbox import files

from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer import SessionGone, Transfers, content_hash
from dvc_dropbox.transfer.pacer import Pacer

CHUNK = 4 * 1024 * 1024


def file_metadata(path: str, data: bytes) -> files.FileMetadata:
    now = datetime.datetime(2026, 1, 1)
    return files.FileMetadata(
        name=path.rsplit("/", 1)[-1],
        id="id:abcdefghijk",
        client_modified=now,
        server_modified=now,
        rev="0123456789",
        size=len(data),
        path_lower=path.lower(),
        path_display=path,
        content_hash=content_hash(data),
    )


class ScriptedClient:
    """Sessions in memory; `failures` lists entry failures to answer, in order, per path."""

    def __init__(self) -> None:
        self.sessions: dict[str, bytes] = {}
        self.stored: dict[str, bytes] = {}
        self.failures: dict[str, list[Any]] = {}
        self.starts = 0
        self.batches: list[list[str]] = []
        self.metadata_calls = 0
        self._lock = threading.Lock()

    def files_upload_session_start(self, data: bytes, close: bool = False, **kw: Any) -> Any:
        with self._lock:
            self.starts += 1
            session_id = f"s{self.starts}"
            self.sessions[session_id] = data
        return files.UploadSessionStartResult(session_id=session_id)

    def files_upload_session_finish_batch_v2(self, entries: list[Any]) -> Any:
        results = []
        with self._lock:
            self.batches.append([e.commit.path for e in entries])
            for entry in entries:
                path = entry.commit.path
                script = self.failures.get(path)
                if script:
                    failure = script.pop(0)
                    if failure == "commit-then-lose":  # committed, but answer "not found"
                        data = self.sessions.pop(entry.cursor.session_id, None)
                        if data is not None:
                            self.stored[path] = data
                        failure = files.UploadSessionFinishError.lookup_failed(
                            files.UploadSessionLookupError.not_found
                        )
                    results.append(files.UploadSessionFinishBatchResultEntry.failure(failure))
                    continue
                data = self.sessions.pop(entry.cursor.session_id)
                self.stored[path] = data
                results.append(
                    files.UploadSessionFinishBatchResultEntry.success(file_metadata(path, data))
                )
        return files.UploadSessionFinishBatchResult(entries=results)

    def files_get_metadata(self, path: str) -> Any:
        self.metadata_calls += 1
        return file_metadata(path, self.stored[path])


def make(client: ScriptedClient) -> Transfers:
    pacer = Pacer(classify, max_in_flight=4)
    return Transfers(client, pacer, chunk_size=CHUNK, batch_size=100, jobs=4)


def test_too_many_write_operations_entry_is_recommitted_without_reupload() -> None:
    client = ScriptedClient()
    busy = files.UploadSessionFinishError.too_many_write_operations
    client.failures["/a"] = [busy, busy]
    transfers = make(client)
    metadata = transfers.upload_fileobj(io.BytesIO(b"data"), "/a", 4)
    transfers.close()
    assert metadata.content_hash == content_hash(b"data")
    assert client.starts == 1
    assert client.batches == [["/a"], ["/a"], ["/a"]]


def test_nested_write_contention_entry_is_recommitted() -> None:
    client = ScriptedClient()
    client.failures["/b"] = [
        files.UploadSessionFinishError.path(files.WriteError.too_many_write_operations)
    ]
    transfers = make(client)
    transfers.upload_fileobj(io.BytesIO(b"x"), "/b", 1)
    transfers.close()
    assert client.starts == 1 and len(client.batches) == 2


def test_lost_session_that_was_committed_counts_as_success() -> None:
    client = ScriptedClient()
    client.failures["/c"] = ["commit-then-lose", "commit-then-lose"]
    transfers = make(client)
    metadata = transfers.upload_fileobj(io.BytesIO(b"abc"), "/c", 3)
    transfers.close()
    assert metadata.size == 3
    assert client.starts == 1  # no re-upload: the object is there with our content_hash
    assert client.metadata_calls == 1


def test_gone_session_is_uploaded_again() -> None:
    client = ScriptedClient()
    gone = files.UploadSessionFinishError.lookup_failed(files.UploadSessionLookupError.not_found)
    client.failures["/d"] = [gone, gone]
    client.stored["/d"] = b"old content"  # something else is there
    transfers = make(client)
    metadata = transfers.upload_fileobj(io.BytesIO(b"new"), "/d", 3)
    transfers.close()
    assert metadata.content_hash == content_hash(b"new")
    assert client.starts == 2
    assert client.stored["/d"] == b"new"


def test_other_entry_failures_are_errors() -> None:
    from dropbox.exceptions import ApiError

    client = ScriptedClient()
    conflict = files.UploadSessionFinishError.path(
        files.WriteError.conflict(files.WriteConflictError.folder)
    )
    client.failures["/e"] = [conflict]
    transfers = make(client)
    with pytest.raises(ApiError) as info:
        transfers.upload_fileobj(io.BytesIO(b"y"), "/e", 1)
    transfers.close()
    assert info.value.error.is_path()
    assert client.starts == 1


def test_session_gone_is_not_swallowed_forever() -> None:
    client = ScriptedClient()
    gone = files.UploadSessionFinishError.lookup_failed(files.UploadSessionLookupError.not_found)
    client.failures["/f"] = [gone] * 20
    client.stored["/f"] = b"other"
    transfers = make(client)
    with pytest.raises(SessionGone):
        transfers.upload_fileobj(io.BytesIO(b"z"), "/f", 1)
    transfers.close()
    assert client.starts == 3  # first upload + MAX_SESSION_RESTARTS


class ExpiringClient(ScriptedClient):
    """The first append finds its session expired (`not_found`)."""

    def __init__(self) -> None:
        super().__init__()
        self.appends = 0
        self.expire_next = True

    def files_upload_session_append_v2(
        self, data: bytes, cursor: Any, close: bool = False, content_hash: Any = None
    ) -> None:
        from dropbox.exceptions import ApiError

        self.appends += 1
        assert content_hash == transfer_content_hash(data)
        if self.expire_next:
            self.expire_next = False
            raise ApiError("req", files.UploadSessionAppendError.not_found, None, None)
        assert len(self.sessions[cursor.session_id]) == cursor.offset
        self.sessions[cursor.session_id] += data


transfer_content_hash = content_hash  # the parameter above shadows the function


def test_large_upload_starts_over_when_its_session_expired() -> None:
    client = ExpiringClient()
    transfers = make(client)
    data = bytes(range(256)) * (CHUNK // 256) * 2 + b"tail"
    metadata = transfers.upload_fileobj(io.BytesIO(data), "/big", len(data))
    transfers.close()
    assert metadata.content_hash == content_hash(data)
    assert client.stored["/big"] == data
    assert client.starts == 2  # the second session carried the whole file
