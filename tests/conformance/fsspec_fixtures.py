"""fsspec's own filesystem suite (`fsspec.tests.abstract`) wired to `DropboxFS` on the emulator.

The fixtures the suite looks up by name: `fs` (a `DropboxFS` with the session emulator's
credentials), `fs_path` (a fresh Dropbox folder per test), `fs_join` (Dropbox paths use `/` on
every OS). Dropbox keeps empty folders (`create_folder_v2`), so `supports_empty_directories`
stays True, fsspec's default.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import Any, Callable

import pytest
from fsspec.tests.abstract import AbstractFixtures

from dvc_dropbox.fs import DropboxFS


class DropboxFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, dropbox_creds: dict[str, str]) -> DropboxFS:
        return DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"])

    @pytest.fixture
    def fs_path(self, fs: DropboxFS) -> Any:
        path = f"fsspec-suite/{uuid.uuid4().hex[:12]}"
        yield path
        if fs.exists(path):
            fs.rm(path, recursive=True)

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join
