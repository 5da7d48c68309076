"""A cancel ends an upload request in the middle of its chunk (issue 16 item 7): the body is sent
MiB by MiB and each MiB checks the transfer's cancel event, so Ctrl-C during a 48 MiB chunk on a
slow link does not wait for the chunk to be up. Real HTTPS to the emulator, the real SDK."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import pytest
from fsspec.callbacks import Callback

from dvc_dropbox.fs import DropboxFS
from dvc_dropbox.transfer.cancel import TransferCancelled
from tests.integration.plugin.cli import remote_files

MiB = 1024 * 1024
CHUNK = 8 * MiB  # the first request of the session carries 8 MiB


class CancelAfter(Callback):  # type: ignore[misc]
    """Cancels the transfer once `after` bytes were reported sent; records what it saw."""

    def __init__(self, cancel: Any, after: int):
        super().__init__()
        self.cancel = cancel
        self.after = after
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def relative_update(self, inc: int = 1) -> None:
        with self.lock:
            self.seen.append(inc)
            if sum(self.seen) >= self.after:
                self.cancel.set("interrupted")


def test_a_cancel_ends_the_request_of_a_chunk_in_its_middle(
    dropbox_creds: dict[str, str], dropbox_sdk: Any, tmp_path: Any
) -> None:
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"], chunk_size=CHUNK)
    folder = f"cancel-{uuid.uuid4().hex[:12]}"
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(2 * CHUNK + 5))
    with fs.conn.pacer.cancels.transfer() as cancel:
        callback = CancelAfter(cancel, after=MiB)
        with pytest.raises(TransferCancelled):
            fs.put_file(str(local), f"{folder}/big.bin", callback=callback)
    assert sum(callback.seen) < CHUNK  # stopped inside the first chunk's request
    assert remote_files(dropbox_sdk, "/" + folder) == {}  # nothing committed
