"""A remote whose URL names a file in Dropbox: the message names that remote and its URL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from .cli import assert_clean_error, dvc, make_repo


@pytest.mark.parametrize("below", [False, True], ids=["url-is-a-file", "url-below-a-file"])
def test_message_names_the_remote_in_use(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any, below: bool
) -> None:
    base = f"/dvc/is-a-file-{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_upload(b"not a folder\n", f"{base}/a-file")
    bad_url = f"dropbox:/{base}/a-file" + ("/sub" if below else "")
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "data").mkdir()
    (repo / "data" / "x.txt").write_text("x\n")
    dvc(repo, cli_env, "add", "data")
    # A sound default remote and the broken one: the message must name the one in use.
    dvc(repo, cli_env, "remote", "add", "-d", "main", f"dropbox:/{base}/store")
    dvc(repo, cli_env, "remote", "add", "backup", bad_url)

    # From a subfolder, as people run dvc.
    proc = dvc(repo / "data", cli_env, "push", "-r", "backup", check=False)

    output = assert_clean_error(
        proc,
        f"the remote 'backup' ({bad_url}) cannot be used",
        f"{base}/a-file is a file in Dropbox",
        "dvc remote modify backup url dropbox://<folder>/<subfolder>",
    )
    assert "'main'" not in output, output
    assert output.count("ERROR") == 1, output
    if below:
        assert f"so {base}/a-file/sub cannot be a folder" in output, output


def test_two_remotes_with_the_same_url_are_both_named(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    path = f"/dvc/is-a-file-{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_upload(b"not a folder\n", path)
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "x.txt").write_text("x\n")
    dvc(repo, cli_env, "add", "x.txt")
    # Same folder, spelt differently (Dropbox paths are case-insensitive).
    dvc(repo, cli_env, "remote", "add", "-d", "one", f"dropbox:/{path}")
    dvc(repo, cli_env, "remote", "add", "two", f"dropbox:/{path.upper()}/")

    proc = dvc(repo, cli_env, "push", check=False)

    assert_clean_error(
        proc, f"the remote 'one' / 'two' (dropbox:/{path})", "dvc remote modify one url"
    )
