"""Folders as zip files (`files/download_zip`): Dropbox's limits, and the archive itself.

Limits, from the SDK's docstring of `files_download_zip`: "The folder must be less than 20 GB in
size and any single file within must be less than 4 GB in size. The resulting zip must have
fewer than 10,000 total file and folder entries, including the top level folder." GB as written
(10^9 bytes: below 2^32, so the harsher reading). `DownloadZipError` names the answers:
`too_large` "The folder or a file is too large to download", `too_many_files` "The folder has
too many files to download".
"""

from __future__ import annotations

import dataclasses
import secrets
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from dropbox_emulator.state.blobs import Blobs
from dropbox_emulator.state.tree import Entry, parse_time

_COPY_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ZipLimits:
    """Each bound is exclusive ("less than", "fewer than")."""

    folder_bytes: int = 20 * 10**9
    file_bytes: int = 4 * 10**9
    entries: int = 10_000


DROPBOX_ZIP_LIMITS = ZipLimits()


def zip_problem(entries: Sequence[Entry], limits: ZipLimits = DROPBOX_ZIP_LIMITS) -> Optional[str]:
    """The DownloadZipError tag `entries` (the folder itself and everything below it) must
    answer, or None. Dropbox does not say which wins when both apply: sizes are checked first
    (a folder of huge files is refused before anything is counted)."""
    sizes = [entry.size or 0 for entry in entries if entry.kind == "file"]
    if any(size >= limits.file_bytes for size in sizes) or sum(sizes) >= limits.folder_bytes:
        return "too_large"
    if len(entries) >= limits.entries:
        return "too_many_files"
    return None


def write_zip(top: Entry, entries: Sequence[Entry], blobs: Blobs, tmp_dir: Path) -> Path:
    """A zip file in `tmp_dir` (the caller deletes it once served) holding `entries` (`top`
    and the rows below it, their paths as the caller sees them) under the
    folder's own name as the top directory (`<name>/`, `<name>/a.txt`, `<name>/sub/`, ...),
    folders as directory entries: the "top level folder" the docstring counts is an entry of
    the zip. Contents are stored, not deflated; how Dropbox compresses is not documented and a
    zip reader takes either. Streamed block by block: memory does not grow with the files."""
    dest = tmp_dir / f"zip-{secrets.token_hex(12)}"
    prefix_length = len(top.path_display)
    try:
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for entry in entries:
                name = top.name + entry.path_display[prefix_length:]
                if entry.kind == "folder":
                    archive.writestr(zipfile.ZipInfo(name + "/"), b"")
                    continue
                info = zipfile.ZipInfo(name, _zip_time(entry))
                info.file_size = entry.size or 0
                assert entry.content_hash is not None
                source = blobs.source(entry.content_hash)
                with archive.open(info, "w", force_zip64=info.file_size >= 2**31) as out:
                    if isinstance(source, bytes):
                        out.write(source)
                        continue
                    with open(source, "rb") as data:
                        while chunk := data.read(_COPY_CHUNK):
                            out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def _zip_time(entry: Entry) -> tuple[int, int, int, int, int, int]:
    """The file's client_modified as the zip's date (zip dates start in 1980)."""
    stamp = entry.client_modified or entry.server_modified
    if stamp is None:
        return (1980, 1, 1, 0, 0, 0)
    when = parse_time(stamp)
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)
