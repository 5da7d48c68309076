"""Fixtures dvc.testing looks up by name (`make_dropbox`, `cloud`, `remote`, `workspace`, ...).

No leading underscores: star imports skip them (dvc-integration.md §4.3).
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest

from .cloud import Dropbox


@pytest.fixture(autouse=True)
def dropbox_remote_env(dropbox_creds: dict[str, str], dropbox_sdk: Any) -> None:
    """Every test here runs DVC in-process with the emulator's credentials in os.environ."""
    Dropbox.client = dropbox_sdk
    Dropbox.app_key = dropbox_creds.get("DROPBOX_APP_KEY")


@pytest.fixture
def make_dropbox() -> Callable[[], Dropbox]:
    def make() -> Dropbox:
        cloud = Dropbox(f"dropbox://dvc-test/{uuid.uuid4()}")
        cloud.mkdir(parents=True, exist_ok=True)
        return cloud

    return make


@pytest.fixture
def make_dropbox_version_aware(make_dropbox: Callable[[], Dropbox]) -> Callable[[], Dropbox]:
    return make_dropbox


@pytest.fixture
def cloud(make_cloud: Callable[..., Any]) -> Any:
    return make_cloud(typ="dropbox")


@pytest.fixture
def remote(make_remote: Callable[..., Any]) -> Any:
    return make_remote(name="upstream", typ="dropbox")


@pytest.fixture
def remote_version_aware(make_remote_version_aware: Callable[..., Any]) -> Any:
    return make_remote_version_aware(name="upstream", typ="dropbox")


@pytest.fixture
def remote_worktree(make_remote_worktree: Callable[..., Any]) -> Any:
    return make_remote_worktree(name="upstream", typ="dropbox")


@pytest.fixture
def workspace(tmp_dir: Any, dvc: Any, make_cloud: Callable[..., Any]) -> Any:
    # dvc.testing's make_workspace also writes `cache.dropbox`, which DVC's schema rejects for
    # any scheme it does not know (dvc-integration.md §4.3); the remote alone is what we test.
    cloud = make_cloud("dropbox")
    tmp_dir.add_remote(name="workspace", config=cloud.config, default=False)
    return cloud
