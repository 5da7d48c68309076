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
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from .errors import DropboxAuthError

logger = logging.getLogger("dvc.dvc_dropbox.credentials")

ENV_CREDENTIALS_FILE = "DROPBOX_CREDENTIALS_FILE"
DEFAULT_FILE_NAME = "dropbox-user-credentials.json"
FORMAT = "dvc-dropbox-credentials"
FORMAT_VERSION = 1
# Lock waits are bounded: a crashed process's lock is released by the OS, so a long wait means a
# live process is stuck; better to fail with a message than to hang a push.
LOCK_TIMEOUT_S = 60.0

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
    """DROPBOX_CREDENTIALS_FILE, else <repo>/.dvc/tmp/<DEFAULT_FILE_NAME>, else per-user."""
    override = os.environ.get(ENV_CREDENTIALS_FILE, "").strip()
    if override:
        path = Path(os.path.expanduser(override))
        return path if path.is_absolute() else Path(cwd or os.getcwd()) / path
    root = find_repo_root(cwd)
    if root is not None:
        return Path(root) / ".dvc" / "tmp" / DEFAULT_FILE_NAME
    return user_credentials_path()


class CredentialsFile:
    """A credentials file. `locked()` guards read-modify-write across threads and processes."""

    def __init__(self, path: Path, lock_timeout: float = LOCK_TIMEOUT_S):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"CredentialsFile({str(self.path)!r})"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
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
                self.path.unlink()
        return True

    def _write_document(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


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
