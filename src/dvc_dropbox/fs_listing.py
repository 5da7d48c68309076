"""Listing rooms of `DropboxFS`: `ls`, `find` and `walk`, each from one `list_folder` stream.

`find` and `walk` answer from one recursive listing (+ `continue` pages) instead of fsspec's one
listing per folder; names keep the caller's spelling (fs_base.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from . import urls
from .errors import DropboxRemoteError
from .fs_base import DropboxFSBase

LIST_LIMIT = 2000  # list_folder's maximum page size
MAX_LIST_PAGES = 1_000_000  # 2 billion entries: only a guard against a cursor that never ends


class ListingMixin(DropboxFSBase):
    """`ls`, `find`, `walk` of `DropboxFS`."""

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
