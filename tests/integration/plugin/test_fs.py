"""`DropboxFS` (the fsspec filesystem) against the emulator, checked through the SDK."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from dropbox import files
from fsspec import AbstractFileSystem
from fsspec.callbacks import Callback

from dvc_dropbox.errors import DropboxAuthError, DropboxIntegrityError, DropboxRemoteError
from dvc_dropbox.fs import DropboxFS
from tests.helpers.emulator import EmulatorProcess


@pytest.fixture
def dbfs(dropbox_creds: dict[str, str]) -> DropboxFS:
    return DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"])


@pytest.fixture
def base(dropbox_sdk: Any) -> str:
    """A fresh folder, spelled with capitals on the server."""
    name = f"FS-Test/{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_create_folder_v2("/" + name)
    return name


@pytest.fixture
def tree(dropbox_sdk: Any, base: str) -> str:
    for path, data in {
        "Top.txt": b"top",
        "dir/a.txt": b"aaaa",
        "dir/Sub/b.txt": b"bb",
        "dir/Sub/deeper/c.txt": b"c",
    }.items():
        dropbox_sdk.files_upload(data, f"/{base}/{path}")
    dropbox_sdk.files_create_folder_v2(f"/{base}/dir/empty")
    return base


def requests_made(emulator: EmulatorProcess, before: dict[str, int]) -> dict[str, int]:
    after = emulator.stats()["requests"]
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_info(dbfs: DropboxFS, dropbox_sdk: Any, tree: str) -> None:
    requested = tree.lower() + "/TOP.TXT"  # Dropbox is case-insensitive
    entry = dbfs.info(requested)
    md = dropbox_sdk.files_get_metadata(f"/{tree}/Top.txt")
    assert entry["name"] == requested  # the caller's spelling, not the server's
    assert entry["type"] == "file"
    assert entry["size"] == 3
    assert entry["checksum"] == md.content_hash
    assert entry["rev"] == md.rev
    assert entry["server_modified"] == md.server_modified
    assert "version_id" not in entry
    assert dbfs.checksum(requested) == md.content_hash
    assert dbfs.modified(requested) == md.server_modified
    assert dbfs.info(f"dropbox://{tree}/dir") == {
        "name": f"{tree}/dir",
        "size": 0,
        "type": "directory",
    }
    assert dbfs.info("")["type"] == "directory"  # the root is synthesized
    with pytest.raises(FileNotFoundError):
        dbfs.info(f"{tree}/missing")
    with pytest.raises(FileNotFoundError):
        dbfs.info(f"{tree}/Top.txt/below-a-file")


def test_exists_isdir_isfile(dbfs: DropboxFS, tree: str) -> None:
    assert dbfs.exists(f"{tree}/dir") and dbfs.isdir(f"{tree}/dir")
    assert dbfs.isfile(f"{tree}/Top.txt") and not dbfs.isdir(f"{tree}/Top.txt")
    assert not dbfs.exists(f"{tree}/nope")
    assert not dbfs.isdir(f"{tree}/nope") and not dbfs.isfile(f"{tree}/nope")


def test_ls(dbfs: DropboxFS, tree: str) -> None:
    prefix = tree.lower()
    assert dbfs.ls(f"{prefix}/dir", detail=False) == [
        f"{prefix}/dir/Sub",
        f"{prefix}/dir/a.txt",
        f"{prefix}/dir/empty",
    ]
    assert dbfs.ls(f"{tree}/Top.txt", detail=False) == [f"{tree}/Top.txt"]
    with pytest.raises(FileNotFoundError):
        dbfs.ls(f"{tree}/nope")


def test_find_is_one_recursive_listing(
    dbfs: DropboxFS, tree: str, emulator: EmulatorProcess
) -> None:
    dbfs.connect()
    before = emulator.stats()["requests"]
    found = dbfs.find(tree)
    assert requests_made(emulator, before) == {"files/list_folder": 1}
    assert found == [
        f"{tree}/Top.txt",
        f"{tree}/dir/Sub/b.txt",
        f"{tree}/dir/Sub/deeper/c.txt",
        f"{tree}/dir/a.txt",
    ]


@pytest.mark.parametrize("maxdepth", [None, 1, 2, 3])
@pytest.mark.parametrize("withdirs", [False, True])
def test_find_and_walk_match_fsspec_semantics(
    dbfs: DropboxFS, tree: str, maxdepth: Any, withdirs: bool
) -> None:
    # fsspec's generic implementations (one ls per folder) are the reference.
    expected = AbstractFileSystem.find(
        dbfs, tree, maxdepth=maxdepth, withdirs=withdirs, detail=True
    )
    assert dbfs.find(tree, maxdepth=maxdepth, withdirs=withdirs, detail=True) == expected
    reference = list(AbstractFileSystem.walk(dbfs, tree, maxdepth=maxdepth, detail=True))
    assert list(dbfs.walk(tree, maxdepth=maxdepth, detail=True)) == reference
    reference = list(AbstractFileSystem.walk(dbfs, tree, maxdepth=maxdepth, topdown=False))
    assert list(dbfs.walk(tree, maxdepth=maxdepth, topdown=False)) == reference


def test_find_of_a_file_and_of_nothing(dbfs: DropboxFS, tree: str) -> None:
    assert dbfs.find(f"{tree}/Top.txt") == [f"{tree}/Top.txt"]
    assert dbfs.find(f"{tree}/nope") == []
    assert list(dbfs.walk(f"{tree}/nope")) == []


def test_open_read_ranges_and_text(dbfs: DropboxFS, dropbox_sdk: Any, base: str) -> None:
    data = bytes(range(256)) * 1000
    dropbox_sdk.files_upload(data, f"/{base}/bytes.bin")
    with dbfs.open(f"{base}/bytes.bin", "rb") as f:
        assert f.read(10) == data[:10]
        f.seek(1000)
        assert f.read(5) == data[1000:1005]
        f.seek(-3, io.SEEK_END)
        assert f.read() == data[-3:]
        f.seek(0)
        assert f.read() == data
    assert dbfs.cat_file(f"{base}/bytes.bin", start=10, end=20) == data[10:20]
    assert dbfs.cat_file(f"{base}/bytes.bin", start=-4) == data[-4:]
    assert dbfs.cat_file(f"{base}/bytes.bin", start=5, end=5) == b""
    dropbox_sdk.files_upload("héllo\nworld\n".encode(), f"/{base}/text.txt")
    with dbfs.open(f"{base}/text.txt", "r", encoding="utf-8") as f:
        assert f.readlines() == ["héllo\n", "world\n"]
    with pytest.raises(IsADirectoryError):
        dbfs.open(base, "rb")
    with pytest.raises(FileNotFoundError):
        dbfs.open(f"{base}/nope", "rb")


def test_open_read_of_corrupt_bytes_is_an_integrity_error(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, emulator: EmulatorProcess
) -> None:
    """A whole-file read whose bytes do not match content_hash fails as such, not as a
    dropped connection to be re-read (DVC reads .dir objects this way)."""
    data = b"x" * 5000
    dropbox_sdk.files_upload(data, f"/{base}/corrupt.bin")
    emulator.control("POST", "faults", {"route": "files/download", "corrupt_body": True})
    try:
        with pytest.raises(DropboxIntegrityError), dbfs.open(f"{base}/corrupt.bin", "rb") as f:
            f.read()
    finally:
        emulator.control("DELETE", "faults")


def test_open_write(dbfs: DropboxFS, dropbox_sdk: Any, base: str) -> None:
    with dbfs.open(f"{base}/new/w.bin", "wb") as f:
        f.write(b"abc")
        f.write(b"def")
    _, resp = dropbox_sdk.files_download(f"/{base}/new/w.bin")
    assert resp.content == b"abcdef"
    with pytest.raises(RuntimeError), dbfs.open(f"{base}/new/never.bin", "wb") as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert not dbfs.exists(f"{base}/new/never.bin")  # discarded, not half-uploaded


class Recorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[Any] = []
        self.total = 0

    def set_size(self, size: Any) -> None:
        self.sizes.append(size)

    def relative_update(self, inc: int = 1) -> None:
        self.total += inc


def test_put_and_get_file_report_bytes(dbfs: DropboxFS, base: str, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100_000)
    up = Recorder()
    dbfs.put_file(str(src), f"{base}/p/src.bin", callback=up)
    assert up.sizes[-1] == 100_000 and up.total == 100_000
    down = Recorder()
    dbfs.get_file(f"{base}/p/src.bin", str(tmp_path / "back.bin"), callback=down)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert down.total == 100_000
    dbfs.get_file(f"{base}/p", str(tmp_path / "a-dir"))  # a folder becomes a local folder
    assert (tmp_path / "a-dir").is_dir()


def test_copy_and_move(dbfs: DropboxFS, dropbox_sdk: Any, base: str) -> None:
    dbfs.pipe_file(f"{base}/one.txt", b"one")
    dbfs.cp_file(f"{base}/one.txt", f"{base}/two.txt")
    dbfs.cp_file(f"{base}/one.txt", f"{base}/two.txt")  # identical destination: fine
    dbfs.pipe_file(f"{base}/other.txt", b"other")
    dbfs.cp_file(f"{base}/other.txt", f"{base}/two.txt")  # different destination: replaced
    assert dbfs.cat_file(f"{base}/two.txt") == b"other"
    dbfs.mv(f"{base}/two.txt", f"{base}/three.txt")
    assert not dbfs.exists(f"{base}/two.txt")
    assert dbfs.cat_file(f"{base}/three.txt") == b"other"
    dbfs.mv(f"{base}/one.txt", f"{base}/three.txt")  # replaces
    assert dbfs.cat_file(f"{base}/three.txt") == b"one"


def test_rm_many_is_one_delete_batch(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, emulator: EmulatorProcess
) -> None:
    paths = [f"{base}/rm/{i:02d}.txt" for i in range(30)]
    for i, path in enumerate(paths):
        dropbox_sdk.files_upload(str(i).encode(), "/" + path)
    before = emulator.stats()["requests"]
    dbfs.rm([*paths, f"{base}/rm/never-existed.txt"])
    made = requests_made(emulator, before)
    assert made.get("files/delete_batch") == 1
    assert "files/delete_v2" not in made
    assert dbfs.find(f"{base}/rm") == []
    with pytest.raises(FileNotFoundError):
        dbfs.rm_file(f"{base}/rm/00.txt")
    with pytest.raises(DropboxRemoteError, match="refusing"):
        dbfs.rm("")
    dbfs.pipe_file(f"{base}/keep/k.txt", b"k")
    with pytest.raises(IsADirectoryError):
        dbfs.rm(f"{base}/keep")
    dbfs.rm(f"{base}/keep", recursive=True)
    assert not dbfs.exists(f"{base}/keep")


def test_rm_batches_respect_batch_size(
    dropbox_creds: dict[str, str], dropbox_sdk: Any, base: str, emulator: EmulatorProcess
) -> None:
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"], batch_size=4)
    paths = [f"{base}/b/{i}.txt" for i in range(10)]
    for path in paths:
        dropbox_sdk.files_upload(path.encode(), "/" + path)
    fs.connect()
    before = emulator.stats()["requests"]
    fs.rm(paths)
    assert requests_made(emulator, before).get("files/delete_batch") == 3
    assert fs.find(f"{base}/b") == []


def test_mkdir_and_cheap_makedirs(dbfs: DropboxFS, base: str, emulator: EmulatorProcess) -> None:
    dbfs.mkdir(f"{base}/made")
    dbfs.mkdir(f"{base}/made")  # exists: fine
    assert dbfs.isdir(f"{base}/made")
    before = emulator.stats()["requests"]
    dbfs.makedirs(f"{base}/x/y/z", exist_ok=True)
    assert requests_made(emulator, before) == {}
    dbfs.pipe_file(f"{base}/file", b"f")
    with pytest.raises(FileExistsError):
        dbfs.mkdir(f"{base}/file")


def test_rejected_token_is_an_error_not_false(
    emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", "rejected-" + uuid.uuid4().hex)
    monkeypatch.delenv("DROPBOX_REFRESH_TOKEN", raising=False)
    fs = DropboxFS()
    with pytest.raises(DropboxAuthError):
        fs.exists("anything")


def test_entries_are_files_or_folders(dbfs: DropboxFS, tree: str, dropbox_sdk: Any) -> None:
    # Deleted entries never show up as files (list_folder can report them).
    dropbox_sdk.files_delete_v2(f"/{tree}/dir/a.txt")
    assert f"{tree}/dir/a.txt" not in dbfs.find(tree)
    assert isinstance(dropbox_sdk.files_get_metadata(f"/{tree}/dir/Sub"), files.FolderMetadata)


def test_revisions(dropbox_creds: dict[str, str], dropbox_sdk: Any, base: str) -> None:
    fs = DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"], version_aware=True)
    first = dropbox_sdk.files_upload(b"first", f"/{base}/v.txt")
    second = dropbox_sdk.files_upload(b"second!", f"/{base}/v.txt", mode=files.WriteMode.overwrite)
    assert fs.info(f"{base}/v.txt")["version_id"] == second.rev
    old = fs.info(f"{base}/v.txt?rev={first.rev}")
    assert (old["name"], old["size"], old["version_id"]) == (f"{base}/v.txt", 5, first.rev)
    assert fs.cat_file(f"{base}/v.txt?rev={first.rev}") == b"first"
    with fs.open(f"{base}/v.txt?rev={first.rev}", "rb") as f:
        assert f.read() == b"first"
    assert fs.ls(base, detail=False, versions=True) == [f"{base}/v.txt?rev={second.rev}"]
    assert not fs.exists(f"{base}/v.txt?rev=0123456789abcdef")
