"""DVC's conformance suite against the emulator, through the real plugin and the real SDK."""

from __future__ import annotations

import pytest
from dvc.testing.api_tests import TestAPI
from dvc.testing.remote_tests import TestRemote, TestRemoteVersionAware
from dvc.testing.remote_tests import TestRemoteWorktree as _TestRemoteWorktree
from dvc.testing.workspace_tests import (
    TestGetUrl,
    TestImportURLVersionAware,
    TestLsUrl,
    TestToRemote,
)
from dvc.testing.workspace_tests import TestImport as _TestImport

__all__ = [
    "TestAPI",
    "TestGetUrl",
    "TestImport",
    "TestImportURLVersionAware",
    "TestLsUrl",
    "TestRemote",
    "TestRemoteVersionAware",
    "TestRemoteWorktree",
    "TestToRemote",
]


class TestImport(_TestImport):
    @pytest.fixture
    def is_object_storage(self) -> bool:
        return False  # Dropbox has real folders: an empty folder is imported as one

    # The dependency's .dir hash is built from the files' Dropbox content_hash (our checksum), so
    # it is deterministic but differs from the md5-based values dvc-s3 pins.
    @pytest.fixture
    def stage_md5(self) -> str:
        return "f950d9ec77c1891f0aa4c46a5fcb852e"

    @pytest.fixture
    def dir_md5(self) -> str:
        return "40b2c12d56e6d1ef7eba27f38be3a2f4.dir"


class TestRemoteWorktree(_TestRemoteWorktree):
    @pytest.mark.xfail(
        strict=True,
        reason="upstream: dvc_data.index.push.push() compares without delete=True, so files "
        "deleted locally are never deleted from a worktree remote (fails identically with dvc-s3)",
    )
    def test_deletion(self, tmp_dir, dvc, scm, remote_worktree):  # type: ignore[no-untyped-def]
        super().test_deletion(tmp_dir, dvc, scm, remote_worktree)
