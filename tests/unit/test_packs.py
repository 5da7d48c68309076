"""The packer's decisions (transfer/packs.py) on scripted answers built from the SDK's own types:
a 409 `other` from append_batch means "not for this account" (fall back for the run), a batch
fills up to its body limit, and the bytes held at once stay within the memory budget."""

from __future__ import annotations

import threading
from typing import Any

from dropbox import exceptions, files

from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer.batcher import BatchCommitter
from dvc_dropbox.transfer.pacer import Pacer
from dvc_dropbox.transfer.packs import PackEntry, Packs, PacksRefused, _ByteBudget


class RefusingClient:
    """start_batch works; append_batch answers 409 with the union's `other` tag."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def files_upload_session_start_batch(self, num_sessions: int) -> Any:
        self.calls.append("start_batch")
        ids = [f"s{i}" for i in range(num_sessions)]
        return files.UploadSessionStartBatchResult(session_ids=ids)

    def files_upload_session_append_batch(self, f: bytes, entries: Any, **kwargs: Any) -> Any:
        self.calls.append("append_batch")
        raise exceptions.ApiError("rid", files.UploadSessionAppendBatchError.other, None, None)


def test_a_409_other_from_append_batch_falls_back_for_the_rest_of_the_run() -> None:
    client = RefusingClient()
    packs = Packs(client, Pacer(classify, max_in_flight=2))
    try:
        packs.expect(1)  # a second file is coming: the first is not sent alone
        first = packs.submit(b"a" * 10)
        second = packs.submit(b"b" * 10)
        packs.expect(-1)
        for future in (first, second):
            assert isinstance(future.exception(timeout=10), PacksRefused)
    finally:
        packs.close()
    assert client.calls == ["start_batch", "append_batch"]
    assert packs.refused
    assert not packs.takes(10)  # every later file goes in its own session


def test_a_batch_is_full_at_its_weight() -> None:
    sent: list[list[int]] = []
    done = threading.Event()

    def commit(entries: list[int]) -> list[int]:
        sent.append(entries)
        if sum(map(len, sent)) == 5:
            done.set()
        return entries

    committer: BatchCommitter[int, int] = BatchCommitter(
        commit, batch_size=500, idle_timeout=30, max_wait=30, weight=lambda n: n, max_weight=10
    )
    committer.expect(1)  # more is coming: only the weight can send a batch
    try:
        futures = [committer.submit(n) for n in (4, 4, 4, 4, 4)]
        committer.expect(-1)
        assert done.wait(10)
        assert [f.result(timeout=10) for f in futures] == [4, 4, 4, 4, 4]
    finally:
        committer.close()
    assert all(sum(batch) <= 10 for batch in sent), sent
    assert sent[0] == [4, 4]


def test_the_byte_budget_holds_a_file_back_until_others_are_sent() -> None:
    budget = _ByteBudget(10)
    entered = threading.Event()
    with budget.hold(8):

        def late() -> None:
            with budget.hold(5):
                entered.set()

        thread = threading.Thread(target=late)
        thread.start()
        assert not entered.wait(0.3)
    thread.join(10)
    assert entered.is_set()
    assert budget.most_held == 8
    with budget.hold(50):  # bigger than the whole budget: goes alone
        assert budget.held == 50


def test_the_pack_option_is_parsed_like_every_other_option() -> None:
    import pytest

    from dvc_dropbox.fs import DropboxFS

    assert DropboxFS().settings.pack is True
    assert DropboxFS(pack="false").settings.pack is False
    assert DropboxFS(pack=False).settings.pack is False
    assert DropboxFS(pack="yes").settings.pack is True
    with pytest.raises(ValueError, match="pack must be true or false"):
        DropboxFS(pack="sometimes")


class SessionsClient:
    """start_batch answers as many sessions as asked for, and records how many that was."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def files_upload_session_start_batch(self, num_sessions: int) -> Any:
        self.asked.append(num_sessions)
        ids = [f"s{len(self.asked)}-{i}" for i in range(num_sessions)]
        return files.UploadSessionStartBatchResult(session_ids=ids)


def test_each_start_batch_asks_for_at_least_twice_the_last() -> None:
    # Three packs of 500 whose files were not yet waiting when each went (DVC's list streams in,
    # a loaded machine reads slowly): 500, then 1,000 sessions; the third pack needs no call.
    client = SessionsClient()
    packs = Packs(client, Pacer(classify, max_in_flight=2))
    try:
        for _ in range(3):
            entries = [PackEntry(b"x") for _ in range(500)]
            packs._open_sessions(entries)
            assert all(entry.session_id for entry in entries)
    finally:
        packs.close()
    assert client.asked == [500, 1000]
