"""files/* routes: Dropbox's file semantics on top of `store.Store`.

Each handler turns the decoded arg into store operations, wraps every state change Dropbox
counts as a commit in `call.commit(namespace)`, and maps failures onto the route's error union.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from typing import Any, Optional

from dropbox import async_, files
from dropbox import stone_serializers as serializers

from dropbox_emulator import paths
from dropbox_emulator.api import (
    BadInput,
    Call,
    DownloadResult,
    RouteError,
    TooManyWriteOperations,
    route,
)
from dropbox_emulator.metadata import file_metadata, folder_metadata, metadata
from dropbox_emulator.namespaces import call_namespace
from dropbox_emulator.store import (
    EMPTY_HASH,
    NAMESPACES,
    Entry,
    FileCommit,
    LookupFailure,
    RelocationFailure,
    RevisionNotFound,
    SessionFailure,
    Store,
    UnknownCursor,
    WriteFailure,
    parse_time,
)

MAX_REQUEST_BYTES = 150 * 1024 * 1024
DEFAULT_LIST_LIMIT = 2000
MAX_BATCH_SESSIONS = 1000
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
    return getattr(files.LookupError, tag)


def write_error(failure: Exception) -> files.WriteError:
    if isinstance(failure, paths.PathProblem):
        if failure.disallowed:
            return files.WriteError.disallowed_name
        return files.WriteError.malformed_path(None)
    assert isinstance(failure, WriteFailure)
    if failure.tag == "conflict":
        return files.WriteError.conflict(
            getattr(files.WriteConflictError, failure.conflict or "file")
        )
    if failure.tag == "malformed_path":
        return files.WriteError.malformed_path(None)
    return getattr(files.WriteError, failure.tag)


def session_lookup_error(failure: SessionFailure) -> files.UploadSessionLookupError:
    if failure.tag == "incorrect_offset":
        return files.UploadSessionLookupError.incorrect_offset(
            files.UploadSessionOffsetError(correct_offset=failure.correct_offset)
        )
    return getattr(files.UploadSessionLookupError, failure.tag)


def session_append_error(failure: SessionFailure) -> files.UploadSessionAppendError:
    if failure.tag == "incorrect_offset":
        return files.UploadSessionAppendError.incorrect_offset(
            files.UploadSessionOffsetError(correct_offset=failure.correct_offset)
        )
    return getattr(files.UploadSessionAppendError, failure.tag)


def session_finish_error(failure: SessionFailure) -> files.UploadSessionFinishError:
    if failure.tag in _FINISH_TAGS:
        return getattr(files.UploadSessionFinishError, failure.tag)
    return files.UploadSessionFinishError.lookup_failed(session_lookup_error(failure))


# --------------------------------------------------------------------------- path resolution


def _store(call: Call) -> Store:
    return call.store


@dataclasses.dataclass
class Location:
    """Where a path argument points: namespace, lower/display path, and the row there (any
    kind, incl. a deletion marker) if there is one."""

    ns: str
    path_display: str
    entry: Optional[Entry]

    @property
    def path_lower(self) -> str:
        return self.path_display.lower()


def locate(call: Call, raw: str) -> Location:
    """Resolve a `/path`, `ns:<id>/path` or `id:` argument; raises LookupFailure."""
    store = _store(call)
    try:
        target = paths.parse(raw)
    except paths.PathProblem:
        raise LookupFailure("malformed_path") from None
    if target.kind == "rev":
        raise LookupFailure("malformed_path")
    if target.kind == "id":
        assert target.file_id is not None
        base = store.get_by_id(target.file_id)
        if base is None:
            raise LookupFailure("not_found")
        display = base.path_display + target.path
        return Location(base.ns, display, store.get(base.ns, display.lower()))
    ns = target.ns if target.ns is not None else call_namespace(call)
    if ns not in NAMESPACES:
        raise LookupFailure("not_found")
    entry = store.get(ns, target.path.lower()) if target.path else None
    return Location(ns, target.path, entry)


def read_entry(call: Call, raw: str) -> Entry:
    """A live file/folder (or a revision for `rev:`) for read routes; raises LookupFailure."""
    if raw.startswith("rev:"):
        try:
            target = paths.parse(raw)
        except paths.PathProblem:
            raise LookupFailure("malformed_path") from None
        assert target.rev is not None
        revision = _store(call).get_revision(target.rev)
        if revision is None:
            raise LookupFailure("not_found")
        return revision
    location = locate(call, raw)
    if location.entry is None or location.entry.kind == "deleted":
        raise LookupFailure("not_found")
    return location.entry


def write_location(call: Call, raw: str) -> Location:
    """Resolve a path to be written; raises PathProblem (malformed/disallowed)."""
    if raw.startswith("id:"):
        try:
            location = locate(call, raw)
        except LookupFailure:
            raise paths.PathProblem("unknown id") from None
        paths.check_writable(location.path_display)
        return location
    target = paths.parse(raw)
    if target.kind != "path" or not target.path:
        raise paths.PathProblem("not a writable path")
    ns = target.ns if target.ns is not None else call_namespace(call)
    if ns not in NAMESPACES:
        raise paths.PathProblem("unknown namespace")
    paths.check_writable(target.path)
    return Location(ns, target.path, None)


def _check_root_slash(raw: str, message: str) -> None:
    if raw == "/":
        raise BadInput(message)


def _commit_namespaces(call: Call, namespaces: set[str]) -> ExitStack:
    """Enter one commit per namespace, in a fixed order (no lock-order inversions)."""
    stack = ExitStack()
    try:
        for ns in sorted(namespaces):
            stack.enter_context(call.commit(ns))
    except BaseException:
        stack.close()
        raise
    return stack


# --------------------------------------------------------------------------- metadata


@route("files/get_metadata")
def get_metadata(call: Call) -> Any:
    arg: files.GetMetadataArg = call.arg
    _check_root_slash(arg.path, ROOT_UNSUPPORTED)
    try:
        if arg.path.startswith("rev:"):
            return file_metadata(read_entry(call, arg.path))
        location = locate(call, arg.path)
        if not location.path_display:
            raise BadInput(ROOT_UNSUPPORTED)
        entry = location.entry
        if entry is None or (entry.kind == "deleted" and not arg.include_deleted):
            raise LookupFailure("not_found")
        return metadata(entry)
    except LookupFailure as failure:
        raise RouteError(files.GetMetadataError.path(lookup_error(failure.tag))) from None


def _page_result(page: Any) -> files.ListFolderResult:
    return files.ListFolderResult(
        entries=[metadata(entry) for entry in page.entries],
        cursor=page.cursor,
        has_more=page.has_more,
    )


def _listing_folder(call: Call, raw: str) -> Location:
    _check_root_slash(raw, ROOT_AS_SLASH)
    location = locate(call, raw)
    if location.path_display:
        entry = location.entry
        if entry is None or entry.kind == "deleted":
            raise LookupFailure("not_found")
        if entry.kind == "file":
            raise LookupFailure("not_folder")
        location.path_display = entry.path_display
    return location


def _listing_request(call: Call) -> tuple[str, str, bool, bool, int]:
    """What list_folder and get_latest_cursor share: the folder (it must exist) and options."""
    arg: files.ListFolderArg = call.arg
    try:
        folder = _listing_folder(call, arg.path)
    except LookupFailure as failure:
        raise RouteError(files.ListFolderError.path(lookup_error(failure.tag))) from None
    limit = arg.limit or DEFAULT_LIST_LIMIT
    return folder.ns, folder.path_lower, arg.recursive, arg.include_deleted, limit


@route("files/list_folder")
def list_folder(call: Call) -> files.ListFolderResult:
    return _page_result(_store(call).list_folder(*_listing_request(call)))


@route("files/list_folder/get_latest_cursor")
def list_folder_get_latest_cursor(call: Call) -> files.ListFolderGetLatestCursorResult:
    cursor = _store(call).latest_cursor(*_listing_request(call))
    return files.ListFolderGetLatestCursorResult(cursor=cursor)


@route("files/list_folder/continue")
def list_folder_continue(call: Call) -> files.ListFolderResult:
    arg: files.ListFolderContinueArg = call.arg
    try:
        page = _store(call).list_folder_continue(arg.cursor)
    except UnknownCursor:
        if arg.cursor.startswith("AAE"):
            # One of ours, forgotten (e.g. after a reset): the client must list again.
            raise RouteError(files.ListFolderContinueError.reset) from None
        raise BadInput('Invalid "cursor" parameter') from None
    return _page_result(page)


LONGPOLL_STEP_S = 0.2


@route("files/list_folder/longpoll")
def list_folder_longpoll(call: Call) -> files.ListFolderLongpollResult:
    """Wait (up to `timeout` seconds) until the cursor's folder changes."""
    arg: files.ListFolderLongpollArg = call.arg
    store = _store(call)
    deadline = time.monotonic() + (arg.timeout or 30)
    while True:
        try:
            changed = store.has_changes(arg.cursor)
        except UnknownCursor:
            raise RouteError(files.ListFolderLongpollError.reset) from None
        remaining = deadline - time.monotonic()
        if changed or remaining <= 0:
            return files.ListFolderLongpollResult(changes=changed)
        time.sleep(min(LONGPOLL_STEP_S, remaining))


# --------------------------------------------------------------------------- uploads


def _check_body(call: Call, content_hash: Optional[str]) -> Optional[str]:
    """The problem tag with this call's body, if any (content hash, per-request cap)."""
    body = call.body
    size = body.size if body is not None else 0
    if size > MAX_REQUEST_BYTES:
        return "payload_too_large"
    if content_hash is not None:
        actual = body.content_hash if body is not None else _EMPTY_HASH
        if content_hash != actual:
            return "content_hash_mismatch"
    return None


_EMPTY_HASH = EMPTY_HASH


def _file_commit(info: Any, location: Location, content_hash: str, size: int) -> FileCommit:
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
def upload(call: Call) -> files.FileMetadata:
    arg: files.UploadArg = call.arg
    store = _store(call)
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(getattr(files.UploadError, problem))
    body = call.body
    size = body.size if body is not None else 0

    def failed(error: files.WriteError, content_hash: Optional[str]) -> RouteError:
        # Dropbox keeps the bytes in a closed session so the client can finish elsewhere.
        session_id = store.session_from_blob(content_hash, size, body)
        return RouteError(
            files.UploadError.path(
                files.UploadWriteFailed(reason=error, upload_session_id=session_id)
            )
        )

    try:
        location = write_location(call, arg.path)
    except paths.PathProblem as problem_path:
        raise failed(write_error(problem_path), None) from None
    content_hash = store.store_body(body) if body is not None else store.empty_blob()
    try:
        with call.commit(location.ns):
            entry = store.commit_file(location.ns, _file_commit(arg, location, content_hash, size))
    except WriteFailure as failure:
        raise failed(write_error(failure), content_hash) from None
    return file_metadata(entry)


@route("files/upload_session/start")
def upload_session_start(call: Call) -> files.UploadSessionStartResult:
    arg: files.UploadSessionStartArg = call.arg
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(getattr(files.UploadSessionStartError, problem))
    concurrent = arg.session_type is not None and arg.session_type.is_concurrent()
    if concurrent and call.body is not None and call.body.size:
        raise RouteError(files.UploadSessionStartError.concurrent_session_data_not_allowed)
    if concurrent and arg.close:
        raise RouteError(files.UploadSessionStartError.concurrent_session_close_not_allowed)
    session_id = _store(call).session_start(
        "concurrent" if concurrent else "sequential", bool(arg.close), call.body
    )
    return files.UploadSessionStartResult(session_id=session_id)


@route("files/upload_session/start_batch")
def upload_session_start_batch(call: Call) -> files.UploadSessionStartBatchResult:
    arg: files.UploadSessionStartBatchArg = call.arg
    if not 1 <= arg.num_sessions <= MAX_BATCH_SESSIONS:
        raise BadInput("request body: num_sessions: must be between 1 and 1000")
    concurrent = arg.session_type is not None and arg.session_type.is_concurrent()
    store = _store(call)
    kind = "concurrent" if concurrent else "sequential"
    ids = [store.session_start(kind, False, None) for _ in range(arg.num_sessions)]
    return files.UploadSessionStartBatchResult(session_ids=ids)


def _append(call: Call, cursor: files.UploadSessionCursor, close: bool, content_hash: Any) -> None:
    problem = _check_body(call, content_hash)
    if problem is not None:
        raise RouteError(getattr(files.UploadSessionAppendError, problem))
    try:
        _store(call).session_append(cursor.session_id, cursor.offset, close, call.body)
    except SessionFailure as failure:
        raise RouteError(session_append_error(failure)) from None


@route("files/upload_session/append:2")
def upload_session_append_v2(call: Call) -> None:
    arg: files.UploadSessionAppendArg = call.arg
    _append(call, arg.cursor, bool(arg.close), arg.content_hash)


@route("files/upload_session/append")
def upload_session_append(call: Call) -> None:
    arg: files.UploadSessionCursor = call.arg
    _append(call, arg, False, None)


@dataclasses.dataclass
class _Prepared:
    """A finish entry whose data is assembled, waiting for the commit."""

    session_id: str
    location: Location
    commit: FileCommit


def _prepare_finish(
    call: Call, arg: files.UploadSessionFinishArg, body: Any, require_closed: bool
) -> _Prepared:
    """Validate a session for finishing and assemble its data; raises RouteError-ready
    `files.UploadSessionFinishError` values wrapped in _FinishFailed."""
    store = _store(call)
    try:
        content_hash, size = store.session_finish_data(
            arg.cursor.session_id, arg.cursor.offset, body, require_closed
        )
    except SessionFailure as failure:
        raise _FinishFailed(session_finish_error(failure)) from None
    try:
        location = write_location(call, arg.commit.path)
    except paths.PathProblem as problem:
        raise _FinishFailed(files.UploadSessionFinishError.path(write_error(problem))) from None
    return _Prepared(
        arg.cursor.session_id, location, _file_commit(arg.commit, location, content_hash, size)
    )


class _FinishFailed(Exception):
    def __init__(self, error: files.UploadSessionFinishError):
        super().__init__(repr(error))
        self.error = error


def _commit_prepared(call: Call, prepared: _Prepared) -> files.FileMetadata:
    """Place a prepared file (caller holds the namespace commit); raises _FinishFailed."""
    store = _store(call)
    try:
        entry = store.commit_file(
            prepared.location.ns, prepared.commit, finish_session=prepared.session_id
        )
    except WriteFailure as failure:
        raise _FinishFailed(files.UploadSessionFinishError.path(write_error(failure))) from None
    return file_metadata(entry)


@route("files/upload_session/finish")
def upload_session_finish(call: Call) -> files.FileMetadata:
    arg: files.UploadSessionFinishArg = call.arg
    store = _store(call)
    problem = _check_body(call, arg.content_hash)
    if problem is not None:
        raise RouteError(getattr(files.UploadSessionFinishError, problem))
    with store.session_lock(arg.cursor.session_id):
        try:
            prepared = _prepare_finish(call, arg, call.body, require_closed=False)
            with call.commit(prepared.location.ns):
                return _commit_prepared(call, prepared)
        except _FinishFailed as failed:
            raise RouteError(failed.error) from None


def _finish_batch(call: Call, entries: list[files.UploadSessionFinishArg]) -> list[Any]:
    """Finish every entry; all placements happen inside one commit (per namespace)."""
    store = _store(call)
    results: list[Any] = [None] * len(entries)
    prepared: list[tuple[int, _Prepared]] = []
    with ExitStack() as locks:
        for session_id in sorted({entry.cursor.session_id for entry in entries}):
            locks.enter_context(store.session_lock(session_id))
        for index, entry in enumerate(entries):
            injected = call.entry_failure() if call.entry_failure is not None else None
            if injected is not None:  # a fault: this entry stays uncommitted, its session open
                failure = getattr(files.UploadSessionFinishError, injected)
                results[index] = files.UploadSessionFinishBatchResultEntry.failure(failure)
                continue
            try:
                prepared.append((index, _prepare_finish(call, entry, None, True)))
            except _FinishFailed as failed:
                results[index] = files.UploadSessionFinishBatchResultEntry.failure(failed.error)
        if prepared:
            with _commit_namespaces(call, {item.location.ns for _, item in prepared}):
                for index, item in prepared:
                    try:
                        md = _commit_prepared(call, item)
                        results[index] = files.UploadSessionFinishBatchResultEntry.success(md)
                    except _FinishFailed as failed:
                        results[index] = files.UploadSessionFinishBatchResultEntry.failure(
                            failed.error
                        )
    return results


@route("files/upload_session/finish_batch:2")
def upload_session_finish_batch_v2(call: Call) -> files.UploadSessionFinishBatchResult:
    arg: files.UploadSessionFinishBatchArg = call.arg
    return files.UploadSessionFinishBatchResult(entries=_finish_batch(call, arg.entries))


_FINISH_BATCH_JOB = "finish_batch"
_DELETE_BATCH_JOB = "delete_batch"


def _save_job(call: Call, kind: str, validator: Any, status: Any) -> str:
    return _store(call).add_job(kind, serializers.json_encode(validator, status))


def _load_job(call: Call, kind: str, validator: Any) -> Any:
    arg: async_.PollArg = call.arg
    stored = _store(call).get_job(arg.async_job_id, kind)
    if stored is None:
        raise RouteError(async_.PollError.invalid_async_job_id)
    return serializers.json_decode(validator, stored)


@route("files/upload_session/finish_batch")
def upload_session_finish_batch(call: Call) -> files.UploadSessionFinishBatchLaunch:
    arg: files.UploadSessionFinishBatchArg = call.arg
    # Dropbox runs this as a job; here it completes before the launch answers, and
    # /check reports it complete.
    status = files.UploadSessionFinishBatchJobStatus.complete(
        files.UploadSessionFinishBatchResult(entries=_finish_batch(call, arg.entries))
    )
    job_id = _save_job(
        call, _FINISH_BATCH_JOB, files.UploadSessionFinishBatchJobStatus_validator, status
    )
    return files.UploadSessionFinishBatchLaunch.async_job_id(job_id)


@route("files/upload_session/finish_batch/check")
def upload_session_finish_batch_check(call: Call) -> files.UploadSessionFinishBatchJobStatus:
    return _load_job(call, _FINISH_BATCH_JOB, files.UploadSessionFinishBatchJobStatus_validator)


# --------------------------------------------------------------------------- downloads


def _download_entry(call: Call, path: str, rev: Optional[str]) -> Entry:
    if rev is not None:
        revision = _store(call).get_revision(rev)
        if revision is None:
            raise LookupFailure("not_found")
        return revision
    entry = read_entry(call, path)
    if entry.kind != "file":
        raise LookupFailure("not_file")
    return entry


@route("files/download")
def download(call: Call) -> DownloadResult:
    arg: files.DownloadArg = call.arg
    try:
        entry = _download_entry(call, arg.path, arg.rev)
    except LookupFailure as failure:
        raise RouteError(files.DownloadError.path(lookup_error(failure.tag))) from None
    assert entry.content_hash is not None
    return DownloadResult(
        metadata=file_metadata(entry),
        blob=_store(call).blob_path(entry.content_hash),
        size=entry.size or 0,
    )


@route("files/get_temporary_link")
def get_temporary_link(call: Call) -> files.GetTemporaryLinkResult:
    arg: files.GetTemporaryLinkArg = call.arg
    try:
        entry = _download_entry(call, arg.path, None)
    except LookupFailure as failure:
        raise RouteError(files.GetTemporaryLinkError.path(lookup_error(failure.tag))) from None
    assert entry.content_hash is not None
    link = call.temporary_link(_store(call).blob_path(entry.content_hash), entry.name)
    return files.GetTemporaryLinkResult(metadata=file_metadata(entry), link=link)


# --------------------------------------------------------------------------- deletes


def _delete_one(call: Call, arg: files.DeleteArg, commit: bool) -> Entry:
    """Delete one path; raises RouteError-ready DeleteError values wrapped in _DeleteFailed."""
    try:
        location = locate(call, arg.path)
    except LookupFailure as failure:
        raise _DeleteFailed(files.DeleteError.path_lookup(lookup_error(failure.tag))) from None
    if not location.path_display:
        raise _DeleteFailed(files.DeleteError.path_lookup(lookup_error("malformed_path")))
    store = _store(call)
    try:
        if commit:
            with call.commit(location.ns):
                return store.delete(location.ns, location.path_lower, arg.parent_rev)
        return store.delete(location.ns, location.path_lower, arg.parent_rev)
    except LookupFailure as failure:
        raise _DeleteFailed(files.DeleteError.path_lookup(lookup_error(failure.tag))) from None
    except WriteFailure as failure:
        raise _DeleteFailed(files.DeleteError.path_write(write_error(failure))) from None
    except RelocationFailure:
        raise _DeleteFailed(files.DeleteError.too_many_files) from None


class _DeleteFailed(Exception):
    def __init__(self, error: files.DeleteError):
        super().__init__(repr(error))
        self.error = error


@route("files/delete:2")
def delete_v2(call: Call) -> files.DeleteResult:
    arg: files.DeleteArg = call.arg
    try:
        entry = _delete_one(call, arg, commit=True)
    except _DeleteFailed as failed:
        raise RouteError(failed.error) from None
    return files.DeleteResult(metadata=metadata(entry))


@route("files/delete_batch")
def delete_batch(call: Call) -> files.DeleteBatchLaunch:
    arg: files.DeleteBatchArg = call.arg
    namespaces = {call_namespace(call)}
    for entry in arg.entries:
        try:
            namespaces.add(locate(call, entry.path).ns)
        except LookupFailure:
            pass
    results: list[files.DeleteBatchResultEntry] = []
    try:
        # The whole job is one commit, as on Dropbox.
        with _commit_namespaces(call, namespaces):
            for entry in arg.entries:
                try:
                    deleted = _delete_one(call, entry, commit=False)
                    results.append(
                        files.DeleteBatchResultEntry.success(
                            files.DeleteBatchResultData(metadata=metadata(deleted))
                        )
                    )
                except _DeleteFailed as failed:
                    results.append(files.DeleteBatchResultEntry.failure(failed.error))
        status = files.DeleteBatchJobStatus.complete(files.DeleteBatchResult(entries=results))
    except TooManyWriteOperations:
        # The job lost the namespace lock: it fails as a whole, the client retries it.
        status = files.DeleteBatchJobStatus.failed(files.DeleteBatchError.too_many_write_operations)
    job_id = _save_job(call, _DELETE_BATCH_JOB, files.DeleteBatchJobStatus_validator, status)
    return files.DeleteBatchLaunch.async_job_id(job_id)


@route("files/delete_batch/check")
def delete_batch_check(call: Call) -> files.DeleteBatchJobStatus:
    return _load_job(call, _DELETE_BATCH_JOB, files.DeleteBatchJobStatus_validator)


# --------------------------------------------------------------------------- folders, copy, move


@route("files/create_folder:2")
def create_folder_v2(call: Call) -> files.CreateFolderResult:
    arg: files.CreateFolderArg = call.arg
    store = _store(call)
    try:
        location = write_location(call, arg.path)
        with call.commit(location.ns):
            entry = store.create_folder(location.ns, location.path_display, bool(arg.autorename))
    except (paths.PathProblem, WriteFailure) as failure:
        raise RouteError(files.CreateFolderError.path(write_error(failure))) from None
    return files.CreateFolderResult(metadata=folder_metadata(entry))


def _relocate(call: Call, move: bool) -> files.RelocationResult:
    arg: files.RelocationArg = call.arg
    store = _store(call)
    try:
        source = locate(call, arg.from_path)
        if not source.path_display:
            raise LookupFailure("malformed_path")
    except LookupFailure as failure:
        raise RouteError(files.RelocationError.from_lookup(lookup_error(failure.tag))) from None
    try:
        dest = write_location(call, arg.to_path)
    except paths.PathProblem as problem:
        raise RouteError(files.RelocationError.to(write_error(problem))) from None
    namespaces = {dest.ns, source.ns} if move else {dest.ns}
    try:
        with _commit_namespaces(call, namespaces):
            entry = store.relocate(
                source.ns,
                source.path_lower,
                dest.ns,
                dest.path_display,
                bool(arg.autorename),
                move,
            )
    except LookupFailure as failure:
        raise RouteError(files.RelocationError.from_lookup(lookup_error(failure.tag))) from None
    except WriteFailure as failure:
        raise RouteError(files.RelocationError.to(write_error(failure))) from None
    except RelocationFailure as failure:
        raise RouteError(getattr(files.RelocationError, failure.tag)) from None
    return files.RelocationResult(metadata=metadata(entry))


@route("files/copy:2")
def copy_v2(call: Call) -> files.RelocationResult:
    return _relocate(call, move=False)


@route("files/move:2")
def move_v2(call: Call) -> files.RelocationResult:
    return _relocate(call, move=True)


# --------------------------------------------------------------------------- revisions


@route("files/list_revisions")
def list_revisions(call: Call) -> files.ListRevisionsResult:
    arg: files.ListRevisionsArg = call.arg
    # `before_rev` and the result's `has_more` are new in SDK 12.2; 12.0/12.1 (Python < 3.11)
    # can neither send nor serialize them.
    before_rev = getattr(arg, "before_rev", None)
    store = _store(call)
    by_id = arg.mode is not None and arg.mode.is_id()
    try:
        location = locate(call, arg.path)
        if not location.path_display:
            raise LookupFailure("malformed_path")
    except LookupFailure as failure:
        raise RouteError(files.ListRevisionsError.path(lookup_error(failure.tag))) from None
    entry = location.entry
    if entry is not None and entry.kind == "folder":
        raise RouteError(files.ListRevisionsError.path(files.LookupError.not_file))
    if by_id:
        if before_rev is not None:
            raise RouteError(files.ListRevisionsError.before_rev_not_supported)
        revisions = store.revisions_by_id(entry.id) if entry is not None and entry.id else []
    else:
        revisions = store.revisions_by_path(location.ns, location.path_lower)
    if not revisions:
        raise RouteError(files.ListRevisionsError.path(files.LookupError.not_found))
    if before_rev is not None:
        index = next((i for i, r in enumerate(revisions) if r.rev == before_rev), None)
        if index is None:
            raise RouteError(files.ListRevisionsError.invalid_before_rev)
        revisions = revisions[index + 1 :]
    limit = arg.limit or 10
    deleted = entry is None or entry.kind == "deleted"
    result = files.ListRevisionsResult(
        is_deleted=deleted, entries=[file_metadata(r) for r in revisions[:limit]]
    )
    if "has_more" in files.ListRevisionsResult._all_field_names_:
        result.has_more = len(revisions) > limit
    if deleted and entry is not None and entry.server_modified:
        result.server_deleted = parse_time(entry.server_modified)
    return result


@route("files/restore")
def restore(call: Call) -> files.FileMetadata:
    arg: files.RestoreArg = call.arg
    store = _store(call)
    try:
        location = write_location(call, arg.path)
    except paths.PathProblem as problem:
        raise RouteError(files.RestoreError.path_write(write_error(problem))) from None
    try:
        with call.commit(location.ns):
            entry = store.restore(location.ns, location.path_display, arg.rev)
    except RevisionNotFound:
        raise RouteError(files.RestoreError.invalid_revision) from None
    except WriteFailure as failure:
        raise RouteError(files.RestoreError.path_write(write_error(failure))) from None
    return file_metadata(entry)
