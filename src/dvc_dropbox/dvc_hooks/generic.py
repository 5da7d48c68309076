"""The wrappers of dvc-objects' `generic` copies, each Dropbox's way only where Dropbox is a side.

- `transfer` (local <-> remote, the entry of push, pull, fetch and checkout): towards Dropbox,
  the whole list goes to `_put` at once. DVC first tries to link each file (reflink), one file at
  a time until a link fails; a link to Dropbox always fails, so its first file was uploaded (and
  committed) alone, before any other started: one commit round trip per push and per tracked
  folder. And when one side is Dropbox and DVC hands in a per-file `on_error`, the transfer runs
  under a stop switch (transfer/fatal.py): DVC sends the first file through its link attempts,
  where an error is handed to `on_error` directly, so the switch has to see DVC's handler there.
- `_put` (local -> remote, many files): to Dropbox through `dvc_put.push_many` (batches that fill).
- `_get` (remote -> local, many files): from Dropbox through `dvc_get.get_many`.

Each takes DVC's function (`original`) and `is_dropbox` (the adapter's class test, handed in so
nothing here imports the adapter back).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from fsspec.callbacks import DEFAULT_CALLBACK

from ..transfer import fatal

Function = Callable[..., Any]
IsDropbox = Callable[[Any], bool]
ErrorHandler = Callable[[Any, Any, BaseException], None]

# What each wrapper passes to DVC's function by position, then by name (checked before wrapping).
TRANSFER_POSITIONAL = ("from_fs", "from_path", "to_fs", "to_path")
TRANSFER_KEYWORDS = ("hardlink", "links", "on_error")
PUT_POSITIONAL = ("from_paths", "to_fs", "to_paths")
GET_POSITIONAL = ("from_fs", "from_paths", "to_paths")
COPY_KEYWORDS = ("callback", "batch_size", "on_error")


def wrap_transfer(original: Function, is_dropbox: IsDropbox) -> Function:
    def transfer(
        from_fs: Any, from_path: Any, to_fs: Any, to_path: Any, *args: Any, **kwargs: Any
    ) -> Any:
        to_dropbox, from_dropbox = is_dropbox(to_fs), is_dropbox(from_fs)
        if to_dropbox and not from_dropbox and not args:
            # No link reaches Dropbox from elsewhere: copy the whole list at once.
            kwargs.update(hardlink=False, links=["copy"])
        on_error: Optional[ErrorHandler] = kwargs.get("on_error")
        if on_error is None or not (to_dropbox or from_dropbox):
            # Without a per-file handler the first error ends the transfer anyway.
            return original(from_fs, from_path, to_fs, to_path, *args, **kwargs)
        fs, direction = (to_fs, fatal.UPLOAD) if to_dropbox else (from_fs, fatal.DOWNLOAD)
        with fatal.stopping(fs, direction) as stop:
            kwargs["on_error"] = stop.handler(on_error)
            return original(from_fs, from_path, to_fs, to_path, *args, **kwargs)

    return transfer


def wrap_put(original: Function, is_dropbox: IsDropbox) -> Function:
    def _put(
        from_paths: list[str],
        to_fs: Any,
        to_paths: list[str],
        callback: Any = DEFAULT_CALLBACK,
        batch_size: Optional[int] = None,
        on_error: Optional[ErrorHandler] = None,
        **kwargs: Any,
    ) -> None:
        if not is_dropbox(to_fs) or kwargs or len(from_paths) <= 1:
            # One file (a `.dir` listing) gains nothing from a pipeline: DVC's own path.
            original(
                from_paths,
                to_fs,
                to_paths,
                callback=callback,
                batch_size=batch_size,
                on_error=on_error,
                **kwargs,
            )
            return
        from .. import dvc_put

        dvc_put.push_many(to_fs, from_paths, to_paths, callback, batch_size or to_fs.jobs, on_error)

    return _put


def wrap_get(original: Function, is_dropbox: IsDropbox) -> Function:
    def _get(
        from_fs: Any,
        from_paths: list[str],
        to_paths: list[str],
        callback: Any = DEFAULT_CALLBACK,
        batch_size: Optional[int] = None,
        on_error: Optional[ErrorHandler] = None,
        **kwargs: Any,
    ) -> None:
        callback = callback if callback is not None else DEFAULT_CALLBACK
        if not is_dropbox(from_fs) or kwargs:
            original(
                from_fs,
                from_paths,
                to_paths,
                callback=callback,
                batch_size=batch_size,
                on_error=on_error,
                **kwargs,
            )
            return
        from .. import dvc_get

        dvc_get.get_many(from_fs, from_paths, to_paths, callback, batch_size, on_error)

    return _get
