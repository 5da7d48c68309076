"""fsspec's abstract suite (what s3fs, gcsfs and adlfs run) against `DropboxFS` on the emulator.

137 tests of copy, get, put, open and pipe semantics, on the session emulator (about 20 s).
"""

from __future__ import annotations

from typing import Any

import fsspec.tests.abstract as abstract
import pytest

from .fsspec_fixtures import DropboxFixtures

# `open(path, "xb")` and `pipe_file(..., mode="create")` must refuse an existing file: Dropbox
# can (WriteMode.add); the writer that does it is another change (branch fileobjs).
EXCLUSIVE = pytest.mark.xfail(reason="open x / pipe create: branch fileobjs", strict=False)


class TestDropboxCopy(abstract.AbstractCopyTests, DropboxFixtures):
    pass


class TestDropboxGet(abstract.AbstractGetTests, DropboxFixtures):
    pass


class TestDropboxPut(abstract.AbstractPutTests, DropboxFixtures):
    pass


class TestDropboxOpen(abstract.AbstractOpenTests, DropboxFixtures):
    @EXCLUSIVE
    def test_open_exclusive(self, fs: Any, fs_target: str) -> None:
        super().test_open_exclusive(fs, fs_target)


class TestDropboxPipe(abstract.AbstractPipeTests, DropboxFixtures):
    @EXCLUSIVE
    def test_pipe_exclusive(self, fs: Any, fs_target: str) -> None:
        super().test_pipe_exclusive(fs, fs_target)
