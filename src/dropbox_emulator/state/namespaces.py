"""Which namespace a call works in, and how the team space root contains the others.

The account is a team member in a team space, laid out as Dropbox's Namespace Guide describes:
the team space root namespace (`root_info.root_namespace_id`) contains the member's home
namespace, mounted at `root_info.home_path`, and a team folder (a namespace of its own) next to
it. Rows live in the namespace they belong to; a path through the team root that reaches into a
mount is followed into the mounted namespace (`resolve`), and rows of a mounted namespace are
shown with the mount's path in front when the call's path root is the team root (`present`).

`Dropbox-API-Path-Root` re-roots relative paths: `home` (the default), `root: <id>` (must be the
account's root namespace), `namespace_id: <id>` (any namespace the user can access). Anything else
is answered 422 with a `PathRootError`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from dropbox import common

from dropbox_emulator.state import paths
from dropbox_emulator.state.account import (
    HOME_NAMESPACE_ID,
    HOME_PATH,
    TEAM_FOLDER_NAMESPACE_ID,
    TEAM_FOLDER_PATH,
    TEAM_NAMESPACE_ID,
)
from dropbox_emulator.state.metadata import void
from dropbox_emulator.state.tree import Entry

NAMESPACES = (HOME_NAMESPACE_ID, TEAM_NAMESPACE_ID, TEAM_FOLDER_NAMESPACE_ID)


@dataclasses.dataclass(frozen=True)
class Mount:
    """A namespace mounted in the team root at `path` (display casing)."""

    ns: str
    path: str
    folder_id: str  # the id of the mount point's folder row in the team root

    @property
    def path_lower(self) -> str:
        return self.path.lower()


# Fixed ids: the mount points exist from the start and survive a reset, as on Dropbox.
MOUNTS = (
    Mount(HOME_NAMESPACE_ID, HOME_PATH, "id:HomeFolderOfTheMember0"),
    Mount(TEAM_FOLDER_NAMESPACE_ID, TEAM_FOLDER_PATH, "id:TeamFolderOfTheTeam000"),
)


class PathRootFailure(Exception):
    """422 with a `common.PathRootError` (unknown namespace / no permission)."""

    def __init__(self, error: common.PathRootError):
        super().__init__(repr(error))
        self.error = error


def root_info() -> common.TeamRootInfo:
    return common.TeamRootInfo(
        root_namespace_id=TEAM_NAMESPACE_ID,
        home_namespace_id=HOME_NAMESPACE_ID,
        home_path=HOME_PATH,
    )


def namespace_of(root: Optional[common.PathRoot]) -> str:
    """The namespace relative paths resolve in under this `Dropbox-API-Path-Root`."""
    if root is None or root.is_home():
        return HOME_NAMESPACE_ID
    if root.is_root():
        if root.get_root() == TEAM_NAMESPACE_ID:
            return TEAM_NAMESPACE_ID
        raise PathRootFailure(common.PathRootError.invalid_root(root_info()))
    if root.is_namespace_id():
        namespace_id: str = root.get_namespace_id()
        if namespace_id in NAMESPACES:
            return namespace_id
        raise PathRootFailure(void(common.PathRootError, "no_permission"))
    raise PathRootFailure(common.PathRootError.invalid_root(root_info()))


def mount_at(ns: str, path_lower: str) -> Optional[Mount]:
    """The mount whose mount point is exactly this path, if any."""
    if ns != TEAM_NAMESPACE_ID:
        return None
    return next((mount for mount in MOUNTS if mount.path_lower == path_lower), None)


def resolve(ns: str, path: str) -> tuple[str, str]:
    """Follow a path through the team root into the namespace mounted there:
    (team root, "/Emulator User/a") -> (home, "/a"); a mount point itself gives the mounted
    namespace's root (""). Other paths stay where they are."""
    if ns != TEAM_NAMESPACE_ID:
        return ns, path
    lower = path.lower()
    for mount in MOUNTS:
        if paths.is_within(lower, mount.path_lower):
            return mount.ns, path[len(mount.path) :]
    return ns, path


def mounted_in(ns: str, path_lower: str) -> list[tuple[str, str]]:
    """(namespace, mount path lower) of the mounts a recursive listing of this folder covers."""
    if ns != TEAM_NAMESPACE_ID:
        return []
    return [
        (mount.ns, mount.path_lower)
        for mount in MOUNTS
        if path_lower == "" or paths.is_within(mount.path_lower, path_lower)
    ]


def present(view: str, entry: Entry) -> Entry:
    """A row as a caller whose path root is `view` sees it: through the team root, rows of a
    mounted namespace carry the mount's path in front (their `path_display`/`path_lower` are
    relative to the path root used)."""
    if view != TEAM_NAMESPACE_ID:
        return entry
    mount = next((m for m in MOUNTS if m.ns == entry.ns), None)
    if mount is None:
        return entry
    return dataclasses.replace(
        entry,
        path_display=mount.path + entry.path_display,
        path_lower=mount.path_lower + entry.path_lower,
    )
