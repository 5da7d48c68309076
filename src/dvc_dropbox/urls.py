"""`dropbox://` URLs <-> filesystem paths <-> Dropbox API paths.

`dropbox://dvc/my-project` names the Dropbox folder `/dvc/my-project`: the netloc is the first
folder (design.md decision 2). Inside the plugin a path is written without the leading slash
(`dvc/my-project/files/md5/ab/cdef…`, like an S3 "bucket/key"), and `api_path` adds it back for
the SDK; the Dropbox root is the empty path.

Stdlib only: the registration hook imports this module to refuse bad URLs at `dvc remote add`.
"""

from __future__ import annotations

import re
from typing import Optional

SCHEME = "dropbox"
SCHEME_PART = f"{SCHEME}:"  # what claims a URL for us, in any letter case (RFC 3986 §3.1)
PREFIX = f"{SCHEME}://"

RIGHT_FORM = (
    "write it as dropbox://<folder>/<subfolder>..., "
    "e.g. dropbox://dvc/my-project for the Dropbox folder /dvc/my-project"
)


# Version-aware remotes name a revision as `path?rev=<rev>` (Dropbox revs: >= 9 hex digits).
REV_QUERY = "?rev="
_REV = re.compile(r"[0-9a-f]{9,}")


class DropboxURLError(ValueError):
    """A `dropbox:` URL that cannot name a Dropbox folder; the message says the right form."""


def is_dropbox_url(url: object) -> bool:
    """True for every URL in the `dropbox` scheme, well-formed or not (`dropbox:/x`, `DROPBOX:x`).

    A malformed one must still count as ours: DVC would otherwise take `dropbox:/dvc/x` for a
    local folder of that name and "push" into it.
    """
    return isinstance(url, str) and url[: len(SCHEME_PART)].lower() == SCHEME_PART


def url_problem(url: str) -> Optional[str]:
    """Why `url` is not a usable `dropbox://` URL, or None if it is fine."""
    if not is_dropbox_url(url):
        return f"Dropbox URLs start with {PREFIX!r}"
    if url[len(SCHEME_PART) : len(PREFIX)] != "//":
        return "'dropbox:' must be followed by two slashes"
    rest = url[len(PREFIX) :]
    if not rest.strip("/"):
        return "it names no folder; a folder is needed after 'dropbox://' (not the whole Dropbox)"
    if rest.startswith("/"):
        # dropbox:///x: an empty netloc would make DVC treat the URL as a local path.
        return "there must be no third slash after 'dropbox:' (the first folder is the host part)"
    parts = rest.rstrip("/").split("/")
    if "" in parts:
        return "it has an empty path component ('//')"
    if any(part in (".", "..") for part in parts):
        return "it has a '.' or '..' path component"
    return None


def corrected_url(url: str) -> Optional[str]:
    """The well-formed URL a malformed one most likely means (`dropbox:/dvc/x` -> dropbox://dvc/x).

    None when there is no single obvious reading (no folder, or '.'/'..' components).
    """
    if not is_dropbox_url(url):
        return None
    parts = [part for part in url[len(SCHEME_PART) :].split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        return None
    fixed = PREFIX + "/".join(parts)
    return fixed if fixed != url and url_problem(fixed) is None else None


def url_error(url: str) -> Optional[str]:
    """The whole message for a malformed URL (what is wrong, then the right form), or None."""
    problem = url_problem(url)
    if problem is None:
        return None
    fixed = corrected_url(url)
    hint = f"did you mean {fixed}? " if fixed else ""
    return f"invalid Dropbox URL {url!r}: {problem}; {hint}{RIGHT_FORM}"


def check_url(url: str) -> str:
    """Raise DropboxURLError (naming the right form) unless `url` is a usable dropbox:// URL."""
    message = url_error(url)
    if message is not None:
        raise DropboxURLError(message)
    return url


def url_to_path(url: str) -> str:
    """`dropbox://dvc/my-project/` -> `dvc/my-project` (validated; a trailing slash is fine)."""
    check_url(url)
    return url[len(PREFIX) :].rstrip("/")


def path_to_url(path: str) -> str:
    return PREFIX + path.strip("/")


def strip_protocol(path: str) -> str:
    """Lenient form for paths fsspec/DVC pass around: drop the scheme and outer slashes."""
    if is_dropbox_url(path):
        path = path[len(SCHEME_PART) :]
    return path.strip("/")


def api_path(path: str) -> str:
    """Plugin path -> the SDK's path argument: "" for the root, else "/" + path."""
    path = path.strip("/")
    return f"/{path}" if path else ""


def split_rev(path: str) -> tuple[str, Optional[str]]:
    """`dvc/x/f.txt?rev=015e7c0ef2` -> (`dvc/x/f.txt`, `015e7c0ef2`); no rev -> (path, None).

    Only a well-formed rev suffix counts, so a file whose name merely contains "?" is untouched.
    """
    base, sep, rev = path.rpartition(REV_QUERY)
    if sep and _REV.fullmatch(rev):
        return base, rev
    return path, None


def join_rev(path: str, rev: Optional[str]) -> str:
    if split_rev(path)[1] is not None:
        raise ValueError(f"{path!r} already names a revision")
    return f"{path}{REV_QUERY}{rev}" if rev else path


def read_path(path: str) -> str:
    """Plugin path (maybe with ?rev=) -> what download/get_metadata take: "rev:<rev>" or "/…"."""
    base, rev = split_rev(path)
    return f"rev:{rev}" if rev else api_path(base)
