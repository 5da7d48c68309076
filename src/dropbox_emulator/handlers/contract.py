"""The contract between the HTTP layer (`http`) and the route handlers (`handlers.*`).

The HTTP layer owns transport: TLS, hosts, auth and scopes, `Dropbox-API-Arg`, strict stone
decoding, latency, faults, rate limits, stats, the 150 MiB request cap, spooling request bodies
to disk, Range and streaming for downloads, and encoding results and errors exactly as Dropbox
does.

A handler owns semantics: it gets the decoded request in a `Call` and the emulator's services in
`Services`, and returns the route's result object (a stone struct/union instance, or None for
Void), or raises one of the exceptions below. Handlers never see raw HTTP.
"""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, TypeVar, Union

from dropbox import common, files
from dropbox import stone_base as bb

from dropbox_emulator.state.blobs import Body
from dropbox_emulator.state.namespaces import PathRootFailure
from dropbox_emulator.state.store import Store

__all__ = [
    "HANDLERS",
    "MAX_PAYLOAD",
    "BadInput",
    "Body",
    "Call",
    "DownloadResult",
    "Handler",
    "PathRootFailure",
    "RouteError",
    "Services",
    "TooManyWriteOperations",
    "route",
]


MAX_PAYLOAD = 150 * 1024 * 1024  # Dropbox's per-request cap for upload-style routes


class RouteError(Exception):
    """A route error: the server answers 409 with `error` = this value of the route's error union
    (a stone union instance, e.g. `files.GetMetadataError.path(files.LookupError.not_found)`),
    and derives `error_summary` from its tags."""

    def __init__(self, error: bb.Union):
        super().__init__(repr(error))
        self.error = error


class BadInput(Exception):
    """400 text/plain: `Error in call to API function "<route>": <message>`."""


class TooManyWriteOperations(Exception):
    """The namespace is busy (raised by `Services.commit`). Uncaught it is a 429
    `too_many_write_operations` with `retry_after` (whole seconds on the wire) while `seconds`
    is the (scaled) wait the emulator enforces; a handler may instead answer its route's own
    form (a failed batch entry, or a 409 where the route's error union has the tag) when
    `Services.route_form_contention` says so."""

    def __init__(self, retry_after: int = 1, seconds: Optional[float] = None):
        super().__init__(f"namespace write lock busy, retry after {retry_after}s")
        self.retry_after = retry_after
        self.seconds = float(retry_after) if seconds is None else seconds


@dataclasses.dataclass
class DownloadResult:
    """What a download-style handler returns; the server serves `blob` (Range, 206, faults):
    a file, or the bytes of a small content. `metadata` goes to the `Dropbox-API-Result`
    header: a file's metadata (whose rev is the ETag), or a `DownloadZipResult`. A `temporary`
    blob was made for this answer (a zip): the server deletes it once served."""

    metadata: Union[files.FileMetadata, files.DownloadZipResult]
    blob: Union[Path, bytes]
    size: int
    temporary: bool = False


@dataclasses.dataclass
class Call:
    """One API request, decoded: who calls which route with what."""

    route: str  # "files/upload_session/append:2" style key of dropbox.<ns>.ROUTES
    url_name: str  # "files/upload_session/append_v2", what followed /2/ in the URL
    arg: Any  # decoded with the route's arg validator (strict), None for Void
    account_id: str  # the account the token belongs to
    access_token: Optional[str]  # None for noauth and app-auth routes
    path_root: Optional[common.PathRoot]  # decoded Dropbox-API-Path-Root header, if any
    body: Optional[Body]  # upload-style routes only


class Services(Protocol):
    """What handlers may use besides the request (the runtime provides it)."""

    @property
    def store(self) -> Store: ...

    def commit(self, namespace_id: str) -> AbstractContextManager[None]:
        """`with services.commit(namespace_id):` around every state change that Dropbox counts
        as a commit. It holds the per-namespace write lock for `commit_ms`; if the lock stays
        busy longer than the configured wait it raises TooManyWriteOperations (429)."""
        ...

    def temporary_link(self, blob: Path, name: str) -> str:
        """An https URL on this server that serves `blob` without auth for 4 hours."""
        ...

    def revoke_token(self, access_token: str) -> None:
        """What auth/token/revoke does: this access token and its refresh token end."""
        ...

    def entries_refused(self, count: int) -> None:
        """`count` entries of a batch lost the namespace: each is a too_many_write_operations
        failure inside a successful result (counted in GET /_emulator/realism)."""
        ...

    def route_form_contention(self, batch: bool) -> bool:
        """Whether a commit that lost (TooManyWriteOperations) answers in the route's own form:
        for a batch, its entries fail (else the whole call is a 429); for a single commit, a
        409 route error (else a 429). Drawn from the realism settings."""
        ...

    def run_job(self, kind: str, validator: Any, work: Callable[[], object]) -> str:
        """An async job id: `work()` makes its final status (a value of `validator`'s union),
        now or, when jobs stay in progress (`job_in_progress_s`), on a worker thread after that
        delay; until then the job's /check answers `in_progress`."""
        ...

    def entry_failure(self, call: Call, tags: tuple[str, ...]) -> Optional[str]:
        """Asked once per entry of a batch (finish_batch*, append_batch): the tag, one of
        `tags` (the route's per-entry error union), that an injected `entry_failure` fault makes
        that entry answer, or None (apply it normally)."""
        ...


Handler = Callable[[Call, Services], object]
_H = TypeVar("_H", bound=Handler)

# Filled by the handler modules with @route(...); the server looks routes up here.
HANDLERS: dict[str, Handler] = {}


def route(key: str) -> Callable[[_H], _H]:
    """Register a handler for `key`, the ROUTES key of the SDK (e.g. "files/delete:2")."""

    def register(handler: _H) -> _H:
        HANDLERS[key] = handler
        return handler

    return register
