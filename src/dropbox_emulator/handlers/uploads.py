"""files/* upload routes: single uploads, upload sessions and (batch) finishes.

Session data is kept by `state.sessions`; a finish assembles it into a blob and places the file
in the tree inside `services.commit(namespace)`, as Dropbox counts one commit per finish (and one
per namespace for a whole batch).
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from typing import Optional

from dropbox import files

from dropbox_emulator.handlers.contract import (
    MAX_PAYLOAD,
    BadInput,
    Call,
    RouteError,
    Services,
    TooManyWriteOperations,
    route,
)
from dropbox_emulator.handlers.shared import (
    WRITE_BUSY,
    Location,
    contended,
    load_job,
    session_append_batch_error,
    session_append_error,
    session_finish_error,
    shown,
    write_error,
    write_location,
)
from dropbox_emulator.state import paths
from dropbox_emulator.state.blobs import EMPTY_HASH, Body
from dropbox_emulator.state.metadata import file_metadata, void
from dropbox_emulator.state.sessions import BatchAppend, NeedsAssembly, SessionFailure
from dropbox_emulator.state.tree import FileCommit, WriteFailure

MAX_BATCH_SESSIONS = 1000  # start_batch's num_sessions: UInt64(min_value=1, max_value=1000)
# Void tags of UploadSessionAppendBatchEntryError an injected `entry_failure` fault may give an
# entry of append_batch (`incorrect_offset` carries a value, so only real offsets make it).
APPEND_ENTRY_FAILURES = ("not_found", "closed", "too_large")
_FINISH_BATCH_JOB = "finish_batch"
# Void tags of UploadSessionFinishError that Dropbox answers for single entries of a batch.
FINISH_ENTRY_FAILURES = ("too_many_write_operations", "too_many_shared_folder_targets")
# Entries prepared, and placed, per SQLite commit in a batch: one commit per entry rewrote the
# same index pages to the WAL each time; a chunk keeps the database lock (which every other
# request needs) for only a few milliseconds.
_COMMIT_CHUNK = 50


def _check_body(call: Call, content_hash: Optional[str]) -> Optional[str]:
    """The problem tag with this call's body, if any (content hash, per-request cap)."""
    body = call.body
    size = body.size if body is not None else 0
    if size > MAX_PAYLOAD:
        return "payload_too_large"
    if content_hash is not None:
        actual = body.content_hash if body is not None else EMPTY_HASH
        if content_hash != actual:
            return "content_hash_mismatch"
    return None


def _file_commit(
    info: files.CommitInfo, location: Location, content_hash: str, size: int
) -> FileCommit:
    """`info` is a CommitInfo or an UploadArg (which extends it)."""
    mode = info.mode
    return FileCommit(
        path_display=location.path_display,
        content_hash=content_hash,
        size=size,
        client_modified=info.client_modified,
        mode="overwrite" if mode.is_overwrite() else "update" if mode.is_update() else "add",
        update_rev=mode.get_update() if mode.is_update() else None,
        autorename=bool(info.autorename),
        strict_conflict=bool(info.strict_conflict),
    )


@route("files/upload")
def upload(call: Call, services: Services) -> files.FileMetadata:
    arg: files.UploadArg = call.arg
    store = services.store
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(void(files.UploadError, problem))
    body = call.body
    size = body.size if body is not None else 0

    def failed(error: files.WriteError, content_hash: Optional[str]) -> RouteError:
        # Dropbox keeps the bytes in a closed session so the client can finish elsewhere.
        session_id = store.sessions.from_blob(content_hash, size, body)
        return RouteError(
            files.UploadError.path(
                files.UploadWriteFailed(reason=error, upload_session_id=session_id)
            )
        )

    try:
        location = write_location(store, call, arg.path)
    except paths.PathProblem as problem_path:
        raise failed(write_error(problem_path), None) from None
    content_hash = store.blobs.keep(body) if body is not None else store.blobs.empty()
    try:
        with services.commit(location.ns):
            entry = store.tree.commit_file(
                location.ns, _file_commit(arg, location, content_hash, size)
            )
    except WriteFailure as failure:
        raise failed(write_error(failure), content_hash) from None
    except TooManyWriteOperations:
        # The 409 form keeps the bytes in a session, as every UploadWriteFailed does.
        if services.route_form_contention(batch=False):
            raise failed(WRITE_BUSY, content_hash) from None
        raise
    return file_metadata(shown(call, entry))


@route("files/upload_session/start")
def upload_session_start(call: Call, services: Services) -> files.UploadSessionStartResult:
    arg: files.UploadSessionStartArg = call.arg
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(void(files.UploadSessionStartError, problem))
    concurrent = arg.session_type is not None and arg.session_type.is_concurrent()
    if concurrent and call.body is not None and call.body.size:
        raise RouteError(void(files.UploadSessionStartError, "concurrent_session_data_not_allowed"))
    if concurrent and arg.close:
        raise RouteError(
            void(files.UploadSessionStartError, "concurrent_session_close_not_allowed")
        )
    session_id = services.store.sessions.start(
        "concurrent" if concurrent else "sequential", bool(arg.close), call.body
    )
    return files.UploadSessionStartResult(session_id=session_id)


@route("files/upload_session/start_batch")
def upload_session_start_batch(
    call: Call, services: Services
) -> files.UploadSessionStartBatchResult:
    arg: files.UploadSessionStartBatchArg = call.arg
    if not 1 <= arg.num_sessions <= MAX_BATCH_SESSIONS:
        raise BadInput("request body: num_sessions: must be between 1 and 1000")
    concurrent = arg.session_type is not None and arg.session_type.is_concurrent()
    sessions = services.store.sessions
    kind = "concurrent" if concurrent else "sequential"
    ids = [sessions.start(kind, False, None) for _ in range(arg.num_sessions)]
    return files.UploadSessionStartBatchResult(session_ids=ids)


def _append(
    call: Call,
    services: Services,
    cursor: files.UploadSessionCursor,
    close: bool,
    content_hash: Optional[str],
) -> None:
    problem = _check_body(call, content_hash)
    if problem is not None:
        raise RouteError(void(files.UploadSessionAppendError, problem))
    try:
        services.store.sessions.append(cursor.session_id, cursor.offset, close, call.body)
    except SessionFailure as failure:
        raise RouteError(session_append_error(failure)) from None


@route("files/upload_session/append:2")
def upload_session_append_v2(call: Call, services: Services) -> None:
    arg: files.UploadSessionAppendArg = call.arg
    _append(call, services, arg.cursor, bool(arg.close), arg.content_hash)


@route("files/upload_session/append")
def upload_session_append(call: Call, services: Services) -> None:
    arg: files.UploadSessionCursor = call.arg
    _append(call, services, arg, False, None)


@route("files/upload_session/append_batch")
def upload_session_append_batch(
    call: Call, services: Services
) -> files.UploadSessionAppendBatchResult:
    """Each entry's `length` bytes of the body, in the entries' order, go to its session.

    Sources (the SDK's stone docstrings of `files_upload_session_append_batch` and its types;
    dropbox-api.md §2.1, §3.1): at most 500 entries (`bv.List(..., max_items=500)`, refused by
    strict decoding); "A single request should not upload more than 150 MiB"
    (→ `payload_too_large`, answered by the HTTP layer from Content-Length before the body is
    read, as for every upload route); "The total length of the content received ... does not
    match the total of the provided lengths" → `length_mismatch`; "A single hash of all the
    concatenated file contents uploaded in this call" → `content_hash_mismatch`. Nothing is
    appended when the call fails as a whole. Otherwise every entry answers on its own,
    "at the same position" (`UploadSessionAppendBatchResult.entries`): `not_found`,
    `incorrect_offset` with `correct_offset`, `closed`, `too_large`, and for concurrent sessions
    `concurrent_session_invalid_offset` / `concurrent_session_invalid_data_size` (offsets and
    non-closing lengths multiples of 4 MiB), the same rules as `append_v2`; the other entries
    are appended all the same. Appending session data takes no namespace lock (no commit), as
    for append_v2. Rate limit: one request of the per-token budget, like any other call —
    Dropbox does not publish whether a batch costs more. Which whole-call check comes first is
    not documented either: lengths, then the hash."""
    arg: files.UploadSessionAppendBatchArg = call.arg
    body = call.body
    size = body.size if body is not None else 0
    if size > MAX_PAYLOAD:
        raise RouteError(void(files.UploadSessionAppendBatchError, "payload_too_large"))
    if sum(entry.length for entry in arg.entries) != size:
        raise RouteError(void(files.UploadSessionAppendBatchError, "length_mismatch"))
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(void(files.UploadSessionAppendBatchError, problem))
    injected: dict[int, str] = {}
    for index in range(len(arg.entries)):
        tag = services.entry_failure(call, APPEND_ENTRY_FAILURES)
        if tag is not None:  # a fault: this entry's bytes are not appended
            injected[index] = tag
    appends = [
        BatchAppend(e.cursor.session_id, e.cursor.offset, e.length, bool(e.close))
        for e in arg.entries
    ]
    outcomes = services.store.sessions.append_batch(appends, body, skip=frozenset(injected))
    outcome = files.UploadSessionAppendBatchResultEntry
    results = []
    for index, failure in enumerate(outcomes):
        if index in injected:
            error = void(files.UploadSessionAppendBatchEntryError, injected[index])
            results.append(outcome.failure(error))
        elif failure is None:
            results.append(outcome.success)
        else:
            results.append(outcome.failure(session_append_batch_error(failure)))
    return files.UploadSessionAppendBatchResult(entries=results)


@dataclasses.dataclass
class _Prepared:
    """A finish entry whose data is assembled, waiting for the commit."""

    session_id: str
    location: Location
    commit: FileCommit


class _FinishFailed(Exception):
    def __init__(self, error: files.UploadSessionFinishError):
        super().__init__(repr(error))
        self.error = error


def _prepare_finish(
    call: Call,
    services: Services,
    arg: files.UploadSessionFinishArg,
    body: Optional[Body],
    require_closed: bool,
    assemble: bool = True,
) -> _Prepared:
    """Validate a session for finishing and assemble its data; raises RouteError-ready
    `files.UploadSessionFinishError` values wrapped in _FinishFailed (and NeedsAssembly, see
    `Sessions.finish_data`)."""
    store = services.store
    try:
        content_hash, size = store.sessions.finish_data(
            arg.cursor.session_id, arg.cursor.offset, body, require_closed, assemble
        )
    except SessionFailure as failure:
        raise _FinishFailed(session_finish_error(failure)) from None
    try:
        location = write_location(store, call, arg.commit.path)
    except paths.PathProblem as problem:
        raise _FinishFailed(files.UploadSessionFinishError.path(write_error(problem))) from None
    return _Prepared(
        arg.cursor.session_id, location, _file_commit(arg.commit, location, content_hash, size)
    )


def _commit_prepared(call: Call, services: Services, prepared: _Prepared) -> files.FileMetadata:
    """Place a prepared file (caller holds the namespace commit); raises _FinishFailed."""
    try:
        entry = services.store.finish_upload(
            prepared.location.ns, prepared.commit, prepared.session_id
        )
    except WriteFailure as failure:
        raise _FinishFailed(files.UploadSessionFinishError.path(write_error(failure))) from None
    return file_metadata(shown(call, entry))


@route("files/upload_session/finish")
def upload_session_finish(call: Call, services: Services) -> files.FileMetadata:
    arg: files.UploadSessionFinishArg = call.arg
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(void(files.UploadSessionFinishError, problem))
    with services.store.sessions.lock(arg.cursor.session_id):
        try:
            prepared = _prepare_finish(call, services, arg, call.body, require_closed=False)
            with services.commit(prepared.location.ns):
                return _commit_prepared(call, services, prepared)
        except _FinishFailed as failed:
            raise RouteError(failed.error) from None
        except TooManyWriteOperations as busy:
            error = files.UploadSessionFinishError.too_many_write_operations
            raise contended(services, busy, error) from None


def _prepare_batch(
    call: Call,
    services: Services,
    entries: list[files.UploadSessionFinishArg],
    results: list[Optional[files.UploadSessionFinishBatchResultEntry]],
) -> list[tuple[int, _Prepared]]:
    """Prepare every entry (faults and failures go to `results`); caller holds the sessions'
    locks."""
    outcome = files.UploadSessionFinishBatchResultEntry
    prepared: list[tuple[int, _Prepared]] = []
    # Prepared in chunks of one SQLite commit each; sessions whose pieces must be
    # concatenated wait until after their chunk, so no assembly holds the database lock.
    later: list[int] = []
    for first in range(0, len(entries), _COMMIT_CHUNK):
        with services.store.transaction():
            for index in range(first, min(first + _COMMIT_CHUNK, len(entries))):
                injected = services.entry_failure(call, FINISH_ENTRY_FAILURES)
                if injected is not None:  # a fault: uncommitted, its session stays open
                    error = void(files.UploadSessionFinishError, injected)
                    results[index] = outcome.failure(error)
                    continue
                try:
                    item = _prepare_finish(call, services, entries[index], None, True, False)
                except _FinishFailed as failed:
                    results[index] = outcome.failure(failed.error)
                except NeedsAssembly:
                    later.append(index)
                else:
                    prepared.append((index, item))
        for index in later:
            try:
                prepared.append(
                    (index, _prepare_finish(call, services, entries[index], None, True))
                )
            except _FinishFailed as failed:
                results[index] = outcome.failure(failed.error)
        later.clear()
    prepared.sort(key=lambda pair: pair[0])  # commits follow the entries' order
    return prepared


def _finish_batch(
    call: Call, services: Services, entries: list[files.UploadSessionFinishArg]
) -> list[files.UploadSessionFinishBatchResultEntry]:
    """Finish every entry; all placements happen inside one commit (per namespace)."""
    outcome = files.UploadSessionFinishBatchResultEntry
    results: list[Optional[files.UploadSessionFinishBatchResultEntry]] = [None] * len(entries)
    with ExitStack() as locks:
        for session_id in sorted({entry.cursor.session_id for entry in entries}):
            locks.enter_context(services.store.sessions.lock(session_id))
        prepared = _prepare_batch(call, services, entries, results)
        per_entry: Optional[bool] = None  # drawn at the first lost namespace
        # One commit per namespace: entries of a namespace that is busy fail, the others commit
        # (sdk-js#270: a finish_batch answered with per-entry too_many_write_operations).
        for ns in sorted({item.location.ns for _, item in prepared}):
            group = [(index, item) for index, item in prepared if item.location.ns == ns]
            try:
                with services.commit(ns):
                    for first in range(0, len(group), _COMMIT_CHUNK):
                        with services.store.transaction():
                            for index, item in group[first : first + _COMMIT_CHUNK]:
                                try:
                                    placed = _commit_prepared(call, services, item)
                                except _FinishFailed as failed:
                                    results[index] = outcome.failure(failed.error)
                                else:
                                    results[index] = outcome.success(placed)
            except TooManyWriteOperations:
                if per_entry is None:
                    # A whole-call 429 only while nothing of this batch is committed yet.
                    committed = any(r is not None and r.is_success() for r in results)
                    per_entry = committed or services.route_form_contention(batch=True)
                if not per_entry:
                    raise
                busy = outcome.failure(files.UploadSessionFinishError.too_many_write_operations)
                for index, _ in group:  # uncommitted, their sessions stay open for a retry
                    results[index] = busy
                services.entries_refused(len(group))
    return [result for result in results if result is not None]


@route("files/upload_session/finish_batch:2")
def upload_session_finish_batch_v2(
    call: Call, services: Services
) -> files.UploadSessionFinishBatchResult:
    arg: files.UploadSessionFinishBatchArg = call.arg
    return files.UploadSessionFinishBatchResult(entries=_finish_batch(call, services, arg.entries))


@route("files/upload_session/finish_batch")
def upload_session_finish_batch(
    call: Call, services: Services
) -> files.UploadSessionFinishBatchLaunch:
    arg: files.UploadSessionFinishBatchArg = call.arg

    def run() -> files.UploadSessionFinishBatchJobStatus:
        # A job cannot answer 429: a batch whose namespace is busy fails entry by entry.
        try:
            entries = _finish_batch(call, services, arg.entries)
        except TooManyWriteOperations:
            busy = files.UploadSessionFinishBatchResultEntry.failure(
                files.UploadSessionFinishError.too_many_write_operations
            )
            entries = [busy for _ in arg.entries]
            services.entries_refused(len(entries))
        return files.UploadSessionFinishBatchJobStatus.complete(
            files.UploadSessionFinishBatchResult(entries=entries)
        )

    # Dropbox runs this as a job that may stay in_progress for minutes (rclone#5008).
    job_id = services.run_job(
        _FINISH_BATCH_JOB, files.UploadSessionFinishBatchJobStatus_validator, run
    )
    return files.UploadSessionFinishBatchLaunch.async_job_id(job_id)


@route("files/upload_session/finish_batch/check")
def upload_session_finish_batch_check(
    call: Call, services: Services
) -> files.UploadSessionFinishBatchJobStatus:
    return load_job(
        services, call, _FINISH_BATCH_JOB, files.UploadSessionFinishBatchJobStatus_validator
    )
