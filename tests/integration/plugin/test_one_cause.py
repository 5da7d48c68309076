"""One cause, one message (issue 11 item 4), through the real `dvc` on a 120x40 terminal.

A cause every file would meet — a full Dropbox, a token revoked in the middle of a transfer, a
token without the permission to write — stops the transfer: one ERROR line naming the cause and
the fix (before: one "failed to transfer" line per file, ~300 for a full Dropbox), exit != 0, no
traceback, no SDK class names, no token (not even with -v). What was transferred before the
stop is whole, and running the command again after the fix transfers the rest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import PtyScreen, Screen, screen_of, shows
from tests.integration.plugin.cli import DVC, dvc, make_repo, remote_objects

FILES = 50
FILE_SIZE = 1000
# SDK class names that must never reach the screen (issue 11: "ApiError(None, ...WriteError(...").
SDK_NAMES = re.compile(
    r"\b(ApiError|AuthError|WriteError|UploadSessionFinishError|BadInputError)\b"
)
REPR = re.compile(r"\b[A-Z]\w*Error\(")
WAIT_S = 120
# Revoke once this many files are under way (a pull's first download is the .dir listing).
REVOKE_AFTER = 5
# An ERROR line as DVC prints it; with -v, after a timestamp.
ERROR_LINE = re.compile(r"^(\d{4}-\d\d-\d\d [\d:,]+ )?ERROR: ")


@pytest.fixture
def emu(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The session emulator; whatever a test changes in its config is put back."""
    before = emulator.config()
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()
    emulator.config(latency_ms=before["latency_ms"], quota_bytes=before["quota_bytes"])


def project(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str]:
    """A repository tracking data/ (FILES distinct files) with a default remote of its own."""
    repo = make_repo(tmp_path / "repo", env)
    data = repo / "data"
    data.mkdir()
    for i in range(FILES):
        (data / f"f{i:03}.bin").write_bytes(os.urandom(FILE_SIZE - 1) + bytes([i]))
    dvc(repo, env, "add", "-q", "data")
    folder = f"/one-cause-{uuid.uuid4().hex[:10]}/store"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox:/{folder}")
    return repo, folder


def whole_objects(sdk: Any, folder: str) -> set[str]:
    """The objects below `folder`, each checked against the md5 its name gives (none partial)."""
    names = remote_objects(sdk, folder)
    for name in names:
        _, body = sdk.files_download(f"{folder}/{name}")
        parts = name.split("/")
        assert parts[:2] == ["files", "md5"], name
        expected = (parts[2] + parts[3]).removesuffix(".dir")
        assert hashlib.md5(body.content).hexdigest() == expected, f"{name} is not whole"
    return names


def whole_cache(repo: Path) -> int:
    """Files in the local cache, each checked against the md5 its name gives."""
    count = 0
    root = repo / ".dvc" / "cache" / "files" / "md5"
    for path in root.rglob("*"):
        if path.is_file():
            expected = (path.parent.name + path.name).removesuffix(".dir")
            assert hashlib.md5(path.read_bytes()).hexdigest() == expected, f"{path} is not whole"
            count += 1
    return count


def assert_one_message(screen: Screen, *phrases: str, verbose: bool = False) -> str:
    """Exit != 0 and exactly one ERROR line, which says every phrase; returns that message."""
    text = str(screen)
    assert screen.exit_status != 0, text
    errors = [line for line in screen.lines if ERROR_LINE.match(line)]
    assert len(errors) == 1, text
    assert "failed to transfer" not in text, text
    # From the ERROR line to the end (pyte strips a wrapped row's trailing blank).
    message = "".join(screen.lines[screen.lines.index(errors[0]) :])
    for phrase in phrases:
        assert shows([message], phrase), f"{phrase!r} not in:\n{text}"
    if not verbose:  # -v shows the causes in DEBUG lines; that is what it is for
        assert "Traceback" not in text, text
        assert not SDK_NAMES.search(text) and not REPR.search(text), text
    return message


def run_revoking(
    emu: EmulatorProcess,
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    token: dict[str, Any],
    route: str,
) -> tuple[Screen, str]:
    """Run `argv`; once Dropbox has answered a few `route` requests, revoke `token`."""
    before = int(emu.stats()["requests"].get(route, 0))
    term = PtyScreen(argv, cwd, env, timeout=WAIT_S)
    try:
        term.wait_for(
            lambda: int(emu.stats()["requests"].get(route, 0)) - before >= REVOKE_AFTER,
            f"{REVOKE_AFTER} {route} requests",
            timeout=WAIT_S,
        )
        emu.revoke_token(token["refresh_token"])
        status = term.finish()
    finally:
        term.close()
    return Screen(term.lines(), status), term.transcript


def test_full_dropbox_stops_the_push_with_one_message(
    tmp_path: Path, emu: EmulatorProcess, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    repo, folder = project(tmp_path, cli_env)
    used = dropbox_sdk.users_get_space_usage().used
    # Room for about a third of the files.
    emu.config(quota_bytes=used + FILES * FILE_SIZE // 3)

    screen = screen_of([DVC, "push", "-j", "4"], repo / "data", cli_env)

    assert_one_message(
        screen,
        "Dropbox is full",
        "insufficient_space",
        "free up space",
        "upgrade its plan",
        "running the command again uploads the rest",
    )
    pushed = whole_objects(dropbox_sdk, folder)
    assert 0 < len(pushed) < FILES, pushed

    emu.config(quota_bytes=used + 10 * FILES * FILE_SIZE)
    again = screen_of([DVC, "push"], repo / "data", cli_env)
    assert again.exit_status == 0, str(again)
    assert shows(again.lines, f"{FILES + 1 - len(pushed)} files pushed"), str(again)
    assert len(whole_objects(dropbox_sdk, folder)) == FILES + 1  # and the .dir listing


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
def test_token_revoked_mid_push_is_one_message(
    verbose: bool, tmp_path: Path, emu: EmulatorProcess, dropbox_sdk: Any
) -> None:
    token = emu.token()  # its own pair: revoking it must not hurt other tests
    env = emu.isolated_env(tmp_path / "home", token)
    repo, folder = project(tmp_path, env)
    # One session per file (packs would send the 50 files in 3 requests): many requests to cut.
    dvc(repo, env, "remote", "modify", "r", "pack", "false")
    emu.config(latency_ms=50)  # the push lasts long enough to be cut in the middle

    argv = [DVC, "push", "-j", "2", *(["-v"] if verbose else [])]
    screen, transcript = run_revoking(
        emu, argv, repo / "data", env, token, "files/upload_session/start"
    )

    assert_one_message(
        screen,
        "rejected the access token",
        "dvc-dropbox login r",
        "export-env r",
        verbose=verbose,
    )
    for secret in (token["access_token"], token["refresh_token"]):
        assert secret not in transcript
    pushed = whole_objects(dropbox_sdk, folder)
    assert len(pushed) < FILES + 1

    emu.config(latency_ms=0)
    fresh = emu.isolated_env(tmp_path / "home", emu.token())
    again = screen_of([DVC, "push"], repo, fresh)
    assert again.exit_status == 0, str(again)
    assert len(whole_objects(dropbox_sdk, folder)) == FILES + 1


def test_token_without_write_permission_is_one_message(
    tmp_path: Path, emu: EmulatorProcess, dropbox_sdk: Any
) -> None:
    from dvc_dropbox.auth.oauth_flow import SCOPES

    token = emu.token(scopes=[s for s in SCOPES if s != "files.content.write"])
    env = emu.isolated_env(tmp_path / "home", token)
    repo, folder = project(tmp_path, env)

    screen = screen_of([DVC, "push"], repo / "data", env)

    assert_one_message(screen, "lacks the permission 'files.content.write'", "Permissions tab")
    assert whole_objects(dropbox_sdk, folder) == set()


def test_token_revoked_mid_pull_is_one_message(
    tmp_path: Path, emu: EmulatorProcess, cli_env: dict[str, str]
) -> None:
    repo, _ = project(tmp_path, cli_env)
    dvc(repo, cli_env, "push", "-q")
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    token = emu.token()
    env = emu.isolated_env(tmp_path / "home2", token)
    emu.config(latency_ms=50)

    screen, transcript = run_revoking(
        emu, [DVC, "pull", "-j", "2"], repo, env, token, "files/download"
    )

    assert_one_message(screen, "rejected the access token", "dvc-dropbox login r")
    assert shows(screen.lines, "Stopped the download at this error")
    for secret in (token["access_token"], token["refresh_token"]):
        assert secret not in transcript
    assert whole_cache(repo) < FILES + 1  # nothing partial; not everything

    emu.config(latency_ms=0)
    again = screen_of([DVC, "pull"], repo, cli_env)
    assert again.exit_status == 0, str(again)
    assert whole_cache(repo) == FILES + 1
    assert len(list((repo / "data").iterdir())) == FILES


def test_remote_folder_name_dropbox_refuses_is_one_message(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    repo, _ = project(tmp_path, cli_env)
    folder = f"/one-cause-{uuid.uuid4().hex[:10]}/desktop.ini/store"  # on Dropbox's ignored list
    dvc(repo, cli_env, "remote", "modify", "r", "url", f"dropbox:/{folder}")

    screen = screen_of([DVC, "push"], repo / "data", cli_env)

    assert_one_message(
        screen,
        "Dropbox does not accept the path",
        "disallowed_name",
        "dvc remote modify <name> url dropbox://<folder>/<subfolder>",
    )
    assert remote_objects(dropbox_sdk, folder.rsplit("/", 2)[0]) == set()


def test_gc_of_the_remote_without_delete_permission_is_one_message(
    tmp_path: Path, emu: EmulatorProcess, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    from dvc_dropbox.auth.oauth_flow import SCOPES

    repo, folder = project(tmp_path, cli_env)
    dvc(repo, cli_env, "push", "-q")
    dvc(repo, cli_env, "remove", "data.dvc")  # every object in the remote is unused now
    token = emu.token(scopes=[s for s in SCOPES if s != "files.content.write"])
    env = emu.isolated_env(tmp_path / "home2", token)

    # Deletes go out as delete_batch jobs, so a refusal is one error, not one per object.
    screen = screen_of([DVC, "gc", "-w", "-c", "-f"], repo, env)

    assert_one_message(screen, "lacks the permission 'files.content.write'")
    assert len(whole_objects(dropbox_sdk, folder)) == FILES + 1  # nothing deleted, nothing lost
