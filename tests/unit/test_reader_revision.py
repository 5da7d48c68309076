"""A streaming reader that loses its revision fails clearly (issue 16, item 4).

The emulator keeps every revision (it has no route that removes one), so the case where the
revision an open reader reads is gone from Dropbox is scripted here: the reader's opener answers
"not found" for it, as Dropbox's `files/download` of `rev:<rev>` does. The reads of one revision
across reopenings are tested on the emulator (tests/integration/plugin/test_file_objects.py).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from dropbox import files

from dvc_dropbox.files import DropboxReader, DropboxRevisionGone
from tests.helpers.fake_time import FakeTime
from tests.unit.test_fs_retries import BreakingStream, ScriptedClient, scripted_fs

REV = "015e7c0ef2a1"


def test_a_reader_whose_revision_is_gone_fails_with_a_clear_error() -> None:
    fs = scripted_fs(ScriptedClient(lambda _: files.DeleteBatchJobStatus.other), FakeTime())
    data = b"a" * 3000
    opened: list[tuple[str, int]] = []

    def open_read(path: str, start: int = 0, end: Any = None) -> BreakingStream:
        opened.append((path, start))
        if len(opened) > 1:
            raise FileNotFoundError(2, "No such file or directory", path)
        return BreakingStream(data[start:], 1000)  # the first connection drops after 1000

    # As DropboxFS._open builds it: every (re)open asks for the revision the size belongs to.
    raw = DropboxReader(
        "dvc/project/t.csv",
        len(data),
        open_read=lambda start: open_read(f"dvc/project/t.csv?rev={REV}", start=start),
        retry=fs.conn.pacer.retry,
        rev=REV,
    )
    reader = io.BufferedReader(raw, 500)
    assert reader.read(1000) == data[:1000]
    with pytest.raises(DropboxRevisionGone) as info:
        reader.read(1000)
    message = str(info.value)
    assert message.startswith("/dvc/project/t.csv changed on Dropbox while it was open")
    assert REV in message and "open the file again" in message
    assert isinstance(info.value, FileNotFoundError)
    # Every download asked for that one revision, the reopening at its offset.
    assert opened == [(f"dvc/project/t.csv?rev={REV}", 0), (f"dvc/project/t.csv?rev={REV}", 1000)]
