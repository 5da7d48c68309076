"""Uploads never trust a size (issue 16, item 5), and the md5-by-name check is DVC's alone
(item 10), through the public fsspec API on the emulator.

A source that grows or shrinks while it is uploaded is an error and commits nothing (not a cut
file with a valid content_hash). A user's own `ab/<30 hex>` file is just a file.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from dropbox import files
from fsspec.callbacks import Callback

from dvc_dropbox.fs import DropboxFS
from tests.integration.plugin.cli import dvc, make_repo

MiB = 1024 * 1024


@pytest.fixture
def base(dropbox_sdk: Any) -> str:
    name = f"UploadSources/{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_create_folder_v2("/" + name)
    return name


def names_in(sdk: Any, folder: str) -> list[str]:
    """The files below `folder` (not the folder itself, which a recursive listing holds)."""
    entries = sdk.files_list_folder("/" + folder, recursive=True).entries
    return sorted(e.name for e in entries if isinstance(e, files.FileMetadata))


class ChangesTheFile(Callback):
    """Changes the local file right after `put_file` has taken its size (fsspec calls set_size
    before the first byte is read): a file still being written by another program."""

    def __init__(self, path: Path, grow: bool):
        super().__init__()
        self.path = path
        self.grow = grow

    def set_size(self, size: Any) -> None:
        super().set_size(size)
        if self.grow:
            with open(self.path, "ab") as f:
                f.write(b"+" * 1000)
        else:
            os.truncate(self.path, size - 1000)


@pytest.mark.parametrize("size", [3000, 9 * MiB], ids=["one-request", "session"])
@pytest.mark.parametrize("grow", [True, False], ids=["grew", "shrank"])
def test_a_local_file_that_changes_during_put_file_is_not_committed(
    dropbox_creds: dict[str, str],
    dropbox_sdk: Any,
    base: str,
    tmp_path: Path,
    size: int,
    grow: bool,
) -> None:
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"], chunk_size="4MiB")
    local = tmp_path / "growing.bin"
    local.write_bytes(os.urandom(size))
    with pytest.raises(OSError, match="during the upload") as info:
        fs.put_file(str(local), f"{base}/growing.bin", callback=ChangesTheFile(local, grow))
    message = str(info.value)
    assert str(local) in message
    assert ("grew" if grow else "ended after") in message
    assert "Nothing was committed" in message
    assert names_in(dropbox_sdk, base) == []


@pytest.mark.parametrize(("data", "size"), [(b"x" * 10, 20), (b"x" * 30, 20)])
def test_a_fileobj_of_another_size_than_announced_is_not_committed(
    dropbox_creds: dict[str, str], dropbox_sdk: Any, base: str, data: bytes, size: int
) -> None:
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"])
    with pytest.raises(OSError, match="during the upload"):
        fs.put_fileobj(io.BytesIO(data), f"{base}/obj.bin", size=size)
    assert names_in(dropbox_sdk, base) == []


# -- DVC's object layout only ---------------------------------------------------------------------


def test_an_fsspec_users_ab_slash_hex_file_reads_as_it_is(
    dropbox_creds: dict[str, str], dropbox_sdk: Any, base: str, tmp_path: Path
) -> None:
    """A bare `ab/<30 hex>` (DVC 2's object layout) outside any DVC remote is an fsspec user's
    file: its bytes need not have the md5 the name spells."""
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"])
    name = "ab" + "0" * 30
    path = f"{base}/{name[:2]}/{name[2:]}"
    data = b"not the md5 of its name\r\n"
    assert hashlib.md5(data).hexdigest() != name
    dropbox_sdk.files_upload(data, "/" + path)
    with fs.open(path, "rb") as f:
        assert f.read() == data
    fs.get_file(path, str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == data
    assert fs.cat_file(path) == data


LEGACY_DVC_FILE = """outs:
- md5: {md5}
  size: {size}
  path: data.bin
"""


def test_dvc_pull_still_checks_a_dvc2_layout_object(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any, base: str
) -> None:
    """The other side: below the remote DVC names, DVC 2's `ab/<30 hex>` objects (read by DVC 3
    for a legacy `.dvc` file) are still checked against their md5, so a changed one is caught."""
    repo = make_repo(tmp_path / "repo", cli_env)
    data = os.urandom(2000)
    md5 = hashlib.md5(data).hexdigest()
    (repo / "data.bin.dvc").write_text(LEGACY_DVC_FILE.format(md5=md5, size=len(data)))
    folder = f"{base}/remote"
    dvc(repo, cli_env, "remote", "add", "-d", "r", f"dropbox://{folder}")
    other = os.urandom(len(data))  # changed in Dropbox outside DVC
    dropbox_sdk.files_upload(other, f"/{folder}/{md5[:2]}/{md5[2:]}")

    proc = dvc(repo, cli_env, "pull", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "does not hold the DVC object its name says" in output, output
    assert not (repo / "data.bin").exists()
