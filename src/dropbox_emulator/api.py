"""The contract between the HTTP server (`server`) and the route handlers (`routes_*`).

The server owns transport: TLS, hosts, auth and scopes, `Dropbox-API-Arg`, strict stone decoding,
latency, faults, rate limits, stats, the 150 MiB request cap, spooling request bodies to disk,
Range and streaming for downloads, and encoding results and errors exactly as Dropbox does.

A handler owns semantics: it gets a decoded argument in a `Call` and returns the route's result
object (a stone struct/union instance, or None for Void), or raises one of the exceptions below.
Handlers never see raw HTTP.
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, Optional

from dropbox import common

# The one user account of an emulator run (tokens carry it; handlers get it as Call.account_id).
ACCOUNT_ID = "dbid:AAD6Xk3pQ9fLr2Tz8WmYc4Nv7Hs1Jb5Ug0E"  # exactly 40 chars, like Dropbox's
ACCOUNT_UID = "4242424242"  # the legacy numeric user id the token endpoint also returns


class RouteError(Exception):
    """A route error: the server answers 409 with `error` = this value of the route's error union
    (a stone union instance, e.g. `files.GetMetadataError.path(files.LookupError.not_found)`),
    and derives `error_summary` from its tags."""

    def __init__(self, error: Any):
        super().__init__(repr(error))
        self.error = error


class BadInput(Exception):
    """400 text/plain: `Error in call to API function "<route>": <message>`."""


class PathRootFailure(Exception):
    """422 with a `common.PathRootError` (unknown namespace / no permission)."""

    def __init__(self, error: common.PathRootError):
        super().__init__(repr(error))
        self.error = error


class TooManyWriteOperations(Exception):
    """429 `too_many_write_operations` with `retry_after` (raised by `Call.commit`)."""

    def __init__(self, retry_after: int = 1):
        super().__init__(f"namespace write lock busy, retry after {retry_after}s")
        self.retry_after = retry_after


@dataclasses.dataclass
class Body:
    """The request body of an upload-style route, already spooled to disk by the server.

    `content_hash` is the Dropbox content hash of exactly these bytes (computed while spooling),
    so handlers compare it with the arg's `content_hash`. A handler that keeps the bytes takes the
    file with `take()` (a rename, no copy); otherwise the server deletes it after the call.
    """

    path: Path
    size: int
    content_hash: str
    taken: bool = False

    def take(self) -> Path:
        self.taken = True
        return self.path


@dataclasses.dataclass
class DownloadResult:
    """What a download-style handler returns; the server serves `blob` (Range, 206, faults)."""

    metadata: Any  # files.FileMetadata
    blob: Path
    size: int


@dataclasses.dataclass
class Call:
    route: str  # "files/upload_session/append:2" style key of dropbox.<ns>.ROUTES
    arg: Any  # decoded with the route's arg validator (strict), None for Void
    account_id: str  # the account the token belongs to
    scopes: frozenset[str]
    app_key: str
    access_token: Optional[str]
    path_root: Optional[common.PathRoot]  # decoded Dropbox-API-Path-Root header, if any
    body: Optional[Body]  # upload-style routes only
    # `with call.commit(namespace_id):` around every state change that Dropbox counts as a commit.
    # It holds the per-namespace write lock for `commit_ms`; if the lock stays busy longer than
    # the configured wait it raises TooManyWriteOperations (the server answers 429).
    commit: Callable[[str], AbstractContextManager[None]]
    # Returns an https URL on this server that serves `blob` without auth for 4 hours.
    temporary_link: Callable[[Path, str], str]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # Revokes the calling access token (and its refresh token): what auth/token/revoke does.
    revoke_token: Optional[Callable[[], None]] = None
    # The running `store.Store` (set by the server for every call).
    store: Any = None
    # Batch finishes ask this once per entry: the UploadSessionFinishError tag an injected
    # `entry_failure` fault makes that entry answer, or None (commit it normally).
    entry_failure: Optional[Callable[[], Optional[str]]] = None


Handler = Callable[[Call], Any]

# Filled by the handler modules with @route(...); the server looks routes up here.
HANDLERS: dict[str, Handler] = {}


def route(key: str) -> Callable[[Handler], Handler]:
    """Register a handler for `key`, the ROUTES key of the SDK (e.g. "files/delete:2")."""

    def register(handler: Handler) -> Handler:
        HANDLERS[key] = handler
        return handler

    return register
