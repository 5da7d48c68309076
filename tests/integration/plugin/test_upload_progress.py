"""Upload progress moves every MiB, inside a request, through DVC's (fsspec) callbacks.

Against the emulator over real HTTPS: the emulator checks each body byte for byte against its
Content-Length and content_hash, so a body that the progress reader mangled would fail here.
"""

from __future__ import annotations

import io
import math
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from fsspec.callbacks import Callback

from dvc_dropbox.fs import DropboxFS
from dvc_dropbox.sdk_errors import new_pacer
from dvc_dropbox.transfer import Transfers, content_hash
from dvc_dropbox.transfer.upload_progress import REPORT_EVERY
from tests.helpers.emulator import EmulatorProcess

MiB = 1024 * 1024
CHUNK = 4 * MiB


class Recording(Callback):
    """A callback as DVC hands them to filesystems, keeping every increment."""

    def __init__(self) -> None:
        super().__init__()
        self.increments: list[int] = []

    def relative_update(self, inc: int = 1) -> None:
        self.increments.append(inc)
        super().relative_update(inc)


def _transfers(client: Any) -> Transfers:
    return Transfers(client, new_pacer(2), chunk_size=CHUNK, batch_size=10, jobs=2)


def _requests(emulator: EmulatorProcess) -> dict[str, int]:
    return dict(emulator.stats()["requests"])


def _delta(after: dict[str, int], before: dict[str, int], route: str) -> int:
    return after.get(route, 0) - before.get(route, 0)


def _assert_steady(callback: Recording, size: int) -> None:
    assert sum(callback.increments) == size == callback.value
    assert max(callback.increments) <= REPORT_EVERY == MiB
    assert min(callback.increments) > 0
    assert len(callback.increments) >= math.ceil(size / MiB)


@pytest.mark.parametrize(
    ("size", "starts", "appends"),
    [(3 * MiB + 12345, 1, 0), (3 * CHUNK + 12345, 1, 3)],
    ids=["one-request-3MiB", "four-chunks"],
)
def test_upload_reports_every_mib_within_requests(
    emulator: EmulatorProcess, sdk_client: Any, size: int, starts: int, appends: int
) -> None:
    data = os.urandom(size)
    path = f"/progress-{uuid.uuid4().hex[:10]}/file.bin"
    callback = Recording()
    before = _requests(emulator)
    metadata = _transfers(sdk_client).upload_fileobj(io.BytesIO(data), path, size, callback)
    after = _requests(emulator)
    assert metadata.size == size
    assert metadata.content_hash == content_hash(data)
    # Few requests, many updates: the bar moved while each request was being sent.
    assert _delta(after, before, "files/upload_session/start") == starts
    assert _delta(after, before, "files/upload_session/append_v2") == appends
    _assert_steady(callback, size)


def test_a_dropped_append_is_not_counted_twice(emulator: EmulatorProcess, sdk_client: Any) -> None:
    size = 2 * CHUNK + 777
    data = os.urandom(size)
    emulator.control(
        "POST",
        "faults",
        {
            "route": "files/upload_session/append_v2",
            "drop_connection": True,
            "after_bytes": 2 * MiB,
            "times": 1,
        },
    )
    try:
        callback = Recording()
        path = f"/progress-{uuid.uuid4().hex[:10]}/dropped.bin"
        metadata = _transfers(sdk_client).upload_fileobj(io.BytesIO(data), path, size, callback)
    finally:
        emulator.control("DELETE", "faults")
    assert metadata.content_hash == content_hash(data)
    _assert_steady(callback, size)  # the resent MiBs did not push the bar past 100 %


def test_plugin_filesystem_reports_through_dvc_callbacks(
    dropbox_creds: dict[str, str], tmp_path: Path
) -> None:
    """The path `dvc push` takes: DropboxFS.put_file with the client built by the plugin."""
    from dvc.fs.callbacks import TqdmCallback

    source = tmp_path / "object.bin"
    source.write_bytes(os.urandom(5 * MiB + 1))
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"], chunk_size="4MiB")
    increments: list[int] = []

    class Watched(TqdmCallback):
        def relative_update(self, inc: int = 1) -> None:
            increments.append(inc)
            super().relative_update(inc)

    with Watched(bytes=True, disable=True) as callback:
        fs.put_file(str(source), f"progress-{uuid.uuid4().hex[:10]}/object.bin", callback=callback)
    assert sum(increments) == source.stat().st_size
    assert max(increments) <= MiB
