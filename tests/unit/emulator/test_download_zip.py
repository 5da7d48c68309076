"""download_zip's limits on their logic (Dropbox's bounds are 20 GB, 4 GB and 10,000 entries,
too big to reach in a test): `state.archive.zip_problem` with small limits, and the handler's
answers with the module's limits lowered."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from dropbox import files

from dropbox_emulator.handlers import files as file_routes
from dropbox_emulator.handlers.contract import RouteError
from dropbox_emulator.state.archive import DROPBOX_ZIP_LIMITS, ZipLimits, zip_problem
from dropbox_emulator.state.tree import Entry
from tests.unit.emulator.handler_calls import Harness

SMALL = ZipLimits(folder_bytes=100, file_bytes=40, entries=5)


def _folder(*sizes: int) -> list[Entry]:
    top = [Entry("ns", "/f", "/f", "folder")]
    return top + [
        Entry("ns", f"/f/{i}", f"/f/{i}", "file", size=size) for i, size in enumerate(sizes)
    ]


def test_dropbox_limits_as_documented() -> None:
    assert ZipLimits(20 * 10**9, 4 * 10**9, 10_000) == DROPBOX_ZIP_LIMITS


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ((39, 39), None),
        ((40,), "too_large"),  # a single file must be *less than* the bound
        ((39, 39, 22), "too_large"),  # the folder: 100 bytes is not less than 100
        ((39, 39, 21), None),
        ((1, 1, 1, 1), "too_many_files"),  # 5 entries with the top folder: not fewer than 5
        ((1, 1, 1), None),
        ((1, 1, 1, 40), "too_large"),  # both: sizes first
    ],
)
def test_zip_problem(sizes: tuple[int, ...], expected: str) -> None:
    assert zip_problem(_folder(*sizes), SMALL) == expected


def test_folders_count_as_entries() -> None:
    entries = _folder(1) + [Entry("ns", f"/f/d{i}", f"/f/d{i}", "folder") for i in range(3)]
    assert zip_problem(entries, SMALL) == "too_many_files"


def test_handler_answers_the_union_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(tmp_path / "d")
    for i, size in enumerate((10, 30)):
        harness.call("files/upload", files.UploadArg(path=f"/f/{i}.bin"), b"x" * size)
    result = harness.call("files/download_zip", files.DownloadZipArg(path="/f"))
    with zipfile.ZipFile(io.BytesIO(Path(result.blob).read_bytes())) as archive:
        assert sorted(archive.namelist()) == ["f/", "f/0.bin", "f/1.bin"]
    assert result.temporary and result.metadata.metadata.name == "f"
    for limits, tag in (
        (ZipLimits(folder_bytes=40, file_bytes=100, entries=100), "too_large"),
        (ZipLimits(folder_bytes=100, file_bytes=30, entries=100), "too_large"),
        (ZipLimits(folder_bytes=100, file_bytes=100, entries=3), "too_many_files"),
    ):
        monkeypatch.setattr(file_routes, "ZIP_LIMITS", limits)
        with pytest.raises(RouteError) as excinfo:
            harness.call("files/download_zip", files.DownloadZipArg(path="/f"))
        assert excinfo.value.error == files.DownloadZipError(tag)
