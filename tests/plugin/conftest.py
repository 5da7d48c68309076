"""Fixtures for the plugin's tests: credentials from the session emulator's control API.

`register()` is called explicitly so the tests do not depend on the `.pth` start-up hook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dvc_dropbox._register import register
from tests.helpers.emulator import EmulatorProcess, sdk_client

register()


@pytest.fixture(scope="session")
def dropbox_token(emulator: EmulatorProcess) -> dict[str, Any]:
    """One full-scope token pair for the whole session (the plugin caches one client per pair)."""
    return emulator.token()


def credential_env(emulator: EmulatorProcess, token: dict[str, Any]) -> dict[str, str]:
    """What a process needs to use the session emulator as Dropbox."""
    env = dict(emulator.env)
    env["DROPBOX_ACCESS_TOKEN"] = token["access_token"]
    env["DROPBOX_REFRESH_TOKEN"] = token["refresh_token"]
    return env


@pytest.fixture
def dropbox_creds(
    emulator: EmulatorProcess, dropbox_token: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """os.environ with the emulator's env and valid credentials (for in-process DVC)."""
    for key, value in credential_env(emulator, dropbox_token).items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.fixture(scope="session")
def dropbox_sdk(emulator: EmulatorProcess) -> Any:
    """An SDK client to inspect and prepare the remote side independently of the plugin."""
    return sdk_client(emulator)


def isolated_cli_env(
    emulator: EmulatorProcess, token: dict[str, Any], home: Path
) -> dict[str, str]:
    """Env for `dvc` subprocesses: the emulator, valid credentials, nothing of the user's."""
    env = dict(os.environ)
    env.update(credential_env(emulator, token))
    env.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
    )
    return env


@pytest.fixture
def cli_env(
    emulator: EmulatorProcess,
    dropbox_token: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    return isolated_cli_env(emulator, dropbox_token, tmp_path_factory.mktemp("home"))
