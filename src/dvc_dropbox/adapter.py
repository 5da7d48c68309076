"""The DVC side: `DropboxFileSystem`, what `dvc_objects` builds for a `dropbox://` remote.

A thin adapter (design.md): it maps the remote's options onto `fs.DropboxFS`, the URL onto a
path, and `content_hash` onto DVC's `checksum`. DVC constructs this class several times per
command, so construction is cheap and the SDK client is shared (see `connection.connection_for`).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Optional

from dvc_objects.fs.base import FileSystem
from funcy import cached_property, wrap_prop

from . import doctor, urls
from .errors import DropboxConfigError
from .fs import DropboxFS
from .options import DEFAULT_JOBS, parse_chunk_size
from .transfer import fatal

# Remote options handed to DropboxFS (the rest of DVC's config, e.g. url/worktree, is DVC's).
FS_OPTIONS = (
    "app_key",
    "app_secret",
    "batch_size",
    "timeout",
    "retry_wait_limit",
    "connect_timeout",
    "path_root",
    "version_aware",
    "pack",
    "url",  # only names the remote in credential messages
)


class DropboxFileSystem(FileSystem):
    protocol = "dropbox"
    PARAM_CHECKSUM = "checksum"  # Dropbox's content_hash (DVC 3 knows md5/etag/checksum only)
    REQUIRES: ClassVar[dict[str, str]] = {"dropbox": "dropbox"}
    _JOBS = DEFAULT_JOBS
    # One recursive list_folder page holds 2000 entries; listing beats per-object metadata calls.
    LIST_OBJECT_PAGE_SIZE = 2000
    TRAVERSE_WEIGHT_MULTIPLIER = 1

    def __init__(self, fs: Any = None, **kwargs: Any):
        super().__init__(fs, **kwargs)
        # Checked here (cheap, main thread) so a bad value is one clear error, not N failed files.
        parse_chunk_size(kwargs.get("chunk_size"))
        url = kwargs.get("url")
        self.root: Optional[str] = (
            urls.strip_protocol(url) if isinstance(url, str) and urls.is_dropbox_url(url) else None
        )
        self._root_checked = False

    # -- URLs -------------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        if urls.is_dropbox_url(path):
            try:
                return urls.url_to_path(path)
            except urls.DropboxURLError as exc:
                raise DropboxConfigError(str(exc)) from None
        return urls.strip_protocol(path)

    def unstrip_protocol(self, path: str) -> str:
        return urls.path_to_url(path)

    @staticmethod
    def _get_kwargs_from_urls(urlpath: str) -> dict[str, Any]:
        # DVC passes these to __init__: the URL tells us the remote's folder (checked on push).
        kwargs: dict[str, Any] = {"url": urlpath}
        if urls.split_rev(urlpath)[1] is not None:
            kwargs["version_aware"] = True  # a URL naming a revision implies a versioned fs
        return kwargs

    # -- versions (version_aware / worktree remotes, import-url --version-aware) ------------------
    # A version is a Dropbox file revision, written `path?rev=<rev>` (dvc-integration.md §3.5).

    @classmethod
    def split_version(cls, path: str) -> tuple[str, Optional[str]]:
        return urls.split_rev(path)

    @classmethod
    def join_version(cls, path: str, version_id: Optional[str]) -> str:
        return urls.join_rev(path, version_id)

    @classmethod
    def version_path(cls, path: str, version_id: Optional[str]) -> str:
        return urls.join_rev(urls.split_rev(path)[0], version_id)

    @classmethod
    def coalesce_version(cls, path: str, version_id: Optional[str]) -> tuple[str, Optional[str]]:
        path, path_version = urls.split_rev(path)
        versions = {v for v in (version_id, path_version) if v}
        if len(versions) > 1:
            raise ValueError(f"path version mismatch: {path_version!r} vs {version_id!r}")
        return path, (versions.pop() if versions else None)

    # -- the fsspec filesystem --------------------------------------------------------------------

    def _prepare_credentials(self, **config: Any) -> dict[str, Any]:
        kwargs = {key: config[key] for key in FS_OPTIONS if config.get(key) is not None}
        kwargs["chunk_size"] = parse_chunk_size(config.get("chunk_size"))
        kwargs["jobs"] = self.jobs
        return kwargs

    @wrap_prop(threading.Lock())
    @cached_property
    def fs(self) -> DropboxFS:
        fs = DropboxFS(**self.fs_args)
        if self.root is not None:
            fs.dvc_remote_roots = (self.root,)  # only its objects are checked by their md5 name
        # DVC touches `fs` in its main thread before starting workers: fail here, once, on
        # missing or rejected credentials instead of once per file inside the transfer threads.
        fs.connect()
        return fs

    # -- where DVC's generic behaviour is wrong for Dropbox ----------------------------------------

    def makedirs(self, path: str, **kwargs: Any) -> None:
        # No folder creation (Dropbox makes parents on commit). DVC calls this in its main thread
        # right before uploading objects, so this is where a remote URL that names a file (or
        # sits below one) is reported clearly instead of as N failed uploads.
        self._check_root(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self._check_root(path)
        self.fs.mkdir(path, create_parents=create_parents)

    def put_file(self, from_file: Any, to_info: str, *args: Any, **kwargs: Any) -> None:
        # A transfer stopping at a cause every file meets (no space, revoked token) starts no
        # more uploads; the stop's handler keeps this quiet (transfer/fatal.py).
        fatal.check(self)
        try:
            super().put_file(from_file, to_info, *args, **kwargs)
        except BaseException:
            doctor.PUSHES.upload_failed()
            raise
        # After a push, once per repository: a hint if the desktop app syncs this folder too.
        doctor.PUSHES.uploaded(self.root, self.fs_args.get("path_root"), self)

    def upload_fobj(self, fobj: Any, to_info: str, **kwargs: Any) -> None:
        # Straight into the transfer layer (streamed in chunks), no temporary copy.
        self._check_root(to_info)
        self.fs.put_fileobj(fobj, to_info, size=kwargs.get("size"))

    def _check_root(self, path: str) -> None:
        """Once per instance: the remote folder must not be a file, nor lie below one."""
        root = self.root
        if self._root_checked or not root or not self.isin_or_eq(path, root):
            return
        probe = root
        while probe:
            try:
                entry = self.fs.info(probe)
            except (FileNotFoundError, NotADirectoryError):
                probe = self.parent(probe)
                continue
            if entry["type"] != "directory":
                raise DropboxConfigError(self._root_is_a_file_message(root, probe))
            break
        self._root_checked = True

    def _root_is_a_file_message(self, root: str, probe: str) -> str:
        url = self.config.get("url") or urls.path_to_url(root)
        names = remote_names_for(url)
        if names:
            quoted = " / ".join(f"'{name}'" for name in names)
            what = f"the remote {quoted} ({url})"
        else:
            what = f"the remote {url}"
        if probe == root:
            why = f"{urls.api_path(probe)} is a file in Dropbox, not a folder"
        else:
            why = (
                f"{urls.api_path(probe)} is a file in Dropbox, so {urls.api_path(root)} "
                "cannot be a folder"
            )
        return (
            f"{what} cannot be used: {why}. Point the remote at a folder: "
            f"dvc remote modify {names[0] if names else '<name>'} url "
            "dropbox://<folder>/<subfolder>"
        )


def remote_names_for(url: str) -> list[str]:
    """Names of the DVC remotes (as in `dvc remote list`) whose URL is `url`, for messages.

    DVC hands the filesystem the remote's options but not its name, so it is looked up in the
    config of the repository in the working directory (where `dvc` runs, also with --cd).
    """
    try:
        from dvc.config import Config

        remotes = Config.from_cwd(validate=False).get("remote", {})
    except Exception:  # only for wording a message: never fail because of it
        return []
    # Dropbox paths are case-insensitive, and a trailing slash names the same folder.
    want = urls.strip_protocol(url).lower()
    return sorted(
        name
        for name, conf in remotes.items()
        if urls.is_dropbox_url(conf.get("url")) and urls.strip_protocol(conf["url"]).lower() == want
    )


def is_dropbox(fs: Any) -> bool:
    """The class test the hooks of DVC's copies take (dvc_hooks): is `fs` this filesystem?"""
    return isinstance(fs, DropboxFileSystem)


# Last, once the class exists: DVC's copies, Dropbox's way where Dropbox is a side (dvc_hooks).
from . import dvc_hooks  # noqa: E402

dvc_hooks.install(is_dropbox)
