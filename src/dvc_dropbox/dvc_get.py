"""Downloads of many files (`dvc pull`/`fetch`) that fail one file at a time.

dvc-objects' `generic._get` downloads each file into a temporary name it makes (`as_atomic`) and
moves that into place when `get_file` returns, also when it handed the error to `on_error` (the
per-file error path of push/pull/fetch): the move of a file that was never written then fails
with ENOENT and ends the whole run in "unexpected error". `DropboxFS.get_file` is already atomic
(its own temporary file, verified, then renamed into place), so for this filesystem the download
goes straight to its target and a failed file is only reported, leaving nothing behind
(`get_many`, which the `_get` hook calls for Dropbox sources: dvc_hooks).

A failure every file would meet (revoked credentials, a full local disk) stops the download
(transfer/fatal.py): no new file starts, and one error with the fix ends it.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from .transfer import fatal

ErrorHandler = Callable[[str, str, BaseException], None]


def get_many(
    from_fs: Any,
    from_paths: list[str],
    to_paths: list[str],
    callback: Any,
    batch_size: Optional[int],
    on_error: Optional[ErrorHandler],
) -> None:
    """Download `from_paths` of the DVC filesystem `from_fs` to the local `to_paths`."""
    from dvc_objects.executors import ThreadPoolExecutor

    with fatal.stopping(from_fs, fatal.DOWNLOAD) as stop:

        def get_one(from_path: str, to_path: str) -> None:
            if stop.skip():
                return
            try:
                os.makedirs(os.path.dirname(os.path.abspath(to_path)), exist_ok=True)
                with callback.branched(from_path, to_path) as child:
                    from_fs.get_file(from_path, to_path, callback=child)
            except Exception as exc:
                if stop.failed(exc):
                    return
                if on_error is None:
                    raise
                on_error(from_path, to_path, exc)

        if len(from_paths) == 1:
            get_one(from_paths[0], to_paths[0])
            callback.relative_update()
            return
        workers = download_workers(batch_size, from_fs.jobs)
        with ThreadPoolExecutor(max_workers=workers, cancel_on_error=True) as pool:
            list(callback.wrap(pool.imap_unordered(get_one, from_paths, to_paths)))


def download_workers(batch_size: Optional[int], remote_jobs: int) -> int:
    """Downloads at once from Dropbox: `-j`, else the remote's `jobs`.

    dvc-data sizes a transfer by its *destination* when no `-j` is given (`jobs or
    dest.fs.jobs`), so a pull gets the local cache's default, 4 x CPUs (8 on 2 cores): 2,000
    small files took 22 s where 64 requests in flight take a few. That default is taken to mean
    "no -j" (a user who passes exactly it gets the remote's `jobs`; lower the remote's `jobs`
    option to download with fewer requests in flight).
    """
    from dvc_objects.fs.base import FileSystem

    if not batch_size or batch_size == FileSystem._JOBS:
        return remote_jobs
    return batch_size
