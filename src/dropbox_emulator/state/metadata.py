"""Tree rows → the SDK's metadata structs (what the wire carries), and the SDK's void union
members as typed values."""

from __future__ import annotations

from typing import TypeVar, Union

from dropbox import files
from dropbox import stone_base as bb

from dropbox_emulator.state.tree import Entry, parse_time

Metadata = Union[files.FileMetadata, files.FolderMetadata, files.DeletedMetadata]
_U = TypeVar("_U", bound=bb.Union)


def void(union: type[_U], tag: str) -> _U:
    """The void member `tag` of a stone union: `void(files.LookupError, "not_found")` equals
    `files.LookupError.not_found`. The SDK declares those members as None in the class body and
    sets them after it, so a type checker reading the SDK would see None."""
    member: _U = union(tag)
    return member


def file_metadata(entry: Entry) -> files.FileMetadata:
    assert entry.client_modified and entry.server_modified and entry.rev and entry.id
    return files.FileMetadata(
        name=entry.name,
        id=entry.id,
        client_modified=parse_time(entry.client_modified),
        server_modified=parse_time(entry.server_modified),
        rev=entry.rev,
        size=entry.size or 0,
        path_lower=entry.path_lower,
        path_display=entry.path_display,
        is_downloadable=True,
        content_hash=entry.content_hash,
    )


def folder_metadata(entry: Entry) -> files.FolderMetadata:
    return files.FolderMetadata(
        name=entry.name,
        id=entry.id,
        path_lower=entry.path_lower,
        path_display=entry.path_display,
    )


def metadata(entry: Entry) -> Metadata:
    """The tagged `Metadata` subtype for a tree row (file, folder or deleted)."""
    if entry.kind == "file":
        return file_metadata(entry)
    if entry.kind == "folder":
        return folder_metadata(entry)
    return files.DeletedMetadata(
        name=entry.name, path_lower=entry.path_lower, path_display=entry.path_display
    )
