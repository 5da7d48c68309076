"""Token renewals go through the pacer, the start-up one included (issue 11, item 1).

The real `dvc push` with an expired access token and a refresh token in the environment: the first
thing it does is renew at `oauth2/token`, where the emulator answers 503 a few times.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.cli import dvc, make_repo, remote_objects


@pytest.fixture
def clean_faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()


def requests_of(emu: EmulatorProcess, route: str) -> int:
    return int(emu.stats()["requests"].get(route, 0))


@pytest.mark.parametrize("times", [1, 3])
def test_push_rides_out_503s_from_the_token_endpoint(
    times: int,
    tmp_path: Path,
    clean_faults: EmulatorProcess,
    dropbox_sdk: Any,
) -> None:
    emu = clean_faults
    token = emu.token()  # a pair of its own: the expiry must not hurt other tests
    emu.expire_token(token["access_token"])
    env = emu.isolated_env(tmp_path / "home", token)
    repo = make_repo(tmp_path / "repo", env)
    (repo / "data.bin").write_bytes(os.urandom(2000))
    dvc(repo, env, "add", "-q", "data.bin")
    folder = f"token-faults-{uuid.uuid4().hex[:8]}/p"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://{folder}")

    emu.fault(route="oauth2/token", status=503, times=times)
    before = requests_of(emu, "oauth2/token")
    started = time.monotonic()
    proc = dvc(repo, env, "push", check=False)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "1 file pushed" in output, output
    assert "unexpected error" not in output and "InternalServerError" not in output, output
    assert "Dropbox request failed (server error)" in output  # the wait was shown
    assert token["refresh_token"] not in output and token["access_token"] not in output
    assert requests_of(emu, "oauth2/token") - before == times + 1
    assert elapsed < 60
    assert len(remote_objects(dropbox_sdk, "/" + folder)) == 1

