"""The credentials file: where it lives, what it holds, and how it is written safely.

One JSON file may serve several remotes (the user guide's default). Entries are keyed by the Dropbox
app key, so a remote configured with another app never reads or clobbers a token issued to a
different app (a token only works with the app it was issued to). Each entry records the account id,
so `dvc-dropbox status` can say whose Dropbox it is.

Writes are atomic (temporary file in the same folder + `os.replace`), the file's mode is 0600, and
every read-modify-write happens under a `filelock` lock next to the file, because several `dvc`
processes (and many threads of one) may refresh the same token at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

from ..errors import DropboxAuthError, DropboxConfigError

logger = logging.getLogger("dvc.dvc_dropbox.credentials")

ENV_ACCESS_TOKEN = "DROPBOX_ACCESS_TOKEN"
ENV_REFRESH_TOKEN = "DROPBOX_REFRESH_TOKEN"
ENV_EXPIRES_AT = "DROPBOX_EXPIRES_AT"
ENV_APP_KEY = "DROPBOX_APP_KEY"
ENV_CREDENTIALS_FILE = "DROPBOX_CREDENTIALS_FILE"
# The variables that carry credentials themselves, in the order messages name them.
TOKEN_VARS = (ENV_ACCESS_TOKEN, ENV_EXPIRES_AT, ENV_REFRESH_TOKEN)
# Every variable that decides which credentials a client uses (its process cache key).
CREDENTIAL_VARS = (*TOKEN_VARS, ENV_APP_KEY, ENV_CREDENTIALS_FILE)
DEFAULT_FILE_NAME = "dropbox-user-credentials.json"
FORMAT = "dvc-dropbox-credentials"
FORMAT_VERSION = 1
# Lock waits are bounded: a crashed process's lock is released by the OS, so a long wait means a
# live process is stuck; better to fail with a message than to hang a push.
LOCK_TIMEOUT_S = 60.0

# Windows refuses to replace or delete a file that another process has open (a `dvc` reading its
# credentials outside the lock for a millisecond at start-up, an antivirus scan): os.replace and
# unlink raise PermissionError then. Retried briefly, as pip does for its own replaces. Elsewhere
# a PermissionError is final at once (a folder that is not writable).
RETRY_WHEN_OPEN_ELSEWHERE = sys.platform == "win32"
OPEN_ELSEWHERE_TRIES = 40
OPEN_ELSEWHERE_PAUSE_S = 0.05  # 2 s in all

_LOCKS: dict[str, Any] = {}
_LOCKS_GUARD = threading.Lock()


def _utc_now() -> datetime.datetime:
    """Naive UTC now, the SDK's convention for expiry times."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def format_expiry(value: Optional[datetime.datetime]) -> Optional[str]:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def parse_expiry(value: str) -> datetime.datetime:
    """ISO 8601 with or without a timezone (naive = UTC) -> naive UTC datetime.

    Raises ValueError; callers add the context (which variable or file).
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


@dataclasses.dataclass
class Credentials:
    """What the SDK needs to call Dropbox and to refresh. Tokens never appear in repr()."""

    app_key: Optional[str]
    refresh_token: Optional[str] = dataclasses.field(default=None, repr=False)
    access_token: Optional[str] = dataclasses.field(default=None, repr=False)
    expires_at: Optional[datetime.datetime] = None  # naive UTC
    account_id: Optional[str] = None
    scope: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return {
            "app_key": self.app_key,
            "account_id": self.account_id,
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "expires_at": format_expiry(self.expires_at),
            "scope": self.scope,
            "updated_at": format_expiry(_utc_now()),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Credentials:
        if not isinstance(data, dict) or not data.get("refresh_token"):
            raise ValueError(f"the entry {where} has no refresh_token")
        expires = data.get("expires_at")
        return cls(
            app_key=data.get("app_key"),
            refresh_token=data["refresh_token"],
            access_token=data.get("access_token") or None,
            expires_at=parse_expiry(expires) if expires else None,
            account_id=data.get("account_id"),
            scope=data.get("scope"),
        )


def find_repo_root(cwd: Optional[str] = None) -> Optional[str]:
    """The DVC repository containing `cwd`, found the way DVC itself finds it, or None."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo.find_root(cwd)
    except NotDvcRepoError:
        return None


def user_credentials_path() -> Path:
    """Outside any DVC repository: a per-user file (e.g. ~/.config/dvc-dropbox/... on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("dvc-dropbox", appauthor=False)) / DEFAULT_FILE_NAME


def credentials_path(cwd: Optional[str] = None) -> Path:
    """DROPBOX_CREDENTIALS_FILE, else <repo>/.dvc/tmp/<DEFAULT_FILE_NAME>, else per-user.

    A relative DROPBOX_CREDENTIALS_FILE is resolved from the repository root, not from the
    working directory: the user guide's `.dvc/tmp/<name>.json` must mean the repository's
    `.dvc/tmp` from every subfolder (from inside tracked data it used to create a second `.dvc`
    there, which made DVC take that folder for a nested repository). Outside a repository it is
    resolved from the working directory. Raises `DropboxConfigError` for a location that would
    harm the data (see `check_location`), before anyone is asked to authorize.
    """
    override = os.environ.get(ENV_CREDENTIALS_FILE, "").strip()
    if override:
        path = Path(os.path.expanduser(override))
        if not path.is_absolute():
            base = find_repo_root(cwd) or cwd or os.getcwd()
            path = Path(base) / path
        path = Path(os.path.normpath(path))
        check_location(path)
        return path
    root = find_repo_root(cwd)
    if root is not None:
        return Path(root) / ".dvc" / "tmp" / DEFAULT_FILE_NAME
    return user_credentials_path()


# -- locations that would harm the data ----------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _dvc_folder_created_by(path: Path) -> Optional[Path]:
    """The `.dvc` folder that writing `path` would create (None if it would create none).

    A new `.dvc` folder turns its parent into a DVC repository in DVC's eyes: inside tracked data
    DVC then skips that folder as a nested repository and silently drops its files.
    """
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        if folder.name == ".dvc":
            return folder
        folder = folder.parent
    return None


# The outputs of each repository, listed once per process: (output path, DVC file), real paths.
_outputs_cache: dict[str, Optional[list[tuple[Path, Path]]]] = {}
_outputs_guard = threading.Lock()


def tracked_output_containing(path: Path) -> Optional[tuple[str, str]]:
    """(output, DVC file) of the DVC-tracked output that is or contains `path`, else None.

    Both are relative to the repository root. Asks DVC itself (its index of every .dvc file and
    dvc.yaml stage, with `wdir`, `foreach`, imports, `cache: false` outputs and .dvcignore
    applied), because a scan of our own would miss some of those forms. Cost: one `Repo` and one
    walk of the work tree that skips tracked folders (what `dvc status` does anyway; ~0.15 s for
    30 .dvc files), once per process and repository, and only for a file outside `.dvc/`: DVC
    never tracks anything there, so the default location costs nothing.
    """
    real = Path(os.path.realpath(path))
    root = find_repo_root(str(_existing_ancestor(real)))
    if root is None:
        return None
    root_path = Path(os.path.realpath(root))
    try:
        rel = real.relative_to(root_path)
    except ValueError:
        return None
    if rel.parts[:1] in ((".dvc",), (".git",)):
        return None
    with _outputs_guard:  # held while listing: concurrent callers wait instead of repeating it
        if str(root_path) not in _outputs_cache:
            _outputs_cache[str(root_path)] = _list_outputs(root)
        outputs = _outputs_cache[str(root_path)]
    for out_path, dvcfile in outputs or ():
        if real == out_path or out_path in real.parents:
            where = dvcfile.relative_to(root_path) if root_path in dvcfile.parents else dvcfile
            return str(out_path.relative_to(root_path)), str(where)
    return None


def _list_outputs(root: str) -> Optional[list[tuple[Path, Path]]]:
    """The local outputs of the repository at `root`; None if DVC cannot read it.

    A repository DVC cannot read is not ours to judge: DVC's own command reports what is wrong.
    """
    try:
        from dvc.repo import Repo
        from dvc.repo.index import Index

        def skip(relpath: str, exc: Exception) -> None:
            logger.debug("skipping %s while looking for tracked outputs: %s", relpath, exc)

        with Repo(root) as repo:
            return [
                (Path(os.path.realpath(out.fs_path)), Path(os.path.realpath(out.stage.path)))
                for out in Index.from_repo(repo, onerror=skip).outs
                if out.protocol == "local"
            ]
    except Exception as exc:
        logger.debug("could not list the outputs of %s: %s", root, exc)
        return None


def check_location(path: Path) -> None:
    """Refuse a credentials file that would create a `.dvc` folder or lie in tracked data."""
    created = _dvc_folder_created_by(path)
    if created is not None:
        raise DropboxConfigError(
            f"{ENV_CREDENTIALS_FILE} points to {path}, which would create the folder {created}; "
            f"DVC would then take {created.parent} for a DVC repository. dvc-dropbox never "
            "creates a .dvc folder: run the command inside your DVC repository (a relative "
            f"{ENV_CREDENTIALS_FILE} is resolved from its root), or point {ENV_CREDENTIALS_FILE} "
            "at a file in an existing folder"
        )
    tracked = tracked_output_containing(path)
    if tracked is not None:
        output, dvcfile = tracked
        raise DropboxConfigError(
            f"{ENV_CREDENTIALS_FILE} points to {path}, inside '{output}', which DVC tracks "
            f"({dvcfile}): the Dropbox token would become part of that data and be pushed with "
            f"it. Nothing was written. Point {ENV_CREDENTIALS_FILE} outside tracked data, e.g. "
            f"`export {ENV_CREDENTIALS_FILE}=.dvc/tmp/{path.name}` (relative paths are resolved "
            "from the repository root)"
        )


class CredentialsFile:
    """A credentials file. `locked()` guards read-modify-write across threads and processes."""

    def __init__(self, path: Path, lock_timeout: float = LOCK_TIMEOUT_S):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"CredentialsFile({str(self.path)!r})"

    def _make_folder(self) -> None:
        # The last line of defence behind `check_location`: whoever built this path, never
        # create a `.dvc` folder (it would turn its parent into a DVC repository).
        created = _dvc_folder_created_by(self.path)
        if created is not None:
            raise DropboxConfigError(
                f"not writing the Dropbox credentials file {self.path}: that would create the "
                f"folder {created}, and DVC would then take {created.parent} for a DVC "
                f"repository. Point {ENV_CREDENTIALS_FILE} at a file in an existing folder"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self._make_folder()
        lock_path = str(self.path.resolve()) + ".lock"
        with _LOCKS_GUARD:
            # One lock object per path and process: re-entrant within a thread, while another
            # thread (its own thread-local state and descriptor) or process waits for it.
            lock = _LOCKS.get(lock_path)
            if lock is None:
                lock = _LOCKS[lock_path] = FileLock(lock_path)
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Timeout:
            raise DropboxAuthError(
                f"the Dropbox credentials file {self.path} has been locked by another process "
                f"for over {self.lock_timeout:.0f} s; if no other dvc command is running, "
                f"remove {self.path}.lock and run the command again"
            ) from None
        try:
            yield
        finally:
            lock.release()

    # -- reading ---------------------------------------------------------------------------------

    def _read_document(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": FORMAT, "version": FORMAT_VERSION, "credentials": {}}
        except OSError as exc:
            raise DropboxAuthError(
                f"cannot read the Dropbox credentials file {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("credentials"), dict):
            raise DropboxAuthError(
                f"{self.path} is not a dvc-dropbox credentials file (not the expected JSON); "
                f"remove {self.path} and run the command again to re-authorize"
            )
        self._warn_if_readable_by_others()
        return doc

    def _warn_if_readable_by_others(self) -> None:
        if os.name != "posix":
            return
        try:
            mode = self.path.stat().st_mode
        except OSError:
            return
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "the Dropbox credentials file %s can be read by other users (mode %s); "
                "run `chmod 600 %s`",
                self.path,
                oct(stat.S_IMODE(mode)),
                self.path,
            )

    def get(self, app_key: str) -> Optional[Credentials]:
        doc = self._read_document()
        entry = doc["credentials"].get(app_key)
        if entry is None:
            return None
        try:
            creds = Credentials.from_json(entry, f"for app key {app_key!r}")
        except ValueError as exc:
            raise DropboxAuthError(
                f"the Dropbox credentials file {self.path} is damaged ({exc}); "
                f"remove {self.path} and run the command again to re-authorize"
            ) from None
        creds.app_key = app_key
        return creds

    def app_keys(self) -> list[str]:
        return sorted(self._read_document()["credentials"])

    # -- writing ---------------------------------------------------------------------------------

    def put(self, creds: Credentials) -> None:
        """Store `creds` under its app key. Call inside `locked()`."""
        if not creds.app_key:
            raise ValueError("credentials without an app key cannot be stored")
        doc = self._read_document()
        doc["format"] = FORMAT
        doc["version"] = FORMAT_VERSION
        doc["credentials"][creds.app_key] = creds.to_json()
        self._write_document(doc)

    def remove(self, app_key: str) -> bool:
        """Forget `app_key`'s entry; delete the file when none is left. Call inside `locked()`."""
        doc = self._read_document()
        if doc["credentials"].pop(app_key, None) is None:
            return False
        if doc["credentials"]:
            self._write_document(doc)
        else:
            with contextlib.suppress(FileNotFoundError):
                _while_open_elsewhere(self.path.unlink)
        return True

    def _write_document(self, doc: dict[str, Any]) -> None:
        self._make_folder()
        data = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        # mkstemp creates the file with mode 0600; os.replace makes the new content appear at once.
        fd, tmp = tempfile.mkstemp(
            dir=str(self.path.parent), prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fobj:
                fobj.write(data)
                fobj.flush()
                os.fsync(fobj.fileno())
            if os.name == "posix":
                os.chmod(tmp, 0o600)
            _while_open_elsewhere(lambda: os.replace(tmp, self.path))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _while_open_elsewhere(action: Callable[[], None]) -> None:
    """`action()` (a replace or delete), tried again while Windows says the file is open
    elsewhere (see RETRY_WHEN_OPEN_ELSEWHERE); its PermissionError once that lasts."""
    for attempt in range(1, OPEN_ELSEWHERE_TRIES + 1):
        try:
            action()
            return
        except PermissionError:
            if not RETRY_WHEN_OPEN_ELSEWHERE or attempt == OPEN_ELSEWHERE_TRIES:
                raise
            time.sleep(OPEN_ELSEWHERE_PAUSE_S)


_git_checked: set[Path] = set()


def git_ignore_status(path: Path) -> Optional[bool]:
    """True/False if `path` is inside a git work tree and is/is not ignored; None if unknown."""
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        proc = subprocess.run(
            ["git", "check-ignore", "-q", "--", str(path)],
            cwd=str(folder),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or it hangs: nothing to warn about
    if proc.returncode == 0:
        return True
    if proc.returncode == 1:
        return False
    return None  # 128: not in a work tree (or outside the repository of `folder`)


def warn_if_not_git_ignored(path: Path) -> None:
    """Warn loudly (once per process and path) if the file could be committed by mistake."""
    resolved = path.resolve()
    if resolved in _git_checked:
        return
    _git_checked.add(resolved)
    if git_ignore_status(resolved) is False:
        logger.warning(
            "the Dropbox credentials file %s is inside a Git work tree and is NOT ignored: "
            "anyone you share the repository with could use your Dropbox. Add it to .gitignore "
            "(e.g. `echo %s >> .gitignore`) and never commit it",
            path,
            path.name,
        )
