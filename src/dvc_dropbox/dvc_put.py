"""Uploads of many files (`dvc push`): batches that fill, `-j` as the limit of requests in flight.

dvc-objects uploads a list of local files with `generic._put`: `jobs` threads, each calling
`put_file` and waiting in it until that file is committed. For Dropbox that ties the number of
files waiting for a commit to the number of requests in flight: a batch commit could hold at most
`jobs` entries (of Dropbox's 1000) and every commit stalled every upload. For Dropbox destinations
the `_put` hook (dvc_hooks) calls `push_many`, which runs the same list through
`transfer.pipeline.Pipeline` instead:

- `jobs` (`-j`, else the remote's `jobs` option) threads send bytes: at most that many upload
  requests in flight (S3's meaning of `-j`). The batch committer has its own one request on top;
- once a file's bytes are sent, its finish entry goes to the batch committer and the thread goes
  on with the next file. Up to `in_flight_limit` files (2 x batch_size: one batch committing while
  the next one fills) are under way at once; a large file also needs one of the memory slots for
  its chunk (transfer/uploads.py), as before;
- a file counts (the progress bar moves, DVC counts it as pushed) only when ITS commit succeeded;
  a file that failed goes to DVC's `on_error`, exactly as from DVC's own `_put`; with
  `batch_size 1` each file is still committed on its own, in its thread;
- while files wait for their commit, the bar says how many ("812 waiting for Dropbox to commit").

Other copies (a single file, `dvc.api`, fsspec's `put`) still use `put_file`, which blocks until
its commit.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import doctor
from .transfer import fatal

ErrorHandler = Callable[[str, str, BaseException], None]


def in_flight_limit(batch_size: int, jobs: int) -> int:
    """Files under way at once: two batches' worth (one committing, one filling), and never
    fewer than the uploads that may run at once."""
    return max(2 * batch_size, jobs)


class _WaitingStatus:
    """Says on DVC's progress bar how many files wait for their commit (in its description)."""

    def __init__(self, callback: Any):
        self.callback = callback
        self.desc: Optional[str] = None

    def __call__(self, waiting: int) -> None:
        bar = getattr(self.callback, "tqdm", None)
        if bar is None or getattr(bar, "disable", True):
            return
        try:
            if self.desc is None:
                self.desc = str(getattr(bar, "desc", "") or "")
            text = f"{waiting} files waiting for Dropbox to commit" if waiting else ""
            bar.set_description_str(f"{self.desc}: {text}" if text else self.desc, refresh=True)
        except Exception:  # a status must never fail a push
            return


def push_many(
    to_fs: Any,
    from_paths: list[str],
    to_paths: list[str],
    callback: Any,
    jobs: int,
    on_error: Optional[ErrorHandler],
) -> None:
    """Upload `from_paths` to `to_paths` of the DVC filesystem `to_fs` (see the docstring)."""
    from .transfer.pipeline import Pipeline, Steps

    fs = to_fs.fs
    transfers = fs.conn.transfers
    committer = transfers.committer
    limit = in_flight_limit(fs.settings.batch_size, jobs)

    def start(pair: tuple[str, str]) -> Steps[None]:
        from_path, to_path = pair
        # A transfer stopping at a cause every file meets (no space, revoked token) starts no
        # more files; the stop's handler keeps the `Skipped` quiet (transfer/fatal.py).
        fatal.check(to_fs)
        child = callback.branched(from_path, to_path)
        try:
            # The file's byte bar goes as soon as its bytes are sent (thousands may then wait).
            yield from fs.put_file_steps(from_path, to_path, callback=child, on_sent=child.close)
        finally:
            child.close()

    def finish(pair: tuple[str, str], result: Any, error: Optional[BaseException]) -> None:
        from_path, to_path = pair
        if error is None:
            doctor.PUSHES.uploaded(to_fs.root, to_fs.fs_args.get("path_root"), to_fs)
        else:
            doctor.PUSHES.upload_failed()
            if on_error is None or not isinstance(error, Exception):
                raise error  # as DVC's own `_put`: only Exceptions go to on_error
            on_error(from_path, to_path, error)
        callback.relative_update()

    pipeline = Pipeline(
        start,
        finish,
        workers=max(1, jobs),
        max_in_flight=max(limit, jobs),
        coming=transfers.expect if committer is not None else None,
        status=_WaitingStatus(callback) if committer is not None else None,
    )
    pipeline.run(zip(from_paths, to_paths))
