"""Bad input through the real `dvc` command: one clear message, no traceback, exit code != 0."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from .cli import assert_clean_error, dvc, make_repo

RIGHT_FORM = "dropbox://dvc/my-project"


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
]


def test_bad_urls_refused_at_remote_add(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    for url, why in BAD_URLS:
        proc = dvc(repo, cli_env, "remote", "add", "-d", "r", url, check=False)
        assert_clean_error(proc, "invalid Dropbox URL", why, RIGHT_FORM)
    assert "dropbox" not in (repo / ".dvc" / "config").read_text()


def test_bad_url_refused_by_url_commands(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = dvc(tmp_path, cli_env, "ls-url", "dropbox:///dvc/x", check=False)
    assert_clean_error(proc, "invalid Dropbox URL", RIGHT_FORM)


def test_bad_url_in_hand_edited_config(repo: Path, cli_env: dict[str, str]) -> None:
    with open(repo / ".dvc" / "config", "a") as fobj:
        fobj.write("[core]\n    remote = r\n['remote \"r\"']\n    url = dropbox:///x\n")
    assert_clean_error(dvc(repo, cli_env, "push", check=False), "invalid Dropbox URL", RIGHT_FORM)


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
    for value in ("5MiB", "200MiB"):  # good values: test_urls.py and test_registration.py
        proc = dvc(repo, cli_env, "remote", "modify", "r", "chunk_size", value, check=False)
        assert_clean_error(proc, "chunk_size must be a multiple of 4 MiB below 150 MiB")
    assert "chunk_size" not in (repo / ".dvc" / "config").read_text()


def test_bad_chunk_size_in_hand_edited_config(repo: Path, cli_env: dict[str, str]) -> None:
    with open(repo / ".dvc" / "config", "a") as fobj:
        fobj.write(
            "[core]\n    remote = r\n['remote \"r\"']\n    url = dropbox://dvc/chunks\n"
            "    chunk_size = 200MiB\n"
        )
    proc = dvc(repo, cli_env, "push", check=False)
    assert_clean_error(proc, "chunk_size must be a multiple of 4 MiB below 150 MiB")


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
