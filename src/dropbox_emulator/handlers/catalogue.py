"""The SDK's user routes, from its own stone definitions: key, URL name, style, auth and scope.

What the HTTP layer looks URLs up in, what handlers register under (`key`), and where the set of
OAuth scopes a token can carry comes from.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Optional

from dropbox import base
from dropbox import stone_base as bb
from dropbox import stone_validators as bv

# The SDK modules that carry user routes (team and business APIs are out of scope).
NAMESPACES = (
    "account",
    "auth",
    "check",
    "contacts",
    "file_properties",
    "file_requests",
    "files",
    "openid",
    "paper",
    "secondary_emails",
    "seen_state",
    "sharing",
    "users",
)

_SCOPE_DOC = re.compile(r"scope:\s*(\S+)")


@dataclasses.dataclass(frozen=True)
class RouteInfo:
    key: str  # "files/upload_session/append:2" (namespace + ROUTES key), what handlers register
    url_name: str  # "files/upload_session/append_v2", what follows /2/ in the URL
    route: bb.Route
    scope: Optional[str]  # OAuth scope the route needs, from the SDK's docstrings

    @property
    def style(self) -> str:
        return str(self.route.attrs.get("style") or "rpc")

    @property
    def auth(self) -> str:
        return str(self.route.attrs.get("auth") or "user")

    @property
    def arg_is_void(self) -> bool:
        return isinstance(self.route.arg_type, bv.Void)

    def error_has(self, tag: str) -> bool:
        """Whether the route's error union has member `tag` (e.g. payload_too_large)."""
        definition = getattr(self.route.error_type, "definition", None)
        return tag in getattr(definition, "_tagmap", {})


def _scope_of(namespace: str, route: bb.Route) -> Optional[str]:
    # The generated client documents each route's scope ("Route attributes: scope: x"); the
    # route objects themselves do not carry it.
    method = f"{namespace}_{route.name.replace('/', '_')}"
    if route.version > 1:
        method += f"_v{route.version}"
    doc = getattr(getattr(base.DropboxBase, method, None), "__doc__", None) or ""
    found = _SCOPE_DOC.search(doc)
    return found.group(1) if found else None


def _build_routes() -> dict[str, RouteInfo]:
    table: dict[str, RouteInfo] = {}
    for namespace in NAMESPACES:
        try:
            module = importlib.import_module(f"dropbox.{namespace}")
        except ImportError:  # an older SDK without this namespace
            continue
        for key, route in getattr(module, "ROUTES", {}).items():
            url_name = route.name + (f"_v{route.version}" if route.version > 1 else "")
            info = RouteInfo(
                key=f"{namespace}/{key}",
                url_name=f"{namespace}/{url_name}",
                route=route,
                scope=_scope_of(namespace, route),
            )
            table[info.url_name] = info
    return table


ROUTES: dict[str, RouteInfo] = _build_routes()

# Every scope the SDK's user routes mention; a token "with all scopes" gets these.
ALL_SCOPES: frozenset[str] = frozenset(
    info.scope for info in ROUTES.values() if info.scope is not None
)


def lookup(url_path: str) -> Optional[RouteInfo]:
    """`/2/files/delete_v2` → the RouteInfo of "files/delete:2", or None."""
    if not url_path.startswith("/2/"):
        return None
    return ROUTES.get(url_path[3:])
