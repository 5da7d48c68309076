"""Mutations of `DropboxFS`: `mkdir`, `cp_file`, `mv`, `rm_file`, `rmdir`, `rm` and delete batches.

A retried move or delete may meet what its lost first attempt did, so "not found" on a retry
means "already done" (`_call_counting`).
"""

from __future__ import annotations

import errno
import os
import uuid
from typing import Any, Optional

from . import sdk_errors, urls
from .errors import DropboxRemoteError
from .fs_base import DropboxFSBase
from .sdk_errors import translate_errors
from .transfer.pacer import Action

DELETE_POLL_DEADLINE_S = 900.0


class MutationsMixin(DropboxFSBase):
    """What changes the tree of `DropboxFS`: folders, copies, moves, deletes."""

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if not path:
            return
        try:
            self._call(path, "files_create_folder_v2", urls.api_path(path))
        except FileExistsError:
            if not self.isdir(path):  # conflict/file: something else is in the way
                raise

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        # No network call: Dropbox creates parent folders when a file is committed, and DVC
        # calls this once per object prefix, sequentially (256 commits on a fresh remote).
        return None

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy one file (or make one folder): onto a folder raises IsADirectoryError.

        As fsspec's local cp_file; `copy`/`cp` (fsspec's) copy *into* an existing folder.
        """
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        src = self.info(path1)
        if src["type"] == "directory":
            self.mkdir(path2)
            return

        def copy(target: str) -> None:
            self._call(target, "files_copy_v2", urls.api_path(path1), urls.api_path(target))

        try:
            copy(path2)
        except FileExistsError:
            dest = self._replaceable(src, path2)
            if dest["checksum"] == src["checksum"]:
                return  # identical content already there (DVC objects are content-addressed)
            self._delete_file_at(path2, dest["rev"])
            copy(path2)

    def mv(
        self,
        path1: Any,
        path2: Any,
        recursive: bool = False,
        maxdepth: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        """One server-side move; onto an existing folder (or a path ending in "/") *into* it.

        As fsspec's local mv (`shutil.move`), but a file in the way is replaced by a file, as
        fsspec's `copy` does; a folder is never replaced nor merged (a folder in the way raises
        IsADirectoryError, a file in the way of a folder FileExistsError).
        """
        if not isinstance(path1, str) or not isinstance(path2, str):
            # Lists: fsspec's copy-then-delete, through cp_file below. A string is one literal
            # path, never a glob: `[` is a common character in Dropbox names.
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        into = path2.endswith("/")
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if path1 == path2:
            return
        target = self._join_name(path2, path1) if into else path2
        try:
            self._move(path1, target)
            return
        except FileExistsError:
            there = self._info_or_none(target)
        if there is not None and there["type"] == "directory" and not into:
            if path1.lower() == path2.lower():  # the source itself, spelt otherwise
                raise FileExistsError(errno.EEXIST, "Dropbox cannot rename by case only", path2)
            target = self._join_name(path2, path1)  # the folder asked for: move into it
            try:
                self._move(path1, target)
                return
            except FileExistsError:
                there = self._info_or_none(target)
        if there is None:  # what was in the way went meanwhile (or a file is above it)
            self._move(path1, target)
            return
        # Something has the target's name: replaced only if both are files.
        dest = self._replaceable(self.info(path1), target)
        self._delete_file_at(target, dest["rev"])
        self._move(path1, target)

    @staticmethod
    def _join_name(folder: str, path: str) -> str:
        name = path.rpartition("/")[2]
        return f"{folder}/{name}" if folder else name

    def _replaceable(self, src: dict[str, Any], target: str) -> dict[str, Any]:
        """The file at `target` that `src` (a file) may replace; else the error to raise.

        Never a folder, never the source itself (Dropbox cannot rename by case only, and
        deleting "the destination" would then delete the source).
        """
        dest = self.info(target)
        if dest["type"] == "directory":
            raise IsADirectoryError(
                errno.EISDIR, "a folder is in the way; Dropbox folders are never replaced", target
            )
        if src["type"] == "directory":
            raise FileExistsError(errno.EEXIST, "a file is in the way of this folder", target)
        if dest["name"].lower() == src["name"].lower():
            raise FileExistsError(
                errno.EEXIST, "the source itself (Dropbox names ignore case)", target
            )
        return dest

    def _delete_file_at(self, path: str, rev: str) -> None:
        """Delete the revision `rev` of the file `path`, and nothing else.

        `parent_rev` makes delete_v2 conditional: it cannot delete a folder (one that took the
        file's place meanwhile), nor a newer revision someone committed since we looked.
        """
        missing = self._call_counting(path, "files_delete_v2", urls.api_path(path), rev)
        if missing is not None and missing[0] <= 1:
            raise missing[1]

    def _move(self, path1: str, path2: str) -> None:
        missing = self._call_counting(
            path2, "files_move_v2", urls.api_path(path1), urls.api_path(path2)
        )
        if missing is None:
            return
        attempts, exc = missing
        # Not found after a retry: the earlier try may have moved it and lost the answer.
        if attempts > 1 and self._info_or_none(path1) is None and self.exists(path2):
            return
        raise exc

    def _call_counting(
        self, path: str, method: str, *args: Any
    ) -> Optional[tuple[int, FileNotFoundError]]:
        """`_call`; a not-found answer is returned with the number of attempts the pacer made.

        A retry after a lost answer meets what the first attempt did (a move or delete that
        landed), so "not found" then means "already done" rather than "never there".
        """
        conn = self.conn
        attempts = 0
        fn = getattr(conn.client, method)

        def attempt(*call_args: Any) -> Any:
            nonlocal attempts
            attempts += 1
            return fn(*call_args)

        attempt.__name__ = method  # the pacer names the call in its messages
        try:
            with translate_errors(path):
                conn.call(attempt, *args)
        except FileNotFoundError as exc:
            return attempts, exc
        return None

    # -- deleting ---------------------------------------------------------------------------------

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        if not path:
            raise DropboxRemoteError("refusing to delete the whole Dropbox")
        missing = self._call_counting(path, "files_delete_v2", urls.api_path(path))
        if missing is not None and missing[0] <= 1:
            raise missing[1]
        # Not found on a retry: the earlier try deleted it and its answer was lost; gone is gone.

    def rmdir(self, path: str) -> None:
        """Delete an empty folder, and never a file that is put in it meanwhile.

        Dropbox has no "delete if empty": delete_v2 of a folder deletes all it holds, and its
        `parent_rev` check works for files only. So the folder, empty when listed, is first
        moved aside to a name nobody else knows (one move, atomic for the whole folder): what
        was added after the listing moved with it and is seen now, what is added after the move
        makes a new folder at the old path. The folder aside is deleted only if it is empty, as
        nothing can be added to it any more; else it is moved back and rmdir refuses.
        """
        path = self._strip_protocol(path)
        if not path:
            raise DropboxRemoteError("refusing to delete the whole Dropbox")
        entries = self.ls(path, detail=True)
        if len(entries) == 1 and entries[0]["name"] == path and entries[0]["type"] == "file":
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if entries:
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), path)
        parent, _, name = path.rpartition("/")
        aside = self._join_name(parent, f".{name}.rmdir-{uuid.uuid4().hex[:12]}")
        self._move(path, aside)
        if not self.ls(aside, detail=False):
            self.rm_file(aside)
            return
        try:
            self._move(aside, path)
        except FileExistsError:  # a new folder was made at `path` meanwhile: keep both
            raise OSError(
                errno.ENOTEMPTY,
                f"files were added while it was being removed; they are in {aside}",
                path,
            ) from None
        raise OSError(errno.ENOTEMPTY, "files were added while it was being removed", path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: Optional[int] = None) -> None:
        """Delete a path, or many paths with `delete_batch` (folders go with their contents).

        One folder without `recursive` is refused, as fsspec's local rm does; a list (what
        `dvc gc -c` passes: object files) is deleted as given, without a metadata call per path.
        """
        paths = [path] if isinstance(path, str) else list(path)
        paths = list(dict.fromkeys(self._strip_protocol(p) for p in paths))
        if "" in paths:
            raise DropboxRemoteError("refusing to delete the whole Dropbox")
        if len(paths) == 1:
            if not recursive and self.info(paths[0])["type"] == "directory":
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), paths[0])
            self.rm_file(paths[0])
            return
        batch = max(1, min(1000, self.settings.batch_size))
        for i in range(0, len(paths), batch):
            self._delete_batch(paths[i : i + batch])

    def _delete_batch(self, paths: list[str]) -> None:
        """Delete up to 1000 paths with one delete_batch job, again for those that met contention.

        Every wait goes through the pacer (its clock, its bounds, its reports): the job's polls,
        and the backoff before a job that failed with too_many_write_operations, or whose entries
        did, runs again for what is left.
        """
        from dropbox import files

        pending = list(paths)

        def delete_batch() -> None:
            entries = self._run_delete_batch([files.DeleteArg(urls.api_path(p)) for p in pending])
            retry: list[str] = []
            contention: Any = None
            for p, entry in zip(pending, entries):
                if entry.is_success():
                    continue
                failure = entry.get_failure()
                path_tags = sdk_errors.tags(failure)
                if "not_found" in path_tags:
                    continue  # already gone: deleting is idempotent
                if sdk_errors.classify_error(failure).action is Action.RETRY:
                    retry.append(p)
                    contention = failure
                    continue
                raise DropboxRemoteError(
                    f"Dropbox could not delete {urls.api_path(p)}: {'/'.join(path_tags)}"
                )
            pending[:] = retry
            if contention is not None:
                raise sdk_errors.api_error(contention)  # the pacer waits, then runs the rest

        self.conn.pacer.retry(delete_batch)

    def _run_delete_batch(self, args: list[Any]) -> list[Any]:
        """One delete_batch job, polled until it ends; a failed job raises its error."""
        conn = self.conn
        launch = self._call("", "files_delete_batch", args)
        if launch.is_complete():
            return list(launch.get_complete().entries)
        if not launch.is_async_job_id():
            raise DropboxRemoteError(f"Dropbox delete_batch answered {sdk_errors.summary(launch)}")
        with translate_errors(""):
            status = conn.pacer.poll(
                conn.client.files_delete_batch_check,
                launch.get_async_job_id(),
                done=lambda job: not job.is_in_progress(),
                what="delete_batch",
                deadline=DELETE_POLL_DEADLINE_S,
            )
        if status.is_complete():
            return list(status.get_complete().entries)
        failed = status.get_failed() if status.is_failed() else status
        if sdk_errors.classify_error(failed).action is Action.RETRY:
            raise sdk_errors.api_error(failed)  # contention: the caller's pacer runs it again
        raise DropboxRemoteError(f"Dropbox delete_batch failed: {sdk_errors.summary(failed)}")
