"""Dropbox path strings: parsing (`/a/b`, `id:…`, `rev:…`, `ns:<id>/…`), validation, case folding.

Dropbox paths are case-insensitive and case-preserving: identity is the lower-cased path
(`path_lower`), the casing the user wrote is kept for display (`path_display`). The root of a
namespace is the empty string.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

# Names on Dropbox's "ignored files" list, which the server refuses to store (compared lower-cased).
DISALLOWED_NAMES = frozenset(
    {"desktop.ini", "thumbs.db", ".ds_store", "icon\r", ".dropbox", ".dropbox.attr"}
)
MAX_COMPONENT_CHARS = 255
_BAD_CHARS = re.compile(r"[\\\x00\x7f]")
_NS_RE = re.compile(r"^ns:([0-9]+)(/.*)?$")
_REV_RE = re.compile(r"^[0-9a-f]{9,}$")


class PathProblem(Exception):
    """A path Dropbox refuses: `disallowed` is True for names on the ignored-files list
    (→ `disallowed_name`), False for a bad shape (→ `malformed_path`)."""

    def __init__(self, message: str, disallowed: bool = False):
        super().__init__(message)
        self.message = message
        self.disallowed = disallowed


@dataclasses.dataclass(frozen=True)
class Target:
    """A parsed path argument.

    kind "path": `path` is a display path ("" = namespace root), `ns` the explicit namespace of
    an `ns:` path (None = the call's root); kind "id": `file_id` (+ `path` relative below it);
    kind "rev": `rev`.
    """

    kind: str
    path: str = ""
    ns: Optional[str] = None
    file_id: Optional[str] = None
    rev: Optional[str] = None


def is_text(value: str) -> bool:
    """False for strings that are not valid Unicode text (lone surrogates from JSON escapes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(raw: str) -> Target:
    """Split a path argument into its kind; the path part is validated for shape."""
    if not is_text(raw):
        raise PathProblem("path is not valid UTF-8")
    if raw.startswith("id:"):
        file_id, sep, rest = raw.partition("/")
        if len(file_id) <= 3:
            raise PathProblem("empty id")
        rel = sep + rest if sep else ""
        if rel:
            check_shape(rel)
        return Target(kind="id", file_id=file_id, path=rel)
    if raw.startswith("rev:"):
        rev = raw[4:]
        if not _REV_RE.match(rev):
            raise PathProblem("malformed revision")
        return Target(kind="rev", rev=rev)
    match_ns = _NS_RE.match(raw)
    if match_ns:
        rel = match_ns.group(2) or ""
        if rel:
            check_shape(rel)
        return Target(kind="path", ns=match_ns.group(1), path=rel)
    if raw == "":
        return Target(kind="path", path="")
    check_shape(raw)
    return Target(kind="path", path=raw)


def check_shape(path: str) -> None:
    """Refuse paths Dropbox calls malformed: no leading `/`, trailing `/`, empty components,
    `.`/`..`, backslash/NUL/DEL, trailing spaces, components over 255 characters."""
    if not path.startswith("/"):
        raise PathProblem("path must start with '/'")
    if path.endswith("/"):
        raise PathProblem("path must not end with '/'")
    for component in path[1:].split("/"):
        if component == "":
            raise PathProblem("empty path component")
        if component in (".", ".."):
            raise PathProblem("relative path component")
        if len(component) > MAX_COMPONENT_CHARS:
            raise PathProblem("path component longer than 255 characters")
        if _BAD_CHARS.search(component):
            raise PathProblem("invalid character in path")
        if component != component.rstrip(" "):
            raise PathProblem("trailing space in path component")


def check_writable(path: str) -> None:
    """`check_shape` plus the ignored-files list, for paths that will be created."""
    check_shape(path)
    for component in path[1:].split("/"):
        if component.lower() in DISALLOWED_NAMES:
            raise PathProblem(f"disallowed name {component!r}", disallowed=True)


def parent(path: str) -> str:
    """Parent of a display or lower path; the root's children have parent ""."""
    return path.rsplit("/", 1)[0]


def name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def join(parent_path: str, child: str) -> str:
    return f"{parent_path}/{child}"


def ancestors(path: str) -> list[str]:
    """Proper ancestors below the root, outermost first: "/a/b/c" → ["/a", "/a/b"]."""
    parts = path[1:].split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def is_within(path_lower: str, folder_lower: str) -> bool:
    """True if `path_lower` is `folder_lower` or below it ("" is the root)."""
    return path_lower == folder_lower or path_lower.startswith(folder_lower + "/")


def autorename(path: str, attempt: int, is_file: bool, conflicted: bool = False) -> str:
    """Dropbox's autorename: "/d/report.txt" → "/d/report (1).txt"; folders keep dots.

    `conflicted`: an `update`-mode write whose rev no longer matches keeps both versions as
    Dropbox does, naming the new one "report (conflicted copy).txt" (then "(conflicted copy
    2)", ...)."""
    base = name(path)
    stem, ext = base, ""
    if is_file and "." in base.lstrip("."):
        dot = base.rfind(".")
        stem, ext = base[:dot], base[dot:]
    if conflicted:
        suffix = "conflicted copy" if attempt == 1 else f"conflicted copy {attempt}"
        return join(parent(path), f"{stem} ({suffix}){ext}")
    return join(parent(path), f"{stem} ({attempt}){ext}")
