"""The fsspec file objects on the emulator (issue 16, items 3 and 4): atomic writes through every
door, exclusive creation, and readers that stay on one revision.

Every door of a write must either commit all the bytes (a clean close) or leave what Dropbox holds
untouched, with no partial object. Checked through the public API and the SDK.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import fsspec
import pytest
from dropbox import files

from dvc_dropbox.fs import DropboxFS
from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.conftest import credential_env

OLD = b"city,people\nBern,134\n"


@pytest.fixture
def dbfs(dropbox_creds: dict[str, str]) -> DropboxFS:
    return DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"])


@pytest.fixture
def base(dropbox_sdk: Any) -> str:
    name = f"FileObjects/{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_create_folder_v2("/" + name)
    return name


@pytest.fixture
def table(dropbox_sdk: Any, base: str) -> Iterator[str]:
    """An existing `table.csv` holding OLD; the test checks it is still exactly that."""
    path = f"{base}/table.csv"
    dropbox_sdk.files_upload(OLD, "/" + path)
    yield path


def remote_bytes(sdk: Any, path: str) -> bytes:
    _, resp = sdk.files_download("/" + path)
    return bytes(resp.content)


def folder_names(sdk: Any, folder: str) -> list[str]:
    return sorted(e.name for e in sdk.files_list_folder("/" + folder).entries)


class Interrupted(Exception):
    pass


# -- the doors of a write that must not commit --------------------------------------------------


def fs_open_text(fs: DropboxFS, path: str) -> None:
    with fs.open(path, "w") as f:  # fsspec wraps the writer in io.TextIOWrapper
        f.write("city,people\nZurich,")
        raise Interrupted


def fsspec_open_binary(fs: DropboxFS, path: str) -> None:
    # fsspec.core.OpenFile.__exit__ calls close() with no exception info
    with fsspec.open(f"dropbox://{path}", "wb", app_key=fs.settings.app_key) as f:
        f.write(b"city,people\nZurich,")
        raise Interrupted


def fsspec_open_text(fs: DropboxFS, path: str) -> None:
    with fsspec.open(f"dropbox://{path}", "w", app_key=fs.settings.app_key) as f:
        f.write("city,people\nZurich,")
        raise Interrupted


def pandas_to_csv(fs: DropboxFS, path: str) -> None:
    pd = pytest.importorskip("pandas")

    class Bad:
        def __str__(self) -> str:
            raise Interrupted

    rows = [[f"city{i}", i] for i in range(5000)] + [[Bad(), 0]]
    frame = pd.DataFrame(rows, columns=["city", "people"])
    # Small chunks: the first thousands of rows are written to the file before the bad one.
    frame.to_csv(
        f"dropbox://{path}",
        index=False,
        chunksize=100,
        storage_options={"app_key": fs.settings.app_key},
    )


def closed_in_an_except_block(fs: DropboxFS, path: str) -> None:
    """A writer opened before the exception, closed by hand while it propagates (`finally`)."""
    f = fs.open(path, "wb")
    try:
        f.write(b"half")
        raise Interrupted
    finally:
        f.close()


@pytest.mark.parametrize(
    "door",
    [fs_open_text, fsspec_open_binary, fsspec_open_text, pandas_to_csv, closed_in_an_except_block],
)
def test_an_exception_in_a_write_leaves_the_old_content(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, table: str, door: Callable[[DropboxFS, str], None]
) -> None:
    with pytest.raises(Interrupted):
        door(dbfs, table)
    assert remote_bytes(dropbox_sdk, table) == OLD
    assert folder_names(dropbox_sdk, base) == ["table.csv"]  # no partial object beside it


def unclosed_binary(fs: DropboxFS, path: str) -> None:
    f = fs.open(path, "wb")
    f.write(b"half")


def unclosed_text(fs: DropboxFS, path: str) -> None:
    f = fs.open(path, "w")
    f.write("half")


def unclosed_fsspec_open(fs: DropboxFS, path: str) -> None:
    f = fsspec.open(f"dropbox://{path}", "w", app_key=fs.settings.app_key).open()
    f.write("half")


@pytest.mark.parametrize("door", [unclosed_binary, unclosed_text, unclosed_fsspec_open])
def test_a_garbage_collected_writer_commits_nothing(
    dbfs: DropboxFS, dropbox_sdk: Any, table: str, door: Callable[[DropboxFS, str], None]
) -> None:
    door(dbfs, table)  # the writer is unreachable once this returns
    gc.collect()
    assert remote_bytes(dropbox_sdk, table) == OLD


def test_only_a_clean_close_commits_also_inside_an_except_block(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, table: str
) -> None:
    """A new file is not created by a failed write; writes that end well commit, even when the
    writer lives inside an `except:` block (the exception there is older than the writer)."""
    with pytest.raises(Interrupted):
        fsspec_open_text(dbfs, f"{base}/new.csv")
    assert folder_names(dropbox_sdk, base) == ["table.csv"]
    try:
        raise Interrupted
    except Interrupted:
        with fsspec.open(f"dropbox://{table}", "w", app_key=dbfs.settings.app_key) as f:
            f.write("new")
        with dbfs.open(f"{base}/b.bin", "wb") as g:
            g.write(b"bin")
    assert remote_bytes(dropbox_sdk, table) == b"new"
    assert remote_bytes(dropbox_sdk, f"{base}/b.bin") == b"bin"
    h = dbfs.open(f"{base}/c.txt", "w")
    h.write("text")
    h.close()
    assert remote_bytes(dropbox_sdk, f"{base}/c.txt") == b"text"


WRITER_SCRIPT = """
import sys, time, fsspec
with fsspec.open(sys.argv[1], "w") as f:
    f.write("city,people\\nZurich,")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
    f.write("402\\n")
"""


def test_an_interrupted_process_commits_nothing(
    tmp_path: Path,
    emulator: EmulatorProcess,
    dropbox_token: dict[str, Any],
    dropbox_sdk: Any,
    base: str,
    table: str,
) -> None:
    """Ctrl-C in the middle of a `with fsspec.open(...)` block (SIGKILL sends nothing either)."""
    env = {**os.environ, **credential_env(emulator, dropbox_token)}
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER_SCRIPT))
    proc = subprocess.Popen(
        [sys.executable, str(script), f"dropbox://{table}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode != 0
    assert remote_bytes(dropbox_sdk, table) == OLD
    assert folder_names(dropbox_sdk, base) == ["table.csv"]


# -- exclusive creation -------------------------------------------------------------------------


def test_x_mode_and_create_refuse_an_existing_file(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, table: str
) -> None:
    with pytest.raises(FileExistsError):
        dbfs.open(table, "xb")
    with pytest.raises(FileExistsError):
        dbfs.pipe_file(table, b"other", mode="create")
    with pytest.raises(FileExistsError):
        dbfs.pipe_file(table, OLD, mode="create")  # the same bytes are something there too
    assert remote_bytes(dropbox_sdk, table) == OLD
    dbfs.pipe_file(f"{base}/fresh.bin", b"fresh", mode="create")
    with dbfs.open(f"{base}/x.bin", "xb") as f:
        f.write(b"exclusive")
    assert remote_bytes(dropbox_sdk, f"{base}/fresh.bin") == b"fresh"
    assert remote_bytes(dropbox_sdk, f"{base}/x.bin") == b"exclusive"
    dbfs.pipe_file(table, b"replaced", mode="overwrite")  # overwrite keeps replacing
    assert remote_bytes(dropbox_sdk, table) == b"replaced"


def test_x_mode_refuses_a_file_created_while_it_was_open(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str
) -> None:
    path = f"{base}/race.bin"
    f = dbfs.open(path, "xb")
    f.write(b"mine")
    dropbox_sdk.files_upload(b"theirs", "/" + path)
    with pytest.raises(FileExistsError):
        f.close()
    assert remote_bytes(dropbox_sdk, path) == b"theirs"
    assert folder_names(dropbox_sdk, base) == ["race.bin"]  # no "race (1).bin"


@pytest.mark.parametrize("batch_size", [1, 100])
def test_put_file_create_refuses_to_overwrite_on_both_commit_paths(
    dropbox_creds: dict[str, str], dropbox_sdk: Any, base: str, batch_size: int, tmp_path: Path
) -> None:
    """fsspec's `put_file(..., mode="create")`: a big file (a session) through the batch
    committer and through its own finish (`batch_size 1`) refuses to overwrite too."""
    fs = DropboxFS(
        app_key=dropbox_creds["DROPBOX_APP_KEY"], batch_size=batch_size, chunk_size="4MiB"
    )
    path = f"{base}/big.bin"
    dropbox_sdk.files_upload(b"old", "/" + path)
    local = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024)
    local.write_bytes(data)
    with pytest.raises(FileExistsError):
        fs.put_file(str(local), path, mode="create")
    assert remote_bytes(dropbox_sdk, path) == b"old"
    fs.put_file(str(local), f"{base}/new.bin", mode="create")
    assert remote_bytes(dropbox_sdk, f"{base}/new.bin") == data


# -- one revision per reader --------------------------------------------------------------------


def test_a_reader_reads_the_revision_it_opened(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str
) -> None:
    path = f"{base}/versions.bin"
    first = b"A" * 3000
    dropbox_sdk.files_upload(first, "/" + path)
    with dbfs.open(path, "rb", block_size=1000) as f:
        assert f.read(1000) == first[:1000]
        dropbox_sdk.files_upload(b"B" * 3000, "/" + path, mode=files.WriteMode.overwrite)
        f.seek(2000)  # a seek reopens the download
        assert f.read(1000) == first[2000:]
        f.seek(1000)
        assert f.read(1000) == first[1000:2000]
    with dbfs.open(path, "rb") as f:  # a new reader sees the new version
        assert f.read() == b"B" * 3000


def test_a_reader_reopened_after_a_dropped_connection_reads_its_revision(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, emulator: EmulatorProcess
) -> None:
    """The file is replaced while open; the reader's next download (after a seek) is cut off
    and reopened by the pacer: every byte still comes from the revision it opened."""
    path = f"{base}/dropped.bin"
    kib = 1024
    first = os.urandom(4096 * kib)
    dropbox_sdk.files_upload(first, "/" + path)
    emulator.clear_faults()
    try:
        with dbfs.open(path, "rb", block_size=64 * kib) as f:
            got = f.read(64 * kib)
            dropbox_sdk.files_upload(
                os.urandom(len(first)), "/" + path, mode=files.WriteMode.overwrite
            )
            emulator.fault(route="files/download", drop_connection=True, after_bytes=256 * kib)
            f.seek(1024 * kib)
            for _ in range(100):  # bounded: 3 MiB in 64 KiB reads is 48
                chunk = f.read(64 * kib)
                if not chunk:
                    break
                got += chunk
        assert emulator.faults() == []  # a download was cut off (the fault was used)
    finally:
        emulator.clear_faults()
    assert got == first[: 64 * kib] + first[1024 * kib :]
