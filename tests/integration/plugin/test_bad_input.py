"""Bad input through the real `dvc` command: one clear message, no traceback, exit code != 0."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.screen import screen_of

from .cli import BIN, DVC, assert_clean_error, dvc, make_repo, run

RIGHT_FORM = "dropbox://dvc/my-project"
DVC_DROPBOX = str(BIN / "dvc-dropbox")


@pytest.fixture
def repo(tmp_path: Path, cli_env: dict[str, str]) -> Path:
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "data.txt").write_text("some data\n")
    dvc(repo, cli_env, "add", "data.txt")
    return repo


BAD_URLS = [
    ("dropbox:///x", "no third slash"),
    ("dropbox://", "names no folder"),
    ("dropbox://dvc//x", "empty path component"),
    ("dropbox://dvc/../x", "'..' path component"),
    # One slash or none, any case: DVC used to save these as local remotes (`../dropbox:/dvc/x`).
    ("dropbox:/dvc/x", "'dropbox:' must be followed by two slashes; did you mean dropbox://dvc/x?"),
    ("dropbox:dvc/x", "'dropbox:' must be followed by two slashes; did you mean dropbox://dvc/x?"),
    ("DROPBOX:/dvc/x", "did you mean dropbox://dvc/x?"),
    ("DropBox:///dvc/x", "no third slash"),
]


def dropbox_named_paths(repo: Path) -> list[Path]:
    """Local files or folders a `dropbox:` URL taken for a local path would have created."""
    return [p for p in repo.rglob("*") if "dropbox:" in p.name.lower()]


def test_bad_urls_refused_at_remote_add(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "sub").mkdir()
    before = (repo / ".dvc" / "config").read_bytes()
    for url, why in BAD_URLS:
        # From a subfolder too where DVC would rewrite the URL as a path relative to it.
        for cwd in (repo, repo / "sub") if "://" not in url else (repo,):
            proc = dvc(cwd, cli_env, "remote", "add", "-d", "r", url, check=False)
            assert_clean_error(proc, f"invalid Dropbox URL {url!r}", why, RIGHT_FORM)
    assert (repo / ".dvc" / "config").read_bytes() == before  # nothing saved, not even locally
    assert dropbox_named_paths(repo) == []


def test_bad_url_refused_at_remote_modify(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    dvc(repo, cli_env, "remote", "add", "-d", "r", "dropbox://dvc/good")
    before = (repo / ".dvc" / "config").read_bytes()
    proc = dvc(repo, cli_env, "remote", "modify", "r", "url", "dropbox:/dvc/x", check=False)
    assert_clean_error(proc, "invalid Dropbox URL 'dropbox:/dvc/x'", "dropbox://dvc/x?")
    assert (repo / ".dvc" / "config").read_bytes() == before


def test_the_refusal_on_screen(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "sub").mkdir()
    screen = screen_of([DVC, "remote", "add", "-d", "r", "dropbox:/dvc/x"], repo / "sub", cli_env)
    assert screen.exit_status != 0, screen
    assert screen.message("ERROR:") == (
        "ERROR: configuration error - config file error: invalid Dropbox URL 'dropbox:/dvc/x': "
        "'dropbox:' must be followed by two slashes; did you mean dropbox://dvc/x? write it as "
        "dropbox://<folder>/<subfolder>..., e.g. dropbox://dvc/my-project for the Dropbox folder "
        "/dvc/my-project for dictionary value @ data['remote']['r']"
    ), screen
    assert "Traceback" not in str(screen) and "Warning" not in str(screen), screen


@pytest.mark.parametrize("url", ["dropbox:///x", "dropbox:/dvc/x", "DROPBOX:dvc/x"])
def test_bad_url_in_hand_edited_config(repo: Path, cli_env: dict[str, str], url: str) -> None:
    with open(repo / ".dvc" / "config", "a") as fobj:
        fobj.write(f"[core]\n    remote = r\n['remote \"r\"']\n    url = {url}\n")
    (repo / "sub").mkdir()
    for cwd in (repo, repo / "sub"):
        output = assert_clean_error(
            dvc(cwd, cli_env, "push", check=False), f"invalid Dropbox URL {url!r}", RIGHT_FORM
        )
        assert "['remote']['r']" in output  # which remote of the config is wrong
    assert dropbox_named_paths(repo) == []  # nothing "pushed" into a local folder


@pytest.mark.parametrize("command", [["ls-url"], ["get-url"], ["import-url"]])
def test_bad_url_refused_by_url_commands(
    repo: Path, cli_env: dict[str, str], command: list[str]
) -> None:
    for url in ("dropbox:///dvc/x", "dropbox:/dvc/x", "DROPBOX:dvc/x"):
        proc = dvc(repo, cli_env, *command, url, check=False)
        output = assert_clean_error(proc, f"invalid Dropbox URL {url!r}", RIGHT_FORM)
        assert "config" not in output.lower()  # the URL was typed, not configured
    assert dropbox_named_paths(repo) == []


def test_ls_url_without_a_folder(tmp_path: Path, cli_env: dict[str, str]) -> None:
    screen = screen_of([DVC, "ls-url", "dropbox://"], tmp_path, cli_env)
    assert screen.exit_status != 0, screen
    assert screen.message("ERROR:") == (
        "ERROR: invalid Dropbox URL 'dropbox://': it names no folder; a folder is needed after "
        "'dropbox://' (not the whole Dropbox); write it as dropbox://<folder>/<subfolder>..., "
        "e.g. dropbox://dvc/my-project for the Dropbox folder /dvc/my-project"
    ), screen
    assert "config" not in str(screen).lower(), screen


def test_helper_accepts_what_the_plugin_accepts(repo: Path, cli_env: dict[str, str]) -> None:
    dvc(repo, cli_env, "remote", "add", "-d", "mixed", "DropBox://dvc/any-case")
    dvc(repo, cli_env, "remote", "add", "other", "s3://bucket/path")
    status = run([DVC_DROPBOX, "status"], repo, cli_env, check=False)
    assert status.returncode == 0, status.stderr
    assert "Remote:       mixed (DropBox://dvc/any-case)" in status.stdout
    other = run([DVC_DROPBOX, "status", "other"], repo, cli_env, check=False)
    assert_clean_error(
        other, "remote 'other' is not a Dropbox remote (its url is s3://bucket/path)"
    )


@pytest.mark.parametrize("below", [False, True])
def test_remote_folder_that_is_a_file(
    repo: Path, cli_env: dict[str, str], dropbox_sdk: Any, below: bool
) -> None:
    path = f"/dvc/a-file-{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_upload(b"not a folder\n", path)
    url = f"dropbox:/{path}" + ("/sub" if below else "")
    dvc(repo, cli_env, "remote", "add", "-d", "r", url)
    proc = dvc(repo, cli_env, "push", check=False)
    output = assert_clean_error(proc, f"{path} is a file", "dvc remote modify")
    assert output.count("ERROR") == 1, output  # one message, not one per file


def test_chunk_size_checked_at_remote_modify(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    dvc(repo, cli_env, "remote", "add", "-d", "r", "dropbox://dvc/chunks")
    # Good values: test_urls.py and test_registration.py. 150 is neither MiB (< 150) nor bytes.
    for value in ("5MiB", "200MiB", "150", "50331649"):
        proc = dvc(repo, cli_env, "remote", "modify", "r", "chunk_size", value, check=False)
        output = assert_clean_error(proc, "chunk_size must be a multiple of 4 MiB below 150 MiB")
        assert f"not {value!r}" in output  # the value as typed, quoted
    assert "chunk_size" not in (repo / ".dvc" / "config").read_text()


def test_path_root_checked_at_remote_modify(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    dvc(repo, cli_env, "remote", "add", "-d", "r", "dropbox://dvc/ns")
    for value in ("team", "Home", "12ab"):
        proc = dvc(repo, cli_env, "remote", "modify", "r", "path_root", value, check=False)
        assert_clean_error(
            proc, f"path_root must be 'home', 'root' or a namespace id (digits), not {value!r}"
        )
    assert "path_root" not in (repo / ".dvc" / "config").read_text()
    dvc(repo, cli_env, "remote", "modify", "r", "path_root", "12345")
    assert "path_root = 12345" in (repo / ".dvc" / "config").read_text()


def test_bad_chunk_size_in_hand_edited_config(repo: Path, cli_env: dict[str, str]) -> None:
    with open(repo / ".dvc" / "config", "a") as fobj:
        fobj.write(
            "[core]\n    remote = r\n['remote \"r\"']\n    url = dropbox://dvc/chunks\n"
            "    chunk_size = 200MiB\n"
        )
    proc = dvc(repo, cli_env, "push", check=False)
    assert_clean_error(proc, "chunk_size must be a multiple of 4 MiB below 150 MiB", "'200MiB'")


def test_missing_credentials(repo: Path, cli_env: dict[str, str]) -> None:
    env = {
        k: v
        for k, v in cli_env.items()
        if k not in ("DROPBOX_ACCESS_TOKEN", "DROPBOX_REFRESH_TOKEN")
    }
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://dvc/{uuid.uuid4().hex[:12]}")
    proc = dvc(repo, env, "push", check=False)
    output = assert_clean_error(proc, "DROPBOX_REFRESH_TOKEN")
    assert "failed to upload" not in output


def test_missing_app_key(repo: Path, cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k not in ("DROPBOX_ACCESS_TOKEN", "DROPBOX_APP_KEY")}
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://dvc/{uuid.uuid4().hex[:12]}")
    proc = dvc(repo, env, "push", check=False)
    assert_clean_error(proc, "app_key")


def test_rejected_access_token(repo: Path, cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k != "DROPBOX_REFRESH_TOKEN"}
    env["DROPBOX_ACCESS_TOKEN"] = "not-a-valid-token"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://dvc/{uuid.uuid4().hex[:12]}")
    proc = dvc(repo, env, "push", check=False)
    output = assert_clean_error(proc, "DROPBOX_ACCESS_TOKEN")
    assert "failed to upload" not in output


# A download whose bytes do not match content_hash: test_transfer_dvc.py (P2) covers it via the CLI.
