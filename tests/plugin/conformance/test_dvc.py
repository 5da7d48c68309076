"""DVC's conformance suite against the emulator, through the real plugin and the real SDK."""

from __future__ import annotations

import pytest
from dvc.testing.api_tests import TestAPI
from dvc.testing.remote_tests import TestRemote
from dvc.testing.workspace_tests import TestGetUrl, TestLsUrl, TestToRemote
from dvc.testing.workspace_tests import TestImport as _TestImport

__all__ = ["TestAPI", "TestGetUrl", "TestImport", "TestLsUrl", "TestRemote", "TestToRemote"]


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
