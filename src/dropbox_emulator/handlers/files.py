"""files/* routes other than uploads: metadata, listing, downloads, deletes, folders, copy and
move, revisions — Dropbox's file semantics on top of `state.store.Store`.

Each handler turns the decoded arg into store operations, wraps every state change Dropbox
counts as a commit in `services.commit(namespace)`, and maps failures onto the route's error
union.
"""

from __future__ import annotations

import time
from typing import Optional

from dropbox import files

from dropbox_emulator.handlers.contract import (
    BadInput,
    Call,
    DownloadResult,
    RouteError,
    Services,
    TooManyWriteOperations,
    route,
)
from dropbox_emulator.handlers.shared import (
    ROOT_AS_SLASH,
    ROOT_UNSUPPORTED,
    WRITE_BUSY,
    Location,
    check_root_slash,
    commit_namespaces,
    contended,
    load_job,
    locate,
    lookup_error,
    read_entry,
    shown,
    write_error,
    write_location,
)
from dropbox_emulator.state import archive, paths
from dropbox_emulator.state.listing import Page, UnknownCursor
from dropbox_emulator.state.listing import Request as ListingRequest
from dropbox_emulator.state.metadata import Metadata, file_metadata, folder_metadata, metadata, void
from dropbox_emulator.state.namespaces import mounted_in, namespace_of, present
from dropbox_emulator.state.store import Store
from dropbox_emulator.state.tree import (
    Entry,
    LookupFailure,
    RelocationFailure,
    RevisionNotFound,
    WriteFailure,
    parse_time,
)

DEFAULT_LIST_LIMIT = 2000
LONGPOLL_STEP_S = 0.2
_DELETE_BATCH_JOB = "delete_batch"
# Dropbox's download_zip limits; unit tests call `state.archive.zip_problem` with small ones.
ZIP_LIMITS = archive.DROPBOX_ZIP_LIMITS


# --------------------------------------------------------------------------- metadata


@route("files/get_metadata")
def get_metadata(call: Call, services: Services) -> Metadata:
    arg: files.GetMetadataArg = call.arg
    store = services.store
    check_root_slash(arg.path, ROOT_UNSUPPORTED)
    try:
        if arg.path.startswith("rev:"):
            return file_metadata(shown(call, read_entry(store, call, arg.path)))
        location = locate(store, call, arg.path)
        if location.mount is not None:
            return metadata(location.mount)
        if not location.path_display:
            raise BadInput(ROOT_UNSUPPORTED)
        entry = location.entry
        if entry is None or (entry.kind == "deleted" and not arg.include_deleted):
            raise LookupFailure("not_found")
        return metadata(shown(call, entry))
    except LookupFailure as failure:
        raise RouteError(files.GetMetadataError.path(lookup_error(failure.tag))) from None


# --------------------------------------------------------------------------- listing


def _page_result(page: Page) -> files.ListFolderResult:
    return files.ListFolderResult(
        entries=[metadata(present(page.view, entry)) for entry in page.entries],
        cursor=page.cursor,
        has_more=page.has_more,
    )


def _listing_folder(store: Store, call: Call, raw: str) -> Location:
    check_root_slash(raw, ROOT_AS_SLASH)
    location = locate(store, call, raw)
    if location.path_display:
        entry = location.entry
        if entry is None or entry.kind == "deleted":
            raise LookupFailure("not_found")
        if entry.kind == "file":
            raise LookupFailure("not_folder")
        location.path_display = entry.path_display
    return location


def _listing_request(call: Call, store: Store) -> ListingRequest:
    """What list_folder and get_latest_cursor share: the folder (it must exist) and options."""
    arg: files.ListFolderArg = call.arg
    try:
        folder = _listing_folder(store, call, arg.path)
    except LookupFailure as failure:
        raise RouteError(files.ListFolderError.path(lookup_error(failure.tag))) from None
    limit = arg.limit or DEFAULT_LIST_LIMIT
    return ListingRequest(
        folder.ns,
        folder.path_lower,
        arg.recursive,
        arg.include_deleted,
        limit,
        view=namespace_of(call.path_root),
        mounts=tuple(mounted_in(folder.ns, folder.path_lower)),
    )


@route("files/list_folder")
def list_folder(call: Call, services: Services) -> files.ListFolderResult:
    store = services.store
    return _page_result(store.listing.list_folder(_listing_request(call, store)))


@route("files/list_folder/get_latest_cursor")
def list_folder_get_latest_cursor(
    call: Call, services: Services
) -> files.ListFolderGetLatestCursorResult:
    store = services.store
    cursor = store.listing.latest_cursor(_listing_request(call, store))
    return files.ListFolderGetLatestCursorResult(cursor=cursor)


@route("files/list_folder/continue")
def list_folder_continue(call: Call, services: Services) -> files.ListFolderResult:
    arg: files.ListFolderContinueArg = call.arg
    try:
        page = services.store.listing.continue_listing(arg.cursor)
    except UnknownCursor:
        if arg.cursor.startswith("AAE"):
            # One of ours, forgotten (e.g. after a reset): the client must list again.
            raise RouteError(void(files.ListFolderContinueError, "reset")) from None
        raise BadInput('Invalid "cursor" parameter') from None
    return _page_result(page)


@route("files/list_folder/longpoll")
def list_folder_longpoll(call: Call, services: Services) -> files.ListFolderLongpollResult:
    """Wait (up to `timeout` seconds) until the cursor's folder changes."""
    arg: files.ListFolderLongpollArg = call.arg
    listing = services.store.listing
    deadline = time.monotonic() + (arg.timeout or 30)
    while True:
        try:
            changed = listing.has_changes(arg.cursor)
        except UnknownCursor:
            raise RouteError(void(files.ListFolderLongpollError, "reset")) from None
        remaining = deadline - time.monotonic()
        if changed or remaining <= 0:
            return files.ListFolderLongpollResult(changes=changed)
        time.sleep(min(LONGPOLL_STEP_S, remaining))


# --------------------------------------------------------------------------- downloads


def _download_entry(store: Store, call: Call, path: str, rev: Optional[str]) -> Entry:
    if rev is not None:
        revision = store.tree.get_revision(rev)
        if revision is None:
            raise LookupFailure("not_found")
        return revision
    entry = read_entry(store, call, path)
    if entry.kind != "file":
        raise LookupFailure("not_file")
    return entry


@route("files/download")
def download(call: Call, services: Services) -> DownloadResult:
    arg: files.DownloadArg = call.arg
    store = services.store
    try:
        entry = _download_entry(store, call, arg.path, arg.rev)
    except LookupFailure as failure:
        raise RouteError(files.DownloadError.path(lookup_error(failure.tag))) from None
    assert entry.content_hash is not None
    return DownloadResult(
        metadata=file_metadata(shown(call, entry)),
        blob=store.blobs.source(entry.content_hash),
        size=entry.size or 0,
    )


def _zip_folder(store: Store, call: Call, raw: str) -> tuple[Entry, list[Entry]]:
    """The folder and everything below it, as the caller's path root shows them; a mount
    point seen through the team root (`/Emulator User`) is the mounted namespace's content
    under the mount's name. Raises LookupFailure."""
    if not raw.startswith("rev:"):
        location = locate(store, call, raw)
        if location.mount is not None:
            top = shown(call, location.mount)
            below = store.tree.subtree(location.ns, "")
            return top, [top, *(shown(call, entry) for entry in below)]
    entry = read_entry(store, call, raw)
    if entry.kind != "folder":  # "The input cannot be a single file" (the SDK's docstring)
        raise LookupFailure("not_folder")
    below = store.tree.subtree(entry.ns, entry.path_lower)
    return shown(call, entry), [shown(call, item) for item in below]


@route("files/download_zip")
def download_zip(call: Call, services: Services) -> DownloadResult:
    """The folder as a zip, its own name the zip's top directory, `DownloadZipResult` (the
    folder's metadata) in the `Dropbox-API-Result` header; a file is `path/not_folder`.
    Limits: `state.archive`."""
    arg: files.DownloadZipArg = call.arg
    store = services.store
    try:
        top, entries = _zip_folder(store, call, arg.path)
    except LookupFailure as failure:
        raise RouteError(files.DownloadZipError.path(lookup_error(failure.tag))) from None
    problem = archive.zip_problem(entries, ZIP_LIMITS)
    if problem is not None:
        raise RouteError(void(files.DownloadZipError, problem))
    zipped = archive.write_zip(top, entries, store.blobs, store.tmp_dir)
    return DownloadResult(
        metadata=files.DownloadZipResult(metadata=folder_metadata(top)),
        blob=zipped,
        size=zipped.stat().st_size,
        temporary=True,
    )


@route("files/get_temporary_link")
def get_temporary_link(call: Call, services: Services) -> files.GetTemporaryLinkResult:
    arg: files.GetTemporaryLinkArg = call.arg
    store = services.store
    try:
        entry = _download_entry(store, call, arg.path, None)
    except LookupFailure as failure:
        raise RouteError(files.GetTemporaryLinkError.path(lookup_error(failure.tag))) from None
    assert entry.content_hash is not None
    link = services.temporary_link(store.blobs.path(entry.content_hash), entry.name)
    return files.GetTemporaryLinkResult(metadata=file_metadata(shown(call, entry)), link=link)


# --------------------------------------------------------------------------- deletes


class _DeleteFailed(Exception):
    def __init__(self, error: files.DeleteError):
        super().__init__(repr(error))
        self.error = error


def _delete_one(call: Call, services: Services, arg: files.DeleteArg, commit: bool) -> Entry:
    """Delete one path; raises RouteError-ready DeleteError values wrapped in _DeleteFailed."""
    store = services.store
    try:
        location = locate(store, call, arg.path)
    except LookupFailure as failure:
        raise _DeleteFailed(files.DeleteError.path_lookup(lookup_error(failure.tag))) from None
    if not location.path_display:
        raise _DeleteFailed(files.DeleteError.path_lookup(lookup_error("malformed_path")))
    try:
        if commit:
            with services.commit(location.ns):
                return store.tree.delete(location.ns, location.path_lower, arg.parent_rev)
        return store.tree.delete(location.ns, location.path_lower, arg.parent_rev)
    except LookupFailure as failure:
        raise _DeleteFailed(files.DeleteError.path_lookup(lookup_error(failure.tag))) from None
    except WriteFailure as failure:
        raise _DeleteFailed(files.DeleteError.path_write(write_error(failure))) from None
    except RelocationFailure:
        raise _DeleteFailed(void(files.DeleteError, "too_many_files")) from None
    except TooManyWriteOperations as busy:
        raise contended(services, busy, files.DeleteError.too_many_write_operations) from None


@route("files/delete:2")
def delete_v2(call: Call, services: Services) -> files.DeleteResult:
    arg: files.DeleteArg = call.arg
    try:
        entry = _delete_one(call, services, arg, commit=True)
    except _DeleteFailed as failed:
        raise RouteError(failed.error) from None
    return files.DeleteResult(metadata=metadata(shown(call, entry)))


@route("files/delete_batch")
def delete_batch(call: Call, services: Services) -> files.DeleteBatchLaunch:
    arg: files.DeleteBatchArg = call.arg
    namespaces = {namespace_of(call.path_root)}
    for entry in arg.entries:
        try:
            namespaces.add(locate(services.store, call, entry.path).ns)
        except LookupFailure:
            pass

    def run() -> files.DeleteBatchJobStatus:
        results: list[files.DeleteBatchResultEntry] = []
        try:
            # The whole job is one commit, as on Dropbox.
            with commit_namespaces(services, namespaces):
                for entry in arg.entries:
                    try:
                        deleted = _delete_one(call, services, entry, commit=False)
                        results.append(
                            files.DeleteBatchResultEntry.success(
                                files.DeleteBatchResultData(metadata=metadata(shown(call, deleted)))
                            )
                        )
                    except _DeleteFailed as failed:
                        results.append(files.DeleteBatchResultEntry.failure(failed.error))
        except TooManyWriteOperations:
            # The job lost the namespace: its entries fail one by one. Dropbox deprecated the
            # whole-job DeleteBatchError.too_many_write_operations ("Use
            # DeleteError.too_many_write_operations. delete_batch now provides smaller
            # granularity about which entry has failed because of this." -- SDK docstring).
            busy = files.DeleteBatchResultEntry.failure(files.DeleteError.too_many_write_operations)
            results = [busy for _ in arg.entries]
            services.entries_refused(len(results))
        return files.DeleteBatchJobStatus.complete(files.DeleteBatchResult(entries=results))

    job_id = services.run_job(_DELETE_BATCH_JOB, files.DeleteBatchJobStatus_validator, run)
    return files.DeleteBatchLaunch.async_job_id(job_id)


@route("files/delete_batch/check")
def delete_batch_check(call: Call, services: Services) -> files.DeleteBatchJobStatus:
    return load_job(services, call, _DELETE_BATCH_JOB, files.DeleteBatchJobStatus_validator)


# --------------------------------------------------------------------------- folders, copy, move


@route("files/create_folder:2")
def create_folder_v2(call: Call, services: Services) -> files.CreateFolderResult:
    arg: files.CreateFolderArg = call.arg
    store = services.store
    try:
        location = write_location(store, call, arg.path)
        with services.commit(location.ns):
            entry = store.tree.create_folder(
                location.ns, location.path_display, bool(arg.autorename)
            )
    except (paths.PathProblem, WriteFailure) as failure:
        raise RouteError(files.CreateFolderError.path(write_error(failure))) from None
    except TooManyWriteOperations as busy:
        raise contended(services, busy, files.CreateFolderError.path(WRITE_BUSY)) from None
    return files.CreateFolderResult(metadata=folder_metadata(shown(call, entry)))


def _relocate(call: Call, services: Services, move: bool) -> files.RelocationResult:
    arg: files.RelocationArg = call.arg
    store = services.store
    try:
        source = locate(store, call, arg.from_path)
        if not source.path_display:
            raise LookupFailure("malformed_path")
    except LookupFailure as failure:
        raise RouteError(files.RelocationError.from_lookup(lookup_error(failure.tag))) from None
    try:
        dest = write_location(store, call, arg.to_path)
    except paths.PathProblem as problem:
        raise RouteError(files.RelocationError.to(write_error(problem))) from None
    namespaces = {dest.ns, source.ns} if move else {dest.ns}
    try:
        with commit_namespaces(services, namespaces):
            entry = store.tree.relocate(
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
        raise RouteError(void(files.RelocationError, failure.tag)) from None
    except TooManyWriteOperations as busy:
        raise contended(services, busy, files.RelocationError.to(WRITE_BUSY)) from None
    return files.RelocationResult(metadata=metadata(shown(call, entry)))


@route("files/copy:2")
def copy_v2(call: Call, services: Services) -> files.RelocationResult:
    return _relocate(call, services, move=False)


@route("files/move:2")
def move_v2(call: Call, services: Services) -> files.RelocationResult:
    return _relocate(call, services, move=True)


# --------------------------------------------------------------------------- revisions


@route("files/list_revisions")
def list_revisions(call: Call, services: Services) -> files.ListRevisionsResult:
    arg: files.ListRevisionsArg = call.arg
    # `before_rev` and the result's `has_more` are new in SDK 12.2; 12.0/12.1 (Python < 3.11)
    # can neither send nor serialize them.
    before_rev = getattr(arg, "before_rev", None)
    tree = services.store.tree
    by_id = arg.mode is not None and arg.mode.is_id()
    try:
        location = locate(services.store, call, arg.path)
        if not location.path_display:
            raise LookupFailure("malformed_path")
    except LookupFailure as failure:
        raise RouteError(files.ListRevisionsError.path(lookup_error(failure.tag))) from None
    entry = location.entry
    if entry is not None and entry.kind == "folder":
        raise RouteError(files.ListRevisionsError.path(void(files.LookupError, "not_file")))
    if by_id:
        if before_rev is not None:
            raise RouteError(void(files.ListRevisionsError, "before_rev_not_supported"))
        revisions = tree.revisions_by_id(entry.id) if entry is not None and entry.id else []
    else:
        revisions = tree.revisions_by_path(location.ns, location.path_lower)
    if not revisions:
        raise RouteError(files.ListRevisionsError.path(void(files.LookupError, "not_found")))
    if before_rev is not None:
        index = next((i for i, r in enumerate(revisions) if r.rev == before_rev), None)
        if index is None:
            raise RouteError(void(files.ListRevisionsError, "invalid_before_rev"))
        revisions = revisions[index + 1 :]
    limit = arg.limit or 10
    deleted = entry is None or entry.kind == "deleted"
    result = files.ListRevisionsResult(
        is_deleted=deleted, entries=[file_metadata(shown(call, r)) for r in revisions[:limit]]
    )
    if "has_more" in files.ListRevisionsResult._all_field_names_:
        result.has_more = len(revisions) > limit
    if deleted and entry is not None and entry.server_modified:
        result.server_deleted = parse_time(entry.server_modified)
    return result


@route("files/restore")
def restore(call: Call, services: Services) -> files.FileMetadata:
    arg: files.RestoreArg = call.arg
    store = services.store
    try:
        location = write_location(store, call, arg.path)
    except paths.PathProblem as problem:
        raise RouteError(files.RestoreError.path_write(write_error(problem))) from None
    try:
        with services.commit(location.ns):
            entry = store.tree.restore(location.ns, location.path_display, arg.rev)
    except RevisionNotFound:
        raise RouteError(void(files.RestoreError, "invalid_revision")) from None
    except WriteFailure as failure:
        raise RouteError(files.RestoreError.path_write(write_error(failure))) from None
    except TooManyWriteOperations as busy:
        raise contended(services, busy, files.RestoreError.path_write(WRITE_BUSY)) from None
    return file_metadata(shown(call, entry))
