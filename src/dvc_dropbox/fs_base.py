"""What every room of the fsspec filesystem stands on: options, the connection, paths, metadata.

Paths are plugin paths (`dvc/my-project/files/md5/ab/cdef…`, no leading slash; the root is "");
`urls.api_path` turns them into the SDK's `/dvc/…`. Every SDK call goes through the connection's
`Pacer.call`; byte transfers go through `transfer.Transfers`.

Dropbox is case-insensitive and case-preserving, so names in results are built from the spelling
the caller asked for (parent path + `entry.name`), never from `path_display`: DVC compares the
names it gets back with the ones it built.

`DropboxFS` (fs.py) is this base plus its rooms: listing (fs_listing.py), mutations
(fs_mutations.py) and the core reads and writes (fs.py itself).
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any, Optional, Union

from fsspec import AbstractFileSystem

from . import urls
from .connection import Connection, Settings, connection_for
from .options import (
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


class DropboxFSBase(AbstractFileSystem):
    """Settings, connection and metadata of one Dropbox account (or namespace, with `path_root`)."""

    protocol = "dropbox"
    root_marker = ""
    # Connections are cached per settings in `connection_for`; instances are cheap.
    cachable = False

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
        pack: Union[bool, str, None] = None,
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
            pack=pack is None or bool_option("pack", pack),
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

    def invalidate_cache(self, path: Optional[str] = None) -> None:
        return None  # nothing cached: every question goes to Dropbox
