"""DVC's copies reach the hooks whichever way DVC gets to them (issue 16 item 8), real `dvc` CLI.

dvc-data's `index.checkout` binds `from dvc_objects.fs.generic import transfer` when it is
imported, and `dvc push` imports it (through `dvc_data.index.fetch`/`push`) before it imports
the adapter that installs the hooks. A push to a worktree remote and `dvc checkout` copy through
that name. Before, a worktree push ran DVC's unwrapped `transfer`: a full Dropbox ended it with
"20 files failed to upload" and no cause, not with the one-cause message."""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import screen_of, shows
from tests.integration.plugin.cli import DVC, dvc, make_repo, remote_files
from tests.integration.plugin.test_one_cause import assert_one_message

FILES = 30
FILE_SIZE = 1000


@pytest.fixture
def emu(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The session emulator; whatever a test changes in its config is put back."""
    before = emulator.config()
    yield emulator
    emulator.config(quota_bytes=before["quota_bytes"])


def tracked_data(repo: Path, env: dict[str, str]) -> dict[str, bytes]:
    data = repo / "data"
    data.mkdir()
    contents = {f"f{i:03}.bin": os.urandom(FILE_SIZE - 1) + bytes([i]) for i in range(FILES)}
    for name, content in contents.items():
        (data / name).write_bytes(content)
    dvc(repo, env, "add", "-q", "data")
    return contents


def worktree_remote(repo: Path, env: dict[str, str]) -> str:
    folder = f"/hooks-{uuid.uuid4().hex[:10]}"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox:/{folder}")
    dvc(repo, env, "remote", "modify", "r", "worktree", "true")
    return folder


def test_full_dropbox_stops_a_worktree_push_with_one_message(
    tmp_path: Path, emu: EmulatorProcess, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    contents = tracked_data(repo, cli_env)
    folder = worktree_remote(repo, cli_env)
    used = dropbox_sdk.users_get_space_usage().used
    emu.config(quota_bytes=used + FILES * FILE_SIZE // 3)  # room for about a third

    screen = screen_of([DVC, "push", "-j", "2"], repo, cli_env)

    assert_one_message(
        screen, "Dropbox is full", "free up space", "running the command again uploads the rest"
    )
    pushed = remote_files(dropbox_sdk, folder)
    assert 0 < len(pushed) < FILES, pushed
    for name in pushed:
        _, body = dropbox_sdk.files_download(f"{folder}/{name}")
        assert body.content == contents[name.removeprefix("data/")], f"{name} is not whole"

    # (Not pushed again: DVC itself rewrites data.dvc after a failed worktree push, keeping
    # only the files the remote has, so a second push has nothing left to send.)


def test_checkout_through_the_hook_keeps_dvcs_links(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    """With a worktree remote, `dvc checkout` imports the adapter, so its copies from the cache
    now run through the `transfer` hook: they must stay DVC's own, links included."""
    repo = make_repo(tmp_path / "repo", cli_env)
    dvc(repo, cli_env, "config", "cache.type", "hardlink")
    contents = tracked_data(repo, cli_env)
    folder = worktree_remote(repo, cli_env)
    push = screen_of([DVC, "push"], repo, cli_env)
    assert push.exit_status == 0, str(push)
    assert set(remote_files(dropbox_sdk, folder)) == {f"data/{name}" for name in contents}

    removed = list(contents)[:5]
    for name in removed:
        (repo / "data" / name).unlink()
    checkout = screen_of([DVC, "checkout"], repo, cli_env)

    assert checkout.exit_status == 0, str(checkout)
    assert shows(checkout.lines, "M       data"), str(checkout)
    for name, content in contents.items():
        assert (repo / "data" / name).read_bytes() == content, name
    for name in removed:  # linked from the cache, as cache.type says, not copied
        assert (repo / "data" / name).stat().st_nlink == 2, name


# A DVC whose `_put` takes its first parameter under another name: DVC's own callers still work
# (they pass it by position), the hook's check refuses it. The real `dvc` CLI, run after that.
CHANGED_DVC = """
import sys
from dvc_objects.fs import generic

real = generic._put

def _put(paths, to_fs, to_paths, callback=None, batch_size=None, on_error=None):
    return real(paths, to_fs, to_paths, callback=callback, batch_size=batch_size,
                on_error=on_error)

generic._put = _put
from dvc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_changed_dvc_private_is_one_warning_and_the_push_works(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    import sys

    from dvc_objects.fs import generic

    assert "paths" not in inspect.signature(generic._put).parameters  # the change is made up
    repo = make_repo(tmp_path / "repo", cli_env)
    tracked_data(repo, cli_env)
    folder = f"/hooks-{uuid.uuid4().hex[:10]}"
    dvc(repo, cli_env, "remote", "add", "-d", "r", f"dropbox:/{folder}")

    screen = screen_of([sys.executable, "-c", CHANGED_DVC, "push"], repo, cli_env)

    assert screen.exit_status == 0, str(screen)
    warnings = [line for line in screen.lines if line.startswith("WARNING: ")]
    assert len(warnings) == 1, str(screen)
    for phrase in (
        f"dvc-dropbox does not know this DVC (DVC {version('dvc')}, dvc-objects "
        f"{version('dvc-objects')})",
        "dvc_objects.fs.generic._put takes (paths, to_fs, to_paths, ...) first",
        "dvc push commits at most -j files per batch",
        "pip install 'dvc-objects<6'",
    ):
        assert shows(screen.lines, phrase), f"{phrase!r} not in:\n{screen}"
    assert "Traceback" not in str(screen)
    assert shows(screen.lines, f"{FILES + 1} files pushed"), str(screen)  # and the .dir
    assert len(remote_files(dropbox_sdk, folder)) == FILES + 1
