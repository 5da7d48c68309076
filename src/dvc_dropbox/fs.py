"""`DropboxFS`: an fsspec filesystem on the official Dropbox SDK.

Paths are plugin paths (`dvc/my-project/files/md5/ab/cdef…`, no leading slash; the root is "");
`urls.api_path` turns them into the SDK's `/dvc/…`. Every SDK call goes through the connection's
`Pacer.call`; byte transfers go through `transfer.Transfers`.

Dropbox is case-insensitive and case-preserving, so names in results are built from the spelling
the caller asked for (parent path + `entry.name`), never from `path_display`: DVC compares the
names it gets back with the ones it built.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional, Union

from fsspec import AbstractFileSystem
from fsspec.callbacks import DEFAULT_CALLBACK

from . import sdk_errors, urls
from .connection import Connection, Settings, connection_for
from .errors import DropboxRemoteError
from .files import DropboxReader, DropboxWriter, close_quietly, read_some
from .options import (
    BLOCK_SIZE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_JOBS,
    DEFAULT_RETRY_WAIT_LIMIT,
    DEFAULT_TIMEOUT,
    bool_option,
    check_storage_options,
    int_option,
    parse_chunk_size,
    seconds_option,
    text_option,
)
from .sdk_errors import translate_errors
from .transfer.content_hash import ObjectName, object_name
from .transfer.pacer import Action
from .transfer.pipeline import Steps, drive

LIST_LIMIT = 2000  # list_folder's maximum page size
# `open` of a DVC object up to this size downloads it whole and verified before the first read.
VERIFIED_OPEN_LIMIT = 64 * 1024 * 1024
MAX_LIST_PAGES = 1_000_000  # 2 billion entries: only a guard against a cursor that never ends
DELETE_POLL_DEADLINE_S = 900.0


# -- the filesystem -------------------------------------------------------------------------------


class DropboxFS(AbstractFileSystem):
    """fsspec filesystem for one Dropbox account (or namespace, with `path_root`)."""

    protocol = "dropbox"
    root_marker = ""
    # Connections are cached per settings in `connection_for`; instances are cheap.
    cachable = False
    # Remote roots whose DVC objects (`<root>/files/md5/ab/…`, DVC 2's `<root>/ab/…`) are checked
    # against the md5 their name says; DVC's adapter sets its remote's. Outside them only DVC 3's
    # distinctive `…/files/md5/ab/<30 hex>` names are checked, never an fsspec user's `ab/…`.
    dvc_remote_roots: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        app_key: Optional[str] = None,
        app_secret: Optional[str] = None,
        chunk_size: Union[int, str, None] = None,
        batch_size: Union[int, str, None] = None,
        jobs: Union[int, str, None] = None,
        timeout: Union[float, str, None] = None,
        retry_wait_limit: Union[float, str, None] = None,
        connect_timeout: Union[float, str, None] = None,
        path_root: Optional[str] = None,
        version_aware: Union[bool, str] = False,
        url: Optional[str] = None,
        **kwargs: Any,
    ):
        # Reached from fsspec.open / pandas `storage_options` and fsspec's config (values may be
        # strings there, e.g. FSSPEC_DROPBOX_BATCH_SIZE=100): a misspelt or out-of-range option
        # is refused here, before any request, instead of silently falling back to a default.
        check_storage_options(kwargs)
        super().__init__(**kwargs)
        self.url = url
        self.settings = Settings(
            app_key=text_option("app_key", app_key),
            app_secret=text_option("app_secret", app_secret),
            chunk_size=parse_chunk_size(chunk_size),
            batch_size=int_option("batch_size", batch_size, DEFAULT_BATCH_SIZE, 1, 1000),
            jobs=int_option("jobs", jobs, DEFAULT_JOBS, 1, None),
            timeout=seconds_option("timeout", timeout, DEFAULT_TIMEOUT),
            retry_wait_limit=seconds_option(
                "retry_wait_limit", retry_wait_limit, DEFAULT_RETRY_WAIT_LIMIT
            ),
            connect_timeout=seconds_option(
                "connect_timeout", connect_timeout, DEFAULT_CONNECT_TIMEOUT
            ),
            path_root=text_option("path_root", path_root),
        )
        self.version_aware = bool_option("version_aware", version_aware)
        self._conn: Optional[Connection] = None
        self._conn_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            with self._conn_lock:
                if self._conn is None:
                    self._conn = connection_for(self.settings, self.url)
        return self._conn

    def connect(self) -> None:
        """Create the client and check the credentials now (DVC calls this in its main thread)."""
        self.conn.check()

    def _call(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        conn = self.conn
        with translate_errors(path):
            return conn.call(getattr(conn.client, method), *args, **kwargs)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return urls.strip_protocol(str(path))

    def unstrip_protocol(self, name: str) -> str:
        return urls.path_to_url(name)

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    # -- metadata ---------------------------------------------------------------------------------

    def _entry(self, name: str, md: Any) -> dict[str, Any]:
        from dropbox import files

        if isinstance(md, files.FileMetadata):
            entry: dict[str, Any] = {
                "name": name,
                "size": md.size,
                "type": "file",
                "checksum": md.content_hash,
                "rev": md.rev,
                "server_modified": md.server_modified,
            }
            if self.version_aware:
                entry["version_id"] = md.rev
            return entry
        return {"name": name, "size": 0, "type": "directory"}

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        # A versioned path (`…?rev=`) asks for that revision, which may no longer be current.
        md = self._call(path, "files_get_metadata", urls.read_path(path))
        return self._entry(urls.split_rev(path)[0], md)

    def checksum(self, path: str) -> str:
        """Dropbox's content_hash: equal for equal bytes, whatever the name or revision."""
        entry = self.info(path)
        if entry["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        return entry["checksum"]

    def modified(self, path: str) -> Any:
        entry = self.info(path)
        if entry["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        return entry["server_modified"]

    def exists(self, path: str, **kwargs: Any) -> bool:
        # fsspec's default swallows every exception; auth and network errors must surface.
        return self._info_or_none(path) is not None

    def isdir(self, path: str) -> bool:
        entry = self._info_or_none(path)
        return entry is not None and entry["type"] == "directory"

    def isfile(self, path: str) -> bool:
        entry = self._info_or_none(path)
        return entry is not None and entry["type"] == "file"

    def _info_or_none(self, path: str) -> Optional[dict[str, Any]]:
        """info(), or None if nothing is there (a path below a file is not there either)."""
        try:
            return self.info(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _list(self, path: str, recursive: bool) -> Iterator[Any]:
        """Every metadata entry of one list_folder (+continue) stream."""
        result = self._call(
            path, "files_list_folder", urls.api_path(path), recursive=recursive, limit=LIST_LIMIT
        )
        for _ in range(MAX_LIST_PAGES):
            yield from result.entries
            if not result.has_more:
                return
            result = self._call(path, "files_list_folder_continue", result.cursor)
        raise DropboxRemoteError(f"listing {urls.api_path(path)} did not end")

    def ls(self, path: str, detail: bool = True, versions: bool = False, **kwargs: Any) -> Any:
        from dropbox import files

        path = self._strip_protocol(path)
        try:
            entries = [
                self._entry(self._join(path, md.name), md)
                for md in self._list(path, recursive=False)
                if not isinstance(md, files.DeletedMetadata)
            ]
        except NotADirectoryError:
            entries = [self.info(path)]  # fsspec: ls of a file lists the file
        if versions:
            # Only current revisions: DVC then re-uploads a file whose recorded revision is
            # older (an extra write, never a loss; dvc-integration.md §3.5).
            for entry in entries:
                if entry["type"] == "file":
                    entry["name"] = urls.join_rev(entry["name"], entry["rev"])
        entries.sort(key=lambda e: e["name"])
        return entries if detail else [e["name"] for e in entries]

    @staticmethod
    def _join(parent: str, name: str) -> str:
        return f"{parent}/{name}" if parent else name

    def _tree(self, path: str, recursive: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
        """One (recursive) listing of folder `path`: ({name: info} below it, info of `path`)."""
        from dropbox import files

        root_api = urls.api_path(path)
        root_lower = root_api.lower()
        names = {root_lower: path}  # path_lower of a folder -> its name in the caller's spelling
        out: dict[str, Any] = {}
        root_info: dict[str, Any] = {"name": path, "size": 0, "type": "directory"}
        for md in self._list(path, recursive=recursive):
            lower = md.path_lower
            if isinstance(md, files.DeletedMetadata) or lower is None:
                continue
            if lower == root_lower:
                continue  # a recursive listing contains the folder itself
            parent = names.get(lower.rpartition("/")[0])
            if parent is not None:
                name = self._join(parent, md.name)
            else:  # parents-first order not kept: fall back on the server's spelling below us
                name = self._join(path, (md.path_display or lower)[len(root_api) :].lstrip("/"))
            if isinstance(md, files.FolderMetadata):
                names[lower] = name
            out[name] = self._entry(name, md)
        return out, root_info

    def find(
        self,
        path: str,
        maxdepth: Optional[int] = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        path = self._strip_protocol(path)
        out: dict[str, Any] = {}
        try:
            tree, root_info = self._tree(path, recursive=maxdepth != 1)
        except (FileNotFoundError, NotADirectoryError):
            entry = self._info_or_none(path)  # find of a file finds the file
            if entry is not None and entry["type"] == "file":
                out[path] = entry
        else:
            base = len(path.split("/")) if path else 0
            if withdirs and path:
                out[path] = root_info
            for name, entry in tree.items():
                if maxdepth is not None and len(name.split("/")) - base > maxdepth:
                    continue
                if withdirs or entry["type"] != "directory":
                    out[name] = entry
        names = sorted(out)
        return {name: out[name] for name in names} if detail else names

    def walk(
        self,
        path: str,
        maxdepth: Optional[int] = None,
        topdown: bool = True,
        on_error: Any = "omit",
        **kwargs: Any,
    ) -> Iterator[tuple[str, Any, Any]]:
        """fsspec's walk, answered from one recursive listing instead of one listing per folder."""
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        detail = kwargs.pop("detail", False)
        path = self._strip_protocol(path)
        try:
            tree, _ = self._tree(path, recursive=maxdepth != 1)
        except (FileNotFoundError, NotADirectoryError) as exc:
            entry = self._info_or_none(path)
            if entry is not None and entry["type"] == "file":  # as fsspec: a file walks as itself
                yield path, ({} if detail else []), ({"": entry} if detail else [""])
                return
            if on_error == "raise":
                raise
            if callable(on_error):
                on_error(exc)
            return
        children: dict[str, dict[str, Any]] = {}
        for name, entry in tree.items():
            children.setdefault(name.rpartition("/")[0] if "/" in name else "", {})[name] = entry
        yield from self._walk_tree(path, children, maxdepth, topdown, detail)

    def _walk_tree(
        self,
        path: str,
        children: dict[str, dict[str, Any]],
        maxdepth: Optional[int],
        topdown: bool,
        detail: bool,
    ) -> Iterator[tuple[str, Any, Any]]:
        dirs: dict[str, Any] = {}
        files: dict[str, Any] = {}
        full: dict[str, str] = {}
        for name, entry in sorted(children.get(path, {}).items()):
            base = name.rpartition("/")[2]
            if entry["type"] == "directory":
                dirs[base] = entry
                full[base] = name
            else:
                files[base] = entry
        shown_dirs: Any = dirs if detail else list(dirs)
        shown_files: Any = files if detail else list(files)
        if topdown:
            yield path, shown_dirs, shown_files
        if maxdepth is None or maxdepth > 1:
            nxt = None if maxdepth is None else maxdepth - 1
            for d in list(shown_dirs):  # topdown callers may prune `dirs` in place
                yield from self._walk_tree(full[d], children, nxt, topdown, detail)
        if not topdown:
            yield path, shown_dirs, shown_files

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
            raw = DropboxReader(self, path, entry["size"], rev=entry["rev"])
            return io.BufferedReader(raw, buffer_size=block_size or BLOCK_SIZE)
        if "x" in mode:
            # Refused at once, as a local open; the commit (WriteMode.add) refuses one that
            # appears meanwhile.
            if self._info_or_none(path) is not None:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            return DropboxWriter(self, path, mode="create")
        if "w" in mode:
            return DropboxWriter(self, path)
        raise ValueError(f"unsupported mode {mode!r} for Dropbox (use rb or wb)")

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

        conn = self.conn
        with translate_errors(rpath):
            try:
                conn.transfers.download_file(
                    urls.read_path(rpath), os.fspath(lpath), callback, self._object_name(rpath)
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

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if not path:
            return
        try:
            self._call(path, "files_create_folder_v2", urls.api_path(path))
        except FileExistsError:
            if not self.isdir(path):  # conflict/file: something else is in the way
                raise

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        # No network call: Dropbox creates parent folders when a file is committed, and DVC
        # calls this once per object prefix, sequentially (256 commits on a fresh remote).
        return None

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        src = self.info(path1)
        if src["type"] == "directory":
            self.mkdir(path2)
            return
        try:
            self._call(path2, "files_copy_v2", urls.api_path(path1), urls.api_path(path2))
        except FileExistsError:
            dest = self.info(path2)
            if dest["type"] == "file" and dest.get("checksum") == src.get("checksum"):
                return  # identical content already there (DVC objects are content-addressed)
            self.rm_file(path2)
            self._call(path2, "files_copy_v2", urls.api_path(path1), urls.api_path(path2))

    def mv(
        self,
        path1: str,
        path2: str,
        recursive: bool = False,
        maxdepth: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        try:
            self._move(path1, path2)
        except FileExistsError:
            self.rm_file(path2)  # fsspec semantics: the destination is replaced
            self._move(path1, path2)

    def _move(self, path1: str, path2: str) -> None:
        missing = self._call_counting(
            path2, "files_move_v2", urls.api_path(path1), urls.api_path(path2)
        )
        if missing is None:
            return
        attempts, exc = missing
        # Not found after a retry: the earlier try may have moved it and lost the answer.
        if attempts > 1 and self._info_or_none(path1) is None and self.exists(path2):
            return
        raise exc

    def _call_counting(
        self, path: str, method: str, *args: Any
    ) -> Optional[tuple[int, FileNotFoundError]]:
        """`_call`; a not-found answer is returned with the number of attempts the pacer made.

        A retry after a lost answer meets what the first attempt did (a move or delete that
        landed), so "not found" then means "already done" rather than "never there".
        """
        conn = self.conn
        attempts = 0
        fn = getattr(conn.client, method)

        def attempt(*call_args: Any) -> Any:
            nonlocal attempts
            attempts += 1
            return fn(*call_args)

        attempt.__name__ = method  # the pacer names the call in its messages
        try:
            with translate_errors(path):
                conn.call(attempt, *args)
        except FileNotFoundError as exc:
            return attempts, exc
        return None

    # -- deleting ---------------------------------------------------------------------------------

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        if not path:
            raise DropboxRemoteError("refusing to delete the whole Dropbox")
        missing = self._call_counting(path, "files_delete_v2", urls.api_path(path))
        if missing is not None and missing[0] <= 1:
            raise missing[1]
        # Not found on a retry: the earlier try deleted it and its answer was lost; gone is gone.

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        if self.ls(path, detail=False):
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), path)
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: Optional[int] = None) -> None:
        """Delete a path, or many paths with `delete_batch` (folders go with their contents).

        One folder without `recursive` is refused, as fsspec's local rm does; a list (what
        `dvc gc -c` passes: object files) is deleted as given, without a metadata call per path.
        """
        paths = [path] if isinstance(path, str) else list(path)
        paths = list(dict.fromkeys(self._strip_protocol(p) for p in paths))
        if "" in paths:
            raise DropboxRemoteError("refusing to delete the whole Dropbox")
        if len(paths) == 1:
            if not recursive and self.info(paths[0])["type"] == "directory":
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), paths[0])
            self.rm_file(paths[0])
            return
        batch = max(1, min(1000, self.settings.batch_size))
        for i in range(0, len(paths), batch):
            self._delete_batch(paths[i : i + batch])

    def _delete_batch(self, paths: list[str]) -> None:
        """Delete up to 1000 paths with one delete_batch job, again for those that met contention.

        Every wait goes through the pacer (its clock, its bounds, its reports): the job's polls,
        and the backoff before a job that failed with too_many_write_operations, or whose entries
        did, runs again for what is left.
        """
        from dropbox import files

        pending = list(paths)

        def delete_batch() -> None:
            entries = self._run_delete_batch([files.DeleteArg(urls.api_path(p)) for p in pending])
            retry: list[str] = []
            contention: Any = None
            for p, entry in zip(pending, entries):
                if entry.is_success():
                    continue
                failure = entry.get_failure()
                path_tags = sdk_errors.tags(failure)
                if "not_found" in path_tags:
                    continue  # already gone: deleting is idempotent
                if sdk_errors.classify_error(failure).action is Action.RETRY:
                    retry.append(p)
                    contention = failure
                    continue
                raise DropboxRemoteError(
                    f"Dropbox could not delete {urls.api_path(p)}: {'/'.join(path_tags)}"
                )
            pending[:] = retry
            if contention is not None:
                raise sdk_errors.api_error(contention)  # the pacer waits, then runs the rest

        self.conn.pacer.retry(delete_batch)

    def _run_delete_batch(self, args: list[Any]) -> list[Any]:
        """One delete_batch job, polled until it ends; a failed job raises its error."""
        conn = self.conn
        launch = self._call("", "files_delete_batch", args)
        if launch.is_complete():
            return list(launch.get_complete().entries)
        if not launch.is_async_job_id():
            raise DropboxRemoteError(f"Dropbox delete_batch answered {sdk_errors.summary(launch)}")
        with translate_errors(""):
            status = conn.pacer.poll(
                conn.client.files_delete_batch_check,
                launch.get_async_job_id(),
                done=lambda job: not job.is_in_progress(),
                what="delete_batch",
                deadline=DELETE_POLL_DEADLINE_S,
            )
        if status.is_complete():
            return list(status.get_complete().entries)
        failed = status.get_failed() if status.is_failed() else status
        if sdk_errors.classify_error(failed).action is Action.RETRY:
            raise sdk_errors.api_error(failed)  # contention: the caller's pacer runs it again
        raise DropboxRemoteError(f"Dropbox delete_batch failed: {sdk_errors.summary(failed)}")

    def invalidate_cache(self, path: Optional[str] = None) -> None:
        return None  # nothing cached: every question goes to Dropbox


__all__ = ["DropboxFS"]
