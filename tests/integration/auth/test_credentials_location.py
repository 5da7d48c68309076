"""Where a relative DROPBOX_CREDENTIALS_FILE lands when `dvc` runs from inside tracked data.

The user guide's `DROPBOX_CREDENTIALS_FILE=.dvc/tmp/<name>.json`, used from a subfolder of a
tracked folder, once created a second `.dvc` inside the data: DVC then took that subfolder for a
nested repository and the next `dvc add` silently dropped its files. These drive the real `dvc`
under a pseudo-terminal and check the data is untouched; a path into tracked data is refused.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import run_on_screen, shows
from tests.integration.auth.conftest import (
    DVC,
    DVC_DROPBOX,
    RepoFactory,
    assert_no_secrets,
    base_env,
    read_credentials,
    remote_url,
    run,
)
from tests.integration.auth.test_dvc_auth import _interactive_push

FILES = 5
SUB_FILES = 3


def _data_repo(tmp_path: Path, request: pytest.FixtureRequest, factory: RepoFactory) -> Path:
    """A repository whose tracked `data` folder has a subfolder `data/sub`."""
    repo = factory(tmp_path / "repo", remote_url(request), files=FILES)
    sub = repo / "data" / "sub"
    sub.mkdir()
    for i in range(SUB_FILES):
        (sub / f"s{i}.txt").write_text(f"sub file {i}\n")
    added = run([DVC, "add", "-q", "data"], repo, base_env_no_emulator())
    assert added.returncode == 0, added.stderr
    assert _nfiles(repo) == FILES + SUB_FILES
    return repo


def base_env_no_emulator() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _nfiles(repo: Path) -> int:
    doc = yaml.safe_load((repo / "data.dvc").read_text())
    return int(doc["outs"][0]["nfiles"])


def _dvc_folders(repo: Path) -> list[Path]:
    return sorted(p for p in repo.rglob(".dvc") if p.is_dir() and p != repo / ".dvc")


def test_relative_file_from_inside_tracked_data_lands_at_the_root(
    emulator: EmulatorProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    repo_factory: RepoFactory,
) -> None:
    repo = _data_repo(tmp_path, request, repo_factory)
    env = base_env(emulator, DROPBOX_CREDENTIALS_FILE=".dvc/tmp/x.json")
    output = _interactive_push(emulator, repo / "data" / "sub", env, ("status", "-c"))
    path = repo / ".dvc" / "tmp" / "x.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = read_credentials(path)
    assert_no_secrets(output, [saved["access_token"], saved["refresh_token"]])
    assert _dvc_folders(repo) == []
    assert sorted(p.name for p in (repo / "data" / "sub").iterdir()) == [
        f"s{i}.txt" for i in range(SUB_FILES)
    ]
    # The dataset is unchanged: status is clean, and `dvc add` still sees every file.
    status = run([DVC, "status"], repo, env)
    assert status.returncode == 0, status.stderr
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    added = run([DVC, "add", "data"], repo, env)
    assert added.returncode == 0, added.stderr
    assert _nfiles(repo) == FILES + SUB_FILES
    # The same file serves later commands from anywhere in the repository, without a prompt.
    again = run([DVC, "status", "-c"], repo / "data", env)
    assert again.returncode == 0, again.stderr
    assert "Go to the following link" not in again.stdout + again.stderr


@pytest.mark.parametrize("command", ["dvc", "dvc-dropbox"])
def test_file_inside_tracked_data_is_refused(
    emulator: EmulatorProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    repo_factory: RepoFactory,
    command: str,
) -> None:
    repo = _data_repo(tmp_path, request, repo_factory)
    env = base_env(emulator, DROPBOX_CREDENTIALS_FILE="data/sub/creds.json")
    program, args = (DVC, ["status", "-c"]) if command == "dvc" else (DVC_DROPBOX, ["login"])
    # Under a terminal, so an authorization prompt would appear if the path were accepted.
    status, lines = run_on_screen(program, args, repo / "data", env, timeout=120)
    assert status not in (0, 130), lines
    assert not shows(lines, "Go to the following link"), "asked to authorize in vain"
    assert not shows(lines, "Traceback")
    errors = [line for line in lines if line.startswith("ERROR: ")]
    assert errors and errors[0].startswith("ERROR: DROPBOX_CREDENTIALS_FILE points to "), lines
    assert shows(lines, f"points to {repo / 'data' / 'sub' / 'creds.json'}, inside 'data'")
    assert shows(lines, "which DVC tracks (data.dvc)")
    assert shows(lines, "Nothing was written")
    assert shows(lines, "`export DROPBOX_CREDENTIALS_FILE=.dvc/tmp/creds.json`")
    assert sorted(p.name for p in (repo / "data" / "sub").iterdir()) == [
        f"s{i}.txt" for i in range(SUB_FILES)
    ]
    assert not list((repo / ".dvc" / "tmp").glob("*.json*"))
    assert _dvc_folders(repo) == []
    status = run([DVC, "status"], repo, env)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
