"""Which namespace a call works in: the user's home, or the team space root next to it.

`Dropbox-API-Path-Root` re-roots relative paths: `home` (the default), `root: <id>` (must be the
account's root namespace), `namespace_id: <id>` (any namespace the user can access). Anything else
is answered 422 with a `PathRootError`.
"""

from __future__ import annotations

from dropbox import common

from dropbox_emulator.api import Call, PathRootFailure
from dropbox_emulator.store import HOME_NAMESPACE_ID, NAMESPACES, TEAM_NAMESPACE_ID

HOME_PATH = "/Emulator User"


def root_info() -> common.TeamRootInfo:
    return common.TeamRootInfo(
        root_namespace_id=TEAM_NAMESPACE_ID,
        home_namespace_id=HOME_NAMESPACE_ID,
        home_path=HOME_PATH,
    )


def call_namespace(call: Call) -> str:
    """The namespace relative paths of `call` resolve in."""
    root = call.path_root
    if root is None or root.is_home():
        return HOME_NAMESPACE_ID
    if root.is_root():
        if root.get_root() == TEAM_NAMESPACE_ID:
            return TEAM_NAMESPACE_ID
        raise PathRootFailure(common.PathRootError.invalid_root(root_info()))
    if root.is_namespace_id():
        if root.get_namespace_id() in NAMESPACES:
            return root.get_namespace_id()
        raise PathRootFailure(common.PathRootError.no_permission)
    raise PathRootFailure(common.PathRootError.invalid_root(root_info()))
