"""`files/download_zip` through the official SDK against the emulator: a folder as a zip under
its own name, `DownloadZipResult` in the `Dropbox-API-Result` header, and its errors. The size
and count limits (20 GB, 4 GB, 10,000 entries) are tested on their logic in
tests/unit/emulator/test_download_zip.py."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from typing import Any

import pytest
from dropbox import common, files
from dropbox.exceptions import ApiError

from tests.helpers.emulator import EmulatorProcess
from tests.integration.emulator.test_lost_answers import assert_cut

ROUTE = "files/download_zip"


@pytest.fixture
def folder(sdk_client: Any) -> tuple[str, dict[str, bytes]]:
    """A folder with files at two levels, an empty subfolder and one large file."""
    name = f"Zip-{uuid.uuid4().hex[:8]}"
    contents = {
        "a.txt": b"alpha\n",
        "Sub/b.bin": bytes(range(256)) * 4,
        "Sub/Deeper/c.txt": b"",
        "large.bin": bytes(range(251)) * 2000,  # ~490 KiB: a blob file, not an inline one
    }
    for rel, data in contents.items():
        sdk_client.files_upload(data, f"/zips/{name}/{rel}")
    sdk_client.files_create_folder_v2(f"/zips/{name}/Empty")
    return f"/zips/{name}", contents


def test_round_trip(
    emulator: EmulatorProcess, sdk_client: Any, folder: tuple[str, dict[str, bytes]]
) -> None:
    path, contents = folder
    name = path.rsplit("/", 1)[1]
    result, resp = sdk_client.files_download_zip(path.lower())  # any casing finds it
    with resp:
        body = resp.content
    assert isinstance(result, files.DownloadZipResult)
    assert result.metadata.name == name and result.metadata.path_display == path
    assert result.metadata.id == sdk_client.files_get_metadata(path).id
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = set(archive.namelist())
        assert names == {
            f"{name}/",
            f"{name}/Empty/",
            f"{name}/Sub/",
            f"{name}/Sub/Deeper/",
            *(f"{name}/{rel}" for rel in contents),
        }
        for rel, data in contents.items():
            assert archive.read(f"{name}/{rel}") == data
        assert archive.testzip() is None
    assert emulator.data_dir is not None
    # Deleted once served (right after its last byte is sent: a bounded wait for that).
    deadline = time.monotonic() + 10
    while list((emulator.data_dir / "tmp").glob("zip-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((emulator.data_dir / "tmp").glob("zip-*"))


def test_subfolder_is_the_top_directory(
    sdk_client: Any, folder: tuple[str, dict[str, bytes]]
) -> None:
    path, contents = folder
    _, resp = sdk_client.files_download_zip(f"{path}/Sub")
    with resp, zipfile.ZipFile(io.BytesIO(resp.content)) as archive:
        assert sorted(archive.namelist()) == [
            "Sub/",
            "Sub/Deeper/",
            "Sub/Deeper/c.txt",
            "Sub/b.bin",
        ]
        assert archive.read("Sub/b.bin") == contents["Sub/b.bin"]


def test_a_file_or_nothing_is_refused(
    sdk_client: Any, folder: tuple[str, dict[str, bytes]]
) -> None:
    path, _ = folder
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_download_zip(f"{path}/a.txt")  # "The input cannot be a single file"
    assert excinfo.value.error.get_path().is_not_folder()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_download_zip(f"{path}/missing")
    assert excinfo.value.error.get_path().is_not_found()


def test_lost_answer(
    emulator: EmulatorProcess, sdk_client: Any, folder: tuple[str, dict[str, bytes]]
) -> None:
    path, _ = folder
    emulator.fault(route=ROUTE, drop_connection="after_processing")
    try:
        with pytest.raises(Exception) as excinfo:
            sdk_client.files_download_zip(path)
        assert_cut(excinfo)
    finally:
        emulator.clear_faults()
    _, resp = sdk_client.files_download_zip(path)  # served again, in full
    with resp, zipfile.ZipFile(io.BytesIO(resp.content)) as archive:
        assert archive.testzip() is None


def test_through_the_team_root(sdk_client: Any, folder: tuple[str, dict[str, bytes]]) -> None:
    """Paths as the caller's path root shows them: a home folder through the team root, and a
    mount point itself (the mounted namespace's content under the mount's name)."""
    path, contents = folder
    info = sdk_client.users_get_current_account().root_info
    root = sdk_client.with_path_root(common.PathRoot.root(info.root_namespace_id))
    name = path.rsplit("/", 1)[1]
    result, resp = root.files_download_zip(f"{info.home_path}{path}")
    with resp, zipfile.ZipFile(io.BytesIO(resp.content)) as archive:
        assert archive.read(f"{name}/a.txt") == contents["a.txt"]
    assert result.metadata.path_display == f"{info.home_path}{path}"
    # The team folder (not the home mount: the session emulator's home holds every test's
    # files) is a namespace of its own, mounted at /Team Folder of the team root.
    mine = f"/Team Folder/{name}.txt"
    root.files_upload(b"team data", mine)
    result, resp = root.files_download_zip("/Team Folder")
    with resp, zipfile.ZipFile(io.BytesIO(resp.content)) as archive:
        assert archive.read(f"Team Folder/{name}.txt") == b"team data"
        assert "Team Folder/" in archive.namelist()
    assert result.metadata.name == "Team Folder"
    root.files_delete_v2(mine)
