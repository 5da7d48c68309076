"""Per-entry failures of `finish_batch_v2` against the emulator, through the plugin's own layers.

The emulator's `entry_failure` fault makes the next N entries of batch finishes answer
`too_many_write_operations` while the rest of each batch commits. The plugin must commit the
failed entries again (their bytes are already on the server: no new upload session), and every
file must end up stored with its content.
"""

from __future__ import annotations

import io
import math
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dvc_dropbox.fs import DropboxFS
from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer import Transfers, content_hash
from dvc_dropbox.transfer.pacer import Pacer
from tests.helpers.emulator import EmulatorProcess

FINISH_BATCH = "files/upload_session/finish_batch_v2"


@pytest.fixture
def entry_faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.control("DELETE", "faults")
    yield emulator
    emulator.control("DELETE", "faults")


def arm(emu: EmulatorProcess, times: int) -> None:
    emu.control(
        "POST",
        "faults",
        {"route": FINISH_BATCH, "entry_failure": "too_many_write_operations", "times": times},
    )


def delta(after: dict[str, Any], before: dict[str, Any], route: str) -> int:
    return after["requests"].get(route, 0) - before["requests"].get(route, 0)


def test_failed_entries_are_recommitted_in_one_batch_without_reupload(
    entry_faults: EmulatorProcess, dropbox_sdk: Any
) -> None:
    """K uploads in one round; N entries fail: exactly one more batch, holding those N."""
    emu = entry_faults
    count, failing = 12, 5
    root = f"/entry-retry-{uuid.uuid4().hex[:10]}"
    items = {f"{root}/{i:02x}/obj{i}": os.urandom(2000) for i in range(count)}
    # A long idle timeout: only "every upload is waiting" triggers a commit, so counts are exact.
    transfers = Transfers(
        dropbox_sdk,
        Pacer(classify, max_in_flight=count),
        chunk_size=4 * 1024 * 1024,
        batch_size=1000,
        jobs=count,
        commit_idle_timeout=30,
        commit_max_wait=30,
    )
    barrier = threading.Barrier(count)

    def one(path: str) -> Any:
        barrier.wait(30)
        data = items[path]
        return transfers.upload_fileobj(io.BytesIO(data), path, len(data))

    arm(emu, failing)
    before = emu.stats()
    try:
        with ThreadPoolExecutor(count) as pool:
            results = dict(zip(items, pool.map(one, items)))
    finally:
        transfers.close()
    after = emu.stats()

    assert emu.control("GET", "faults") == {"faults": []}  # every injected failure was answered
    for path, metadata in results.items():
        assert metadata.content_hash == content_hash(items[path])
    assert delta(after, before, "files/upload_session/start") == count  # bytes sent once each
    assert delta(after, before, "files/upload_session/finish") == 0
    assert delta(after, before, FINISH_BATCH) == 2
    assert transfers.committer is not None
    assert transfers.committer.batch_sizes == [count, failing]
    assert transfers.committer.entry_retries == failing
    assert after["commits"] - before["commits"] == 2
    for path in list(items)[:3]:
        _, response = dropbox_sdk.files_download(path)
        assert response.content == items[path]
        response.close()


def test_put_file_from_many_threads_survives_entry_failures(
    entry_faults: EmulatorProcess,
    dropbox_creds: dict[str, str],
    dropbox_sdk: Any,
    tmp_path: Path,
) -> None:
    """DVC's shape: `jobs` threads call DropboxFS.put_file, each waiting for its own commit."""
    emu = entry_faults
    count, jobs, failing = 40, 8, 6
    base = f"entry-retry-fs-{uuid.uuid4().hex[:10]}"
    local: dict[str, bytes] = {}
    for i in range(count):
        data = os.urandom(1000 + i)
        (tmp_path / f"f{i}").write_bytes(data)
        local[f"{base}/{i:02x}/f{i}"] = data
    # A jobs value no other test uses: a connection (and committer) of its own.
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"], jobs=jobs + 1000, batch_size=1000)
    fs.connect()
    committer = fs.conn.transfers.committer
    assert committer is not None
    batches_before, retries_before = committer.batches_sent, committer.entry_retries
    assert fs.conn.transfers.packs is not None
    appended_before = fs.conn.transfers.packs.entries_appended
    arm(emu, failing)
    before = emu.stats()
    with ThreadPoolExecutor(jobs) as pool:
        list(
            pool.map(
                lambda i: fs.put_file(str(tmp_path / f"f{i}"), f"{base}/{i:02x}/f{i}"), range(count)
            )
        )
    after = emu.stats()

    assert emu.control("GET", "faults") == {"faults": []}
    assert sorted(fs.find(base)) == sorted(local)
    for path, data in local.items():
        metadata = dropbox_sdk.files_get_metadata("/" + path)
        assert (metadata.size, metadata.content_hash) == (len(data), content_hash(data))
    # Never re-uploaded: each file's bytes went up once, alone or in a pack (packs.py).
    packs = fs.conn.transfers.packs
    assert packs is not None and packs.entry_resends == 0
    alone = delta(after, before, "files/upload_session/start")
    assert alone + packs.entries_appended - appended_before == count
    assert delta(after, before, "files/upload_session/finish") == 0
    batches = committer.batches_sent - batches_before
    assert delta(after, before, FINISH_BATCH) == batches
    assert committer.entry_retries - retries_before == failing
    # One commit per batch call that placed anything; a round holds at most `jobs` entries.
    commits = after["commits"] - before["commits"]
    assert math.ceil(count / jobs) <= commits <= batches
