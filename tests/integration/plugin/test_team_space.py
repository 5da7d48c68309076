"""A team-space remote through the real `dvc`: pushed through `path_root root`, pulled back through
another path root that names the same folder (issue 10 item 3).

The emulator's account is a team member (README "Team space layout"): the team root namespace
holds the member's home folder `/Emulator User` and `/Team Folder`, each a namespace of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import run_on_screen
from tests.integration.plugin.cli import BIN, dvc, make_repo, md5_object, remote_objects, run

from .conftest import isolated_cli_env

TEAM_ROOT = "3000000000"
HOME_NS = "3000000001"
TEAM_FOLDER_NS = "3000000002"

FILES = {
    "data/a.txt": b"alpha\n",
    "data/sub/b.bin": bytes(range(256)) * 40,
    "data/empty": b"",
}


def write_files(repo: Path) -> None:
    for name, content in FILES.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def add_remote(repo: Path, env: dict[str, str], url: str, path_root: str) -> None:
    dvc(repo, env, "remote", "add", "-f", "-d", "team", url)
    dvc(repo, env, "remote", "modify", "team", "path_root", path_root)


@pytest.mark.parametrize(
    ("push_url", "pull_url", "pull_root", "home_folder"),
    [
        # The team folder, seen from the team root and as its own namespace.
        ("dropbox://Team Folder/tp-team/proj", "dropbox://tp-team/proj", TEAM_FOLDER_NS, None),
        # The member's home folder, seen from the team root and as `home`.
        ("dropbox://Emulator User/tp-home/proj", "dropbox://tp-home/proj", "home", "/tp-home"),
    ],
    ids=["team-folder-by-namespace-id", "home-folder-by-home"],
)
def test_push_through_the_team_root_and_pull_through_another_path_root(
    tmp_path: Path,
    emulator: EmulatorProcess,
    dropbox_token: dict[str, object],
    dropbox_sdk: object,
    push_url: str,
    pull_url: str,
    pull_root: str,
    home_folder: str | None,
) -> None:
    env = isolated_cli_env(emulator, dropbox_token, tmp_path / "home")  # type: ignore[arg-type]
    repo = make_repo(tmp_path / "repo", env)
    write_files(repo)
    add_remote(repo, env, push_url, "root")
    dvc(repo, env, "add", "data")
    dvc(repo, env, "push")
    run(["git", "add", "-A"], repo, env)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "data"], repo, env)

    if home_folder is not None:
        # Independent of the plugin: the objects are in the member's home folder.
        objects = remote_objects(dropbox_sdk, home_folder + "/proj")
        assert {md5_object(content) for content in FILES.values()} <= objects

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    add_remote(clone, env, pull_url, pull_root)
    sub = clone / "data"  # run from a subfolder, as people do
    sub.mkdir(exist_ok=True)
    dvc(sub, env, "pull")
    for name, content in FILES.items():
        assert (clone / name).read_bytes() == content, name
    status = dvc(sub, env, "status", "-c")
    assert status.stdout.strip() == "Cache and remote 'team' are in sync.", status.stdout


def test_status_shows_the_root_namespace_and_home_path(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_token: dict[str, object]
) -> None:
    env = isolated_cli_env(emulator, dropbox_token, tmp_path / "home")  # type: ignore[arg-type]
    repo = make_repo(tmp_path / "repo", env)
    add_remote(repo, env, "dropbox://Team Folder/proj", "root")
    sub = repo / "sub"
    sub.mkdir()
    status, lines = run_on_screen(str(BIN / "dvc-dropbox"), ["status"], sub, env)
    assert status == 0, lines
    assert f"Root:         namespace {TEAM_ROOT} (team space; path_root root)" in lines
    assert (
        f"Home:         /Emulator User in the team space (namespace {HOME_NS}; path_root home)"
        in lines
    )
