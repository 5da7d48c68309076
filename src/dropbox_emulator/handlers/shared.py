"""What the files/* handlers share: resolving path arguments, mapping state failures onto the
SDK's error unions, commits over several namespaces, and async jobs."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from typing import Any, Optional

from dropbox import async_, files
from dropbox import stone_base as bb
from dropbox import stone_serializers as serializers
from dropbox import stone_validators as bv

from dropbox_emulator.handlers.contract import (
    BadInput,
    Call,
    RouteError,
    Services,
    TooManyWriteOperations,
)
from dropbox_emulator.state import paths
from dropbox_emulator.state.metadata import void
from dropbox_emulator.state.namespaces import NAMESPACES, mount_at, namespace_of, present, resolve
from dropbox_emulator.state.sessions import SessionFailure
from dropbox_emulator.state.store import Store
from dropbox_emulator.state.tree import Entry, LookupFailure, WriteFailure

ROOT_AS_SLASH = 'request body: path: Specify the root folder as an empty string rather than as "/".'
ROOT_UNSUPPORTED = "request body: path: The root folder is unsupported."

# Finish-only failures; the other SessionFailure tags are UploadSessionLookupError members.
_FINISH_TAGS = (
    "concurrent_session_data_not_allowed",
    "concurrent_session_not_closed",
    "concurrent_session_missing_data",
)


# --------------------------------------------------------------------------- error mapping


def lookup_error(tag: str) -> files.LookupError:
    if tag == "malformed_path":
        return files.LookupError.malformed_path(None)
    return void(files.LookupError, tag)


def write_error(failure: Exception) -> files.WriteError:
    if isinstance(failure, paths.PathProblem):
        if failure.disallowed:
            return void(files.WriteError, "disallowed_name")
        return files.WriteError.malformed_path(None)
    assert isinstance(failure, WriteFailure)
    if failure.tag == "conflict":
        return files.WriteError.conflict(void(files.WriteConflictError, failure.conflict or "file"))
    if failure.tag == "malformed_path":
        return files.WriteError.malformed_path(None)
    return void(files.WriteError, failure.tag)


def session_lookup_error(failure: SessionFailure) -> files.UploadSessionLookupError:
    if failure.tag == "incorrect_offset":
        return files.UploadSessionLookupError.incorrect_offset(
            files.UploadSessionOffsetError(correct_offset=failure.correct_offset)
        )
    return void(files.UploadSessionLookupError, failure.tag)


def session_append_error(failure: SessionFailure) -> files.UploadSessionAppendError:
    if failure.tag == "incorrect_offset":
        return files.UploadSessionAppendError.incorrect_offset(
            files.UploadSessionOffsetError(correct_offset=failure.correct_offset)
        )
    return void(files.UploadSessionAppendError, failure.tag)


def session_append_batch_error(failure: SessionFailure) -> files.UploadSessionAppendBatchEntryError:
    if failure.tag == "incorrect_offset":
        return files.UploadSessionAppendBatchEntryError.incorrect_offset(
            files.UploadSessionOffsetError(correct_offset=failure.correct_offset)
        )
    return void(files.UploadSessionAppendBatchEntryError, failure.tag)


def session_finish_error(failure: SessionFailure) -> files.UploadSessionFinishError:
    if failure.tag in _FINISH_TAGS:
        return void(files.UploadSessionFinishError, failure.tag)
    return files.UploadSessionFinishError.lookup_failed(session_lookup_error(failure))


# --------------------------------------------------------------------------- path resolution


@dataclasses.dataclass
class Location:
    """Where a path argument points: namespace, lower/display path, and the row there (any
    kind, incl. a deletion marker) if there is one."""

    ns: str
    path_display: str
    entry: Optional[Entry]
    # The mount point's folder in the team root when the path names one exactly (then `ns` is
    # the mounted namespace and `path_display` its root "").
    mount: Optional[Entry] = None

    @property
    def path_lower(self) -> str:
        return self.path_display.lower()


def locate(store: Store, call: Call, raw: str) -> Location:
    """Resolve a `/path`, `ns:<id>/path` or `id:` argument; raises LookupFailure."""
    try:
        target = paths.parse(raw)
    except paths.PathProblem:
        raise LookupFailure("malformed_path") from None
    if target.kind == "rev":
        raise LookupFailure("malformed_path")
    if target.kind == "id":
        assert target.file_id is not None
        base = store.tree.get_by_id(target.file_id)
        if base is None:
            raise LookupFailure("not_found")
        display = base.path_display + target.path
        return Location(base.ns, display, store.tree.get(base.ns, display.lower()))
    ns = target.ns if target.ns is not None else namespace_of(call.path_root)
    if ns not in NAMESPACES:
        raise LookupFailure("not_found")
    mount = store.tree.get(ns, target.path.lower()) if mount_at(ns, target.path.lower()) else None
    ns, path = resolve(ns, target.path)
    entry = store.tree.get(ns, path.lower()) if path else None
    return Location(ns, path, entry, mount)


def read_entry(store: Store, call: Call, raw: str) -> Entry:
    """A live file/folder (or a revision for `rev:`) for read routes; raises LookupFailure."""
    if raw.startswith("rev:"):
        try:
            target = paths.parse(raw)
        except paths.PathProblem:
            raise LookupFailure("malformed_path") from None
        assert target.rev is not None
        revision = store.tree.get_revision(target.rev)
        if revision is None:
            raise LookupFailure("not_found")
        return revision
    location = locate(store, call, raw)
    if location.entry is None or location.entry.kind == "deleted":
        raise LookupFailure("not_found")
    return location.entry


def write_location(store: Store, call: Call, raw: str) -> Location:
    """Resolve a path to be written; raises PathProblem (malformed/disallowed)."""
    if raw.startswith("id:"):
        try:
            location = locate(store, call, raw)
        except LookupFailure:
            raise paths.PathProblem("unknown id") from None
        paths.check_writable(location.path_display)
        return location
    target = paths.parse(raw)
    if target.kind != "path" or not target.path:
        raise paths.PathProblem("not a writable path")
    ns = target.ns if target.ns is not None else namespace_of(call.path_root)
    if ns not in NAMESPACES:
        raise paths.PathProblem("unknown namespace")
    paths.check_writable(target.path)
    ns, path = resolve(ns, target.path)
    if not path:
        raise paths.PathProblem("a mount point is not a writable path")
    return Location(ns, path, None)


def shown(call: Call, entry: Entry) -> Entry:
    """The row with `path_display`/`path_lower` relative to the call's path root."""
    return present(namespace_of(call.path_root), entry)


def check_root_slash(raw: str, message: str) -> None:
    if raw == "/":
        raise BadInput(message)


def commit_namespaces(services: Services, namespaces: set[str]) -> ExitStack:
    """Enter one commit per namespace, in a fixed order (no lock-order inversions)."""
    stack = ExitStack()
    try:
        for ns in sorted(namespaces):
            stack.enter_context(services.commit(ns))
    except BaseException:
        stack.close()
        raise
    return stack


def contended(services: Services, busy: TooManyWriteOperations, error: bb.Union) -> Exception:
    """What a single-item commit that lost the namespace raises: its route's 409 `error` (the
    stone unions have it: WriteError/DeleteError/UploadSessionFinishError
    .too_many_write_operations, "There are too many write operations in user's Dropbox. Please
    retry this request.") or the 429 itself, as the realism settings choose."""
    return RouteError(error) if services.route_form_contention(batch=False) else busy


WRITE_BUSY = files.WriteError.too_many_write_operations


# --------------------------------------------------------------------------- async jobs


def load_job(services: Services, call: Call, kind: str, validator: bv.Validator) -> Any:
    """The job's status: `in_progress` while it runs (`job_in_progress_s`), then its result."""
    arg: async_.PollArg = call.arg
    stored = services.store.jobs.get(arg.async_job_id, kind)
    if stored is None:
        raise RouteError(void(async_.PollError, "invalid_async_job_id"))
    if not stored:
        return validator.definition.in_progress
    return serializers.json_decode(validator, stored)
