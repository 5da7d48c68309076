"""`DropboxFS`: an fsspec filesystem on the official Dropbox SDK.

Its rooms: fs_base.py (settings, connection, paths, metadata: `info`), fs_listing.py (`ls`,
`find`, `walk`), fs_mutations.py (`mkdir`, `cp_file`, `mv`, `rm`, delete batches) and this
module, the core: `open`, `cat_file`, `get_file`, `put_file`, `pipe_file`. The file objects
`open` returns (files.py) get callables from here, never the filesystem itself.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from typing import Any, Callable, Optional

from fsspec.callbacks import DEFAULT_CALLBACK

from . import sdk_errors, urls
from .files import DropboxReader, DropboxWriter, close_quietly, read_some
from .fs_listing import ListingMixin
from .fs_mutations import MutationsMixin
from .options import BLOCK_SIZE
from .sdk_errors import translate_errors
from .transfer.content_hash import ObjectName, object_name
from .transfer.pipeline import Steps, drive

# `open` of a DVC object up to this size downloads it whole and verified before the first read.
VERIFIED_OPEN_LIMIT = 64 * 1024 * 1024


class DropboxFS(ListingMixin, MutationsMixin):
    """fsspec filesystem for one Dropbox account (or namespace, with `path_root`)."""

    # Remote roots whose DVC objects (`<root>/files/md5/ab/…`, DVC 2's `<root>/ab/…`) are checked
    # against the md5 their name says; DVC's adapter sets its remote's. Outside them only DVC 3's
    # distinctive `…/files/md5/ab/<30 hex>` names are checked, never an fsspec user's `ab/…`.
    dvc_remote_roots: tuple[str, ...] = ()

    # -- reading ----------------------------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Optional[int] = None,
        autocommit: bool = True,
        cache_options: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> Any:
        path = self._strip_protocol(path)
        if "r" in mode:
            entry = self.info(path)
            if entry["type"] == "directory":
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            name = self._object_name(path)
            if entry["size"] <= VERIFIED_OPEN_LIMIT and name is not None:
                # A DVC object (DVC reads `.dir` listings this way): verified before it is read.
                # Bigger ones stream, as `dvc.api.open` of a large file must not wait for all of it.
                with translate_errors(path):
                    return self.conn.transfers.read_object(urls.read_path(path), dvc_object=name)
            base, rev = urls.split_rev(path)[0], entry["rev"]
            raw = DropboxReader(
                path,
                entry["size"],
                # Every (re)open reads the revision `size` belongs to: never a mix of two versions.
                open_read=lambda start: self._open_read(urls.join_rev(base, rev), start=start),
                retry=self.conn.pacer.retry,
                rev=rev,
            )
            return io.BufferedReader(raw, buffer_size=block_size or BLOCK_SIZE)
        if "x" in mode:
            # Refused at once, as a local open; the commit (WriteMode.add) refuses one that
            # appears meanwhile.
            if self._info_or_none(path) is not None:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            return DropboxWriter(path, upload=self._uploader(path, "create"))
        if "w" in mode:
            return DropboxWriter(path, upload=self._uploader(path, "overwrite"))
        raise ValueError(f"unsupported mode {mode!r} for Dropbox (use rb or wb)")

    def _uploader(self, path: str, mode: str) -> Callable[[Any, int], None]:
        """What a writer's clean close calls: commit `size` bytes of the file object to `path`."""
        return lambda fobj, size: self.put_fileobj(fobj, path, size=size, mode=mode)

    def _object_name(self, path: str) -> Optional[ObjectName]:
        """The md5 `path` names if it is a DVC object of one of `dvc_remote_roots`."""
        return object_name(urls.split_rev(path)[0], self.dvc_remote_roots)

    def _open_read(self, path: str, start: int = 0, end: Optional[int] = None) -> Any:
        conn = self.conn
        with translate_errors(path):
            return conn.transfers.open_read(urls.read_path(path), start=start, end=end)

    def cat_file(
        self, path: str, start: Optional[int] = None, end: Optional[int] = None, **kwargs: Any
    ) -> bytes:
        path = self._strip_protocol(path)
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = self.info(path)["size"]
            start = size + start if start is not None and start < 0 else start
            end = size + end if end is not None and end < 0 else end
        start = max(0, start or 0)
        if end is not None and end <= start:
            return b""
        resp = self._open_read(path, start=start, end=end)
        try:
            want = None if end is None else end - start
            chunks = []
            got = 0
            while want is None or got < want:
                chunk = read_some(resp, BLOCK_SIZE if want is None else min(BLOCK_SIZE, want - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)
        finally:
            close_quietly(resp)

    def get_file(
        self,
        rpath: str,
        lpath: Any,
        callback: Any = DEFAULT_CALLBACK,
        outfile: Any = None,
        **kwargs: Any,
    ) -> None:
        rpath = self._strip_protocol(rpath)
        if outfile is not None or not isinstance(lpath, (str, os.PathLike)):
            target = outfile if outfile is not None else lpath
            with self.open(rpath, "rb") as src:
                shutil.copyfileobj(src, target, BLOCK_SIZE)
            return
        from dropbox import exceptions

        lpath = os.fspath(lpath)
        # As fsspec's own get_file: `get("proj/file", "local/newdir/")` creates `local/newdir`.
        os.makedirs(os.path.dirname(os.path.abspath(lpath)), exist_ok=True)
        conn = self.conn
        with translate_errors(rpath):
            try:
                conn.transfers.download_file(
                    urls.read_path(rpath), lpath, callback, self._object_name(rpath)
                )
            except exceptions.ApiError as exc:
                # Only Dropbox saying "this is a folder" (fsspec's recursive get hands folders to
                # get_file too); a local IsADirectoryError (lpath is a folder) is a real failure.
                if "not_file" not in sdk_errors.tags(exc.error):
                    raise
                os.makedirs(lpath, exist_ok=True)

    # -- writing ----------------------------------------------------------------------------------

    def put_file(
        self,
        lpath: Any,
        rpath: str,
        callback: Any = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        drive(self.put_file_steps(lpath, rpath, callback, mode=mode))

    def put_file_steps(
        self,
        lpath: Any,
        rpath: str,
        callback: Any = DEFAULT_CALLBACK,
        on_sent: Optional[Callable[[], None]] = None,
        mode: str = "overwrite",
    ) -> Steps[None]:
        """`put_file` as steps (transfer/pipeline.py): yields while its commit is pending, so a
        pipeline's thread can send other files meanwhile; ends once the file is committed."""
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        conn = self.conn
        with translate_errors(rpath):
            yield from conn.transfers.upload_file_steps(
                os.fspath(lpath), urls.api_path(rpath), callback, on_sent, mode=mode
            )

    def put_fileobj(
        self,
        fobj: Any,
        rpath: str,
        size: Optional[int] = None,
        callback: Any = DEFAULT_CALLBACK,
        mode: str = "overwrite",
    ) -> None:
        """Upload `fobj` to `rpath`: exactly `size` bytes if given (more or fewer is an error).
        `mode="create"` fails with FileExistsError if anything is at `rpath`."""
        rpath = self._strip_protocol(rpath)
        conn = self.conn
        with translate_errors(rpath):
            conn.transfers.upload_fileobj(fobj, urls.api_path(rpath), size, callback, mode=mode)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        self.put_fileobj(io.BytesIO(value), path, size=len(value), mode=mode)


__all__ = ["DropboxFS"]
