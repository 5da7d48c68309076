"""Which namespace a call works in: the user's home, or the team space root next to it.

`Dropbox-API-Path-Root` re-roots relative paths: `home` (the default), `root: <id>` (must be the
account's root namespace), `namespace_id: <id>` (any namespace the user can access). Anything else
is answered 422 with a `PathRootError`.
"""

from __future__ import annotations

from typing import Optional

from dropbox import common

from dropbox_emulator.state.account import HOME_NAMESPACE_ID, HOME_PATH, TEAM_NAMESPACE_ID
from dropbox_emulator.state.metadata import void

NAMESPACES = (HOME_NAMESPACE_ID, TEAM_NAMESPACE_ID)


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
