"""A slow commit is not a dead server (issue 16 item 6b): `upload_session/finish_batch_v2` waits
its turn for the account's write lock and may take longer than the read timeout every other route
keeps short. The real `dvc` against the emulator, its commits made slow with `commit_ms`."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.fault_matrix import assert_clean_message
from tests.integration.plugin.cli import dvc, make_repo, md5_object, remote_objects

# The read timeout the test gives every route, and how long each commit takes: longer.
TIMEOUT_S = 2
COMMIT_MS = 6000


def test_a_commit_slower_than_the_read_timeout_completes(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_sdk: object
) -> None:
    env = emulator.isolated_env(tmp_path / "home", emulator.token())
    repo = make_repo(tmp_path / "repo", env)
    folder = f"/slow-commit-{os.urandom(4).hex()}"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox:/{folder}")
    dvc(repo, env, "remote", "modify", "r", "timeout", str(TIMEOUT_S))
    contents = [os.urandom(700 + i) for i in range(4)]
    (repo / "data").mkdir()
    for i, content in enumerate(contents):
        (repo / "data" / f"f{i}.bin").write_bytes(content)
    dvc(repo, env, "add", "-q", "data")

    before = emulator.config()["commit_ms"]
    emulator.config(commit_ms=COMMIT_MS)
    try:
        proc = dvc(repo, env, "push", check=False)
    finally:
        emulator.config(commit_ms=before)

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert_clean_message(output, max_errors=0)
    assert "timed out" not in output
    objects = remote_objects(dropbox_sdk, folder)
    assert {md5_object(c) for c in contents} <= objects
    assert len(objects) == len(contents) + 1  # and the folder's .dir listing
