"""Issue 16: no door of the fsspec filesystem loses a file that is not its to lose.

Through the public fsspec API (`fsspec.filesystem("dropbox")`) on the session emulator, checked
through the SDK: `mv`, `cp_file` and `copy` onto a folder move or copy *into* it or raise
`IsADirectoryError`, never delete it; `get` into a new local folder makes it; `rmdir` keeps a file
put in the folder after its listing.
"""

from __future__ import annotations

import errno
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tests.helpers.emulator import EmulatorProcess

WAIT_S = 30.0


@pytest.fixture
def fs(dropbox_creds: dict[str, str]) -> Any:
    return fsspec.filesystem("dropbox", app_key=dropbox_creds["DROPBOX_APP_KEY"])


@pytest.fixture
def proj(dropbox_sdk: Any) -> str:
    """`proj/new.csv`, and `proj/archive`: a folder with two files."""
    name = f"no-loss/{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_upload(b"new", f"/{name}/new.csv")
    dropbox_sdk.files_upload(b"jan", f"/{name}/archive/jan.csv")
    dropbox_sdk.files_upload(b"feb", f"/{name}/archive/feb.csv")
    return name


def tree(dropbox_sdk: Any, folder: str) -> dict[str, bytes]:
    """Every file below `folder` (names relative to it, lower case) with its bytes, by the SDK."""
    out = {}
    result = dropbox_sdk.files_list_folder("/" + folder, recursive=True)
    entries = list(result.entries)
    while result.has_more:
        result = dropbox_sdk.files_list_folder_continue(result.cursor)
        entries.extend(result.entries)
    for md in entries:
        if hasattr(md, "content_hash"):
            _, resp = dropbox_sdk.files_download(md.path_lower)
            out[md.path_lower[len(folder) + 2 :]] = resp.content
    return out


ARCHIVE = {"archive/jan.csv": b"jan", "archive/feb.csv": b"feb"}


def test_mv_onto_a_folder_moves_into_it(fs: Any, dropbox_sdk: Any, proj: str) -> None:
    fs.mv(f"{proj}/new.csv", f"{proj}/archive")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "archive/new.csv": b"new"}
    # A trailing slash means a folder, made if need be.
    fs.mv(f"{proj}/archive/new.csv", f"{proj}/later/")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "later/new.csv": b"new"}


def test_mv_of_a_folder_onto_a_folder_moves_it_inside(
    fs: Any, dropbox_sdk: Any, proj: str
) -> None:
    dropbox_sdk.files_upload(b"q1", f"/{proj}/reports/q1.txt")
    fs.mv(f"{proj}/reports", f"dropbox://{proj}/archive")
    assert tree(dropbox_sdk, proj) == {
        **ARCHIVE,
        "new.csv": b"new",
        "archive/reports/q1.txt": b"q1",
    }


def test_mv_onto_a_folder_holding_a_folder_of_that_name_raises(
    fs: Any, dropbox_sdk: Any, proj: str
) -> None:
    dropbox_sdk.files_upload(b"inner", f"/{proj}/archive/new.csv/inner.txt")
    with pytest.raises(IsADirectoryError):
        fs.mv(f"{proj}/new.csv", f"{proj}/archive")
    assert tree(dropbox_sdk, proj) == {
        **ARCHIVE,
        "new.csv": b"new",
        "archive/new.csv/inner.txt": b"inner",
    }


def test_mv_onto_a_file_replaces_only_that_file(fs: Any, dropbox_sdk: Any, proj: str) -> None:
    dropbox_sdk.files_upload(b"old", f"/{proj}/archive/new.csv")
    fs.mv(f"{proj}/new.csv", f"{proj}/archive")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "archive/new.csv": b"new"}
    # A folder never replaces a file.
    dropbox_sdk.files_upload(b"note", f"/{proj}/note")
    with pytest.raises(FileExistsError):
        fs.mv(f"{proj}/archive", f"{proj}/note")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "archive/new.csv": b"new", "note": b"note"}


def test_mv_by_case_only_keeps_the_file(fs: Any, dropbox_sdk: Any, proj: str) -> None:
    """Dropbox refuses a move that only changes case (the target "exists": it is the source).
    Replacing that destination used to delete the source itself."""
    with pytest.raises(FileExistsError):
        fs.mv(f"{proj}/new.csv", f"{proj}/NEW.csv")
    with pytest.raises(FileExistsError):
        fs.mv(f"{proj}/archive", f"{proj}/Archive")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "new.csv": b"new"}


def test_cp_file_onto_a_folder_raises(fs: Any, dropbox_sdk: Any, proj: str) -> None:
    with pytest.raises(IsADirectoryError):
        fs.cp_file(f"{proj}/new.csv", f"{proj}/archive")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "new.csv": b"new"}
    fs.cp_file(f"{proj}/new.csv", f"{proj}/archive/jan.csv")  # a file is replaced
    assert tree(dropbox_sdk, proj) == {
        "archive/jan.csv": b"new",
        "archive/feb.csv": b"feb",
        "new.csv": b"new",
    }


def test_copy_onto_a_folder_copies_into_it(fs: Any, dropbox_sdk: Any, proj: str) -> None:
    fs.copy(f"{proj}/new.csv", f"{proj}/archive")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "new.csv": b"new", "archive/new.csv": b"new"}
    # Where the copy's name is a folder inside it, that folder is kept and the copy refused.
    dropbox_sdk.files_delete_v2(f"/{proj}/archive/new.csv")
    dropbox_sdk.files_upload(b"inner", f"/{proj}/archive/new.csv/inner.txt")
    with pytest.raises(IsADirectoryError):
        fs.copy(f"{proj}/new.csv", f"{proj}/archive")
    assert tree(dropbox_sdk, proj) == {
        **ARCHIVE,
        "new.csv": b"new",
        "archive/new.csv/inner.txt": b"inner",
    }


def test_get_into_a_new_local_folder_makes_it(fs: Any, proj: str, tmp_path: Path) -> None:
    fs.get(f"{proj}/new.csv", str(tmp_path / "newdir") + "/")
    assert (tmp_path / "newdir" / "new.csv").read_bytes() == b"new"
    fs.get(f"{proj}/archive/jan.csv", str(tmp_path / "a" / "b" / "jan.csv"))
    assert (tmp_path / "a" / "b" / "jan.csv").read_bytes() == b"jan"


def test_rmdir_keeps_a_file_put_in_the_folder_after_its_listing(
    fs: Any, dropbox_sdk: Any, proj: str, emulator: EmulatorProcess
) -> None:
    folder = f"{proj}/empty"
    dropbox_sdk.files_create_folder_v2("/" + folder)
    # rmdir's first write after its listing (a delete or a move) fails once with a 500: the
    # pacer waits a second or more before sending it again, and meanwhile another client puts
    # a file in the folder. Had the file come later, it would be in a new folder, not lost.
    emulator.fault(
        {"route": "files/delete_v2", "status": 500}, {"route": "files/move_v2", "status": 500}
    )
    failures: list[BaseException] = []

    def rmdir() -> None:
        try:
            fs.rmdir(folder)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=rmdir)
    try:
        worker.start()
        deadline = time.monotonic() + WAIT_S
        while len(emulator.faults()) == 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(emulator.faults()) == 1, "rmdir sent no delete or move"
        dropbox_sdk.files_upload(b"late", f"/{folder}/late.txt")
        worker.join(WAIT_S)
    finally:
        emulator.clear_faults()
    assert not worker.is_alive()
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "new.csv": b"new", "empty/late.txt": b"late"}
    assert len(failures) == 1 and isinstance(failures[0], OSError)
    assert failures[0].errno == errno.ENOTEMPTY


def test_rmdir_of_an_empty_folder_and_of_a_file(fs: Any, dropbox_sdk: Any, proj: str) -> None:
    dropbox_sdk.files_create_folder_v2(f"/{proj}/empty")
    fs.rmdir(f"{proj}/empty")
    assert fs.ls(proj, detail=False) == [f"{proj}/archive", f"{proj}/new.csv"]
    with pytest.raises(OSError) as info:
        fs.rmdir(f"{proj}/archive")
    assert info.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotADirectoryError):
        fs.rmdir(f"{proj}/new.csv")
    with pytest.raises(FileNotFoundError):
        fs.rmdir(f"{proj}/nothing")
    assert tree(dropbox_sdk, proj) == {**ARCHIVE, "new.csv": b"new"}
