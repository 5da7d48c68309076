"""`dvc-dropbox doctor` and the one-time hint after a push, with a fake home directory.

The Dropbox desktop app is not needed: its whole footprint that matters here is `info.json` in
the documented format, written into a temporary HOME. The emulator's account is a team member
in a team space (home folder "/Emulator User" inside the team space root), as many are.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import run_on_screen, shows, squash
from tests.integration.auth.conftest import (
    APP_KEY,
    DVC,
    DVC_DROPBOX,
    RepoFactory,
    assert_no_secrets,
    base_env,
    remote_url,
    run,
)

MEMBER_FOLDER = "Emulator User"  # the emulator account's home_path in its team space


def _info_json(home: Path, **accounts: dict[str, Any]) -> Path:
    info = home / ".dropbox" / "info.json"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text(json.dumps(accounts))
    return info


def _business(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {"path": str(folder), "host": 4242, "is_team": True, "subscription_type": "Business"}


def _personal(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {"path": str(folder), "host": 1717, "is_team": False, "subscription_type": "Basic"}


class World:
    """A fake home (maybe with a desktop app), a repository and a token for the emulator."""

    def __init__(self, emulator: EmulatorProcess, tmp_path: Path, repo: Path, url: str):
        self.emulator = emulator
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.repo = repo
        self.remote_path = url.removeprefix("dropbox://")
        self.dropbox = self.home / "Dropbox (Emulator Team)"
        self.token = emulator.token()
        self.env = base_env(
            emulator,
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            DROPBOX_REFRESH_TOKEN=self.token["refresh_token"],
        )

    def desktop_app(self) -> Path:
        return _info_json(
            self.home,
            personal=_personal(self.home / "Dropbox (Personal)"),
            business=_business(self.dropbox),
        )

    @property
    def synced_folder(self) -> Path:
        """Where the desktop app keeps the remote's folder: member folder, then the path."""
        return self.dropbox / MEMBER_FOLDER / self.remote_path

    def doctor(self, cwd: Path | None = None, *args: str) -> list[str]:
        status, lines = run_on_screen(DVC_DROPBOX, ["doctor", *args], cwd or self.repo, self.env)
        assert status == 0, "\n".join(lines)
        assert not shows(lines, "Traceback")
        assert_no_secrets("\n".join(lines), [self.token["refresh_token"]])
        return lines

    def push(self, cwd: Path | None = None) -> list[str]:
        status, lines = run_on_screen(DVC, ["push"], cwd or self.repo, self.env)
        assert status == 0, "\n".join(lines)
        return lines


@pytest.fixture
def world(
    emulator: EmulatorProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    repo_factory: RepoFactory,
) -> World:
    url = remote_url(request)
    return World(emulator, tmp_path, repo_factory(tmp_path / "repo", url), url)


def test_no_desktop_app_says_so_and_nothing_else(world: World) -> None:
    world.env.pop("DROPBOX_REFRESH_TOKEN")  # it needs no credentials and no network either
    for cwd in (world.repo, world.repo / "data"):
        lines = world.doctor(cwd)
        expected = (
            f"No Dropbox desktop app found on this computer (no {world.home}/.dropbox/info.json)."
            "Nothing to check: Selective Sync and Smart Sync only concern the desktop app."
        )
        assert squash("".join(lines)) == squash(expected), lines  # and nothing else


def test_remote_folder_synced(world: World) -> None:
    info = world.desktop_app()
    world.synced_folder.mkdir(parents=True)
    lines = world.doctor(world.repo / "data")
    assert lines[0] == f"Dropbox desktop app: {info}"
    assert shows(lines, f"  personal account (Basic): {world.home / 'Dropbox (Personal)'}")
    assert shows(lines, f"  business account (Business, team): {world.dropbox}")
    # What `dvc-dropbox status` shows, from the same code.
    assert shows(lines, "Remote:       myremote (dropbox://" + world.remote_path + ")")
    assert shows(lines, "Account:      Emulator User <emulator@example.com>")
    assert shows(lines, "Credentials:  the environment variable DROPBOX_REFRESH_TOKEN")
    assert shows(
        lines,
        f"Remote folder /{world.remote_path}: SYNCED to this computer by the desktop app, at "
        f"{world.synced_folder}",
    )
    assert shows(lines, f"untick {MEMBER_FOLDER}/{world.remote_path}")
    assert shows(lines, f"or run: dropbox exclude add {shlex.quote(str(world.synced_folder))}")
    assert shows(lines, "Save hard drive space automatically")
    assert shows(lines, f"Repository:   {world.repo}: not inside a Dropbox folder (good)")
    cache = world.repo / ".dvc" / "cache"
    assert shows(lines, f"DVC cache:    {cache}: not inside a Dropbox folder (good)")
    # A Linux file system is case-sensitive, Dropbox is not: DVC/X on disk is still this folder.
    world.synced_folder.rename(world.synced_folder.parent / world.synced_folder.name.upper())
    assert shows(world.doctor(), "SYNCED to this computer by the desktop app")


def test_remote_folder_synced_found_without_credentials(world: World) -> None:
    """No account to ask: the member folder of the team space is still found, as a guess."""
    world.env.pop("DROPBOX_REFRESH_TOKEN")
    world.desktop_app()
    world.synced_folder.mkdir(parents=True)
    lines = world.doctor()
    assert shows(lines, "Status:       cannot check the account: no Dropbox credentials")
    assert shows(
        lines,
        f"Remote folder /{world.remote_path}: SYNCED to this computer by the desktop app (if it "
        f"is the remote's account), at {world.synced_folder}",
    )
    assert shows(lines, f"untick {MEMBER_FOLDER}/{world.remote_path}")
    assert shows(lines, "the folders above are guesses")


def test_remote_folder_excluded(world: World) -> None:
    world.desktop_app()
    # Before the first push the folder is not in Dropbox: "not synced" would be no news yet.
    before = world.doctor()
    assert shows(before, f"Remote folder /{world.remote_path}: not in Dropbox yet")
    assert shows(before, "run `dvc-dropbox doctor` again after that push")
    world.push()
    # Pushed, and the desktop app has no such folder: excluded with Selective Sync.
    lines = world.doctor()
    assert shows(
        lines,
        f"Remote folder /{world.remote_path}: not synced here ({world.synced_folder} does not "
        "exist): excluded with Selective Sync, or not synced to this computer (good)",
    )
    assert not shows(lines, "SYNCED") and not shows(lines, "dropbox exclude add")
    assert not shows(lines, "INSIDE")


def test_repository_inside_the_dropbox_folder(
    emulator: EmulatorProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    repo_factory: RepoFactory,
) -> None:
    url = remote_url(request)
    inside = tmp_path / "home" / "Dropbox (Emulator Team)" / MEMBER_FOLDER / "projects" / "repo"
    inside.parent.mkdir(parents=True)
    world = World(emulator, tmp_path, repo_factory(inside, url), url)
    world.desktop_app()
    lines = world.doctor(world.repo / "data")
    assert shows(lines, f"Repository:   {world.repo}: INSIDE the Dropbox folder {world.dropbox}")
    assert shows(lines, "edits on two computers end up as conflicted copies")
    assert shows(lines, "Move the repository out of the Dropbox folder")
    cache = world.repo / ".dvc" / "cache"
    assert shows(lines, f"DVC cache:    {cache}: INSIDE the Dropbox folder {world.dropbox}")


def test_cache_inside_the_dropbox_folder(world: World) -> None:
    world.desktop_app()
    cache = world.dropbox / "dvc-cache"
    configured = run([DVC, "cache", "dir", "--local", str(cache)], world.repo, world.env)
    assert configured.returncode == 0, configured.stderr
    shown = run([DVC, "cache", "dir"], world.repo, world.env).stdout.strip()
    assert shown == str(cache)
    lines = world.doctor()
    assert shows(lines, f"Repository:   {world.repo}: not inside a Dropbox folder (good)")
    assert shows(lines, f"DVC cache:    {cache}: INSIDE the Dropbox folder {world.dropbox}")
    assert shows(lines, "uploads every cached object a second time")
    assert shows(lines, "dvc cache dir --local <folder outside Dropbox>")
    assert shows(lines, f"attr -s com.dropbox.ignored -V 1 {shlex.quote(str(cache))}")


def test_first_push_hints_once_per_repository(world: World) -> None:
    world.desktop_app()
    world.synced_folder.mkdir(parents=True)
    hint = (
        f"dvc-dropbox: the Dropbox desktop app on this computer syncs the remote folder "
        f"/{world.remote_path} ({world.synced_folder}); see `dvc-dropbox doctor` for Selective "
        "Sync advice."
    )
    marker = world.repo / ".dvc" / "tmp" / "dvc-dropbox-desktop-app-hint"
    quiet = run([DVC, "push", "-q"], world.repo, world.env)  # -q: no hint, and none used up
    assert quiet.returncode == 0 and quiet.stdout + quiet.stderr == ""
    assert not marker.exists()
    (world.repo / "data" / "more.txt").write_text("more\n")
    assert run([DVC, "add", "-q", "data"], world.repo, world.env).returncode == 0
    first = world.push(world.repo / "data")
    assert shows(first, "2 files pushed")
    assert shows(first, hint), "\n".join(first)
    assert marker.exists()
    # The next push (with something new to upload) stays quiet.
    (world.repo / "data" / "new.txt").write_text("new\n")
    assert run([DVC, "add", "-q", "data"], world.repo, world.env).returncode == 0
    second = world.push()
    assert shows(second, "2 files pushed")
    assert not shows(second, "desktop app"), "\n".join(second)


def test_no_hint_when_the_desktop_app_does_not_sync_the_remote(world: World) -> None:
    marker = world.repo / ".dvc" / "tmp" / "dvc-dropbox-desktop-app-hint"
    lines = world.push()  # no desktop app at all
    assert shows(lines, "2 files pushed") and not shows(lines, "desktop app")
    world.desktop_app()  # a desktop app whose Dropbox folder lacks the remote's folder
    (world.repo / "data" / "new.txt").write_text("new\n")
    assert run([DVC, "add", "-q", "data"], world.repo, world.env).returncode == 0
    lines = world.push()
    assert shows(lines, "2 files pushed") and not shows(lines, "desktop app")
    assert not marker.exists()


def test_unreadable_info_json_is_reported(world: World) -> None:
    info = _info_json(world.home)
    info.write_text("{not json")
    status, lines = run_on_screen(DVC_DROPBOX, ["doctor"], world.repo, world.env)
    assert status == 1
    assert lines[0] == f"Dropbox desktop app: {info}"
    assert lines[1].startswith("  cannot use it: not the documented format")


def test_outside_a_repository_only_the_account_is_checked(world: World) -> None:
    """Outside a repository with --app-key: the desktop app and the account, no folders."""
    world.desktop_app()
    elsewhere = world.home / "elsewhere"
    elsewhere.mkdir()
    lines = world.doctor(elsewhere, "--app-key", APP_KEY)
    assert any(line.startswith("Account:      Emulator User") for line in lines)
    assert shows(lines, "Remote folder: no DVC remote named, so no folder to check.")
    assert not any(line.startswith("Repository:") for line in lines)
