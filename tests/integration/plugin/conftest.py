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
    return emulator.isolated_env(home, token)


@pytest.fixture
def cli_env(
    emulator: EmulatorProcess,
    dropbox_token: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    return isolated_cli_env(emulator, dropbox_token, tmp_path_factory.mktemp("home"))
