"""Fixtures shared by every test: an emulator in its own process, and SDK clients for it.

The SDK reads its host variables once, when `dropbox` is first imported, so this module picks the
session emulator's port and sets `DROPBOX_*_HOST` *before* anything imports the SDK; the emulator
is then started on that port. `REQUESTS_CA_BUNDLE` is read per request, so it is set later.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.emulator import HOST_VARS, EmulatorProcess


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SESSION_PORT = _free_port()
for _var in HOST_VARS:
    os.environ[_var] = f"127.0.0.1:{SESSION_PORT}"
for _var in (
    "DROPBOX_ACCESS_TOKEN",
    "DROPBOX_REFRESH_TOKEN",
    "DROPBOX_EXPIRES_AT",
    "DROPBOX_CREDENTIALS_FILE",
    "DROPBOX_APP_KEY",
):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """The session's emulator (one per xdist worker), reachable by the in-process SDK.

    Tests that change its config or inject faults must undo that; tests that need a pristine or
    differently configured server start their own `EmulatorProcess` and use `sdk_client`.
    """
    data_dir = tmp_path_factory.mktemp("emulator-data")
    with EmulatorProcess("--port", str(SESSION_PORT), data_dir=data_dir) as emu:
        os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_bundle
        yield emu


@pytest.fixture
def emulator_env(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ with the emulator's env (what a `dvc` subprocess needs), no credentials."""
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.fixture
def sdk_client(emulator: EmulatorProcess) -> Any:
    """An official SDK client with a fresh full-scope token for the session emulator."""
    from tests.helpers.emulator import sdk_client as make

    return make(emulator)
