"""`dvc-dropbox doctor`: does the Dropbox desktop app on this computer get in DVC's way?

The user guide's Selective Sync advice, acted on: a desktop app that syncs the remote's folder
downloads every object DVC pushes (and with thousands of small files, its metadata alone keeps
the app busy); a repository or DVC cache inside a Dropbox folder is uploaded a second time and
gets conflicted copies. The report says which of these applies here and what to do.

`PushWatch` gives the same advice once per repository, as one line after the first successful
push from a computer whose desktop app syncs the remote's folder.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import shlex
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from . import desktop_app
from .desktop_app import AccountInfo, Candidate, DesktopApp

logger = logging.getLogger("dvc.dvc_dropbox.doctor")

HINT_MARKER = "dvc-dropbox-desktop-app-hint"
SELECTIVE_SYNC_STEPS = "Dropbox desktop app > Preferences > Sync > Selective Sync: Choose folders"
SMART_SYNC_STEPS = "Preferences > Sync > Save hard drive space automatically"
IGNORED_FILES_HELP = "https://help.dropbox.com/sync/ignored-files"


def _quote(path: Path) -> str:
    return shlex.quote(str(path))


# -- the remote's folder on this computer ---------------------------------------------------------


@dataclasses.dataclass
class SyncFinding:
    """Whether the remote's folder is synced here: the folders found, the ones looked for."""

    synced: list[tuple[Candidate, Path]]
    absent: list[Candidate]
    notes: list[str]


def find_synced(
    app: DesktopApp, remote_path: str, account: Optional[AccountInfo], path_root: Optional[str]
) -> SyncFinding:
    candidates, notes = desktop_app.synced_folder_candidates(app, remote_path, account, path_root)
    synced, absent = [], []
    for candidate in candidates:
        found = desktop_app.existing_folder(candidate.folder)
        if found is not None:
            synced.append((candidate, found))
        elif not candidate.speculative:
            absent.append(candidate)
    return SyncFinding(synced, absent, notes)


def selective_sync_advice(candidate: Candidate, folder: Path) -> list[str]:
    lines = [
        "  The desktop app downloads everything DVC pushes there. With many small files (thousands",
        "  of objects) use Selective Sync and exclude that folder:",
        f"    {SELECTIVE_SYNC_STEPS}, untick {candidate.sync_path}",
    ]
    if sys.platform.startswith("linux"):
        lines.append(f"    or run: dropbox exclude add {_quote(folder)}")
    lines += [
        f"  With a few large files Smart Sync works too ({SMART_SYNC_STEPS}):",
        "  the files then stay online-only.",
    ]
    return lines


# -- the report ------------------------------------------------------------------------------------


def _describe_linked(acc: desktop_app.LinkedAccount) -> str:
    what = [acc.subscription_type] if acc.subscription_type else []
    if acc.is_team:
        what.append("team")
    detail = f" ({', '.join(what)})" if what else ""
    return f"  {acc.kind} account{detail}: {acc.path}"


def _ignore_commands(path: Path) -> list[str]:
    quoted = _quote(path)
    if sys.platform == "win32":
        return [f"Set-Content -Path '{path}' -Stream com.dropbox.ignored -Value 1  (PowerShell)"]
    if sys.platform == "darwin":
        return [f"xattr -w com.dropbox.ignored 1 {quoted}"]
    return [f"attr -s com.dropbox.ignored -V 1 {quoted}"]


def report_local_folders(app: DesktopApp, root: Path, cache: Optional[Path]) -> list[str]:
    """Lines about the repository and its cache lying inside a Dropbox folder."""
    lines: list[str] = []
    repo_in = desktop_app.containing_dropbox_folder(app, root)
    cache_in = desktop_app.containing_dropbox_folder(app, cache) if cache else None
    if repo_in is None:
        lines.append(f"Repository:   {root}: not inside a Dropbox folder (good)")
    else:
        lines += [
            f"Repository:   {root}: INSIDE the Dropbox folder {repo_in.path}",
            "  The desktop app uploads the whole repository, the DVC cache included (every object",
            "  a second time, next to the remote), and edits on two computers end up as conflicted",
            "  copies of .dvc files, dvc.lock and cache files. Move the repository out of the",
            "  Dropbox folder and share it through Git and the DVC remote.",
        ]
    if cache is None:
        return lines
    if cache_in is None:
        lines.append(f"DVC cache:    {cache}: not inside a Dropbox folder (good)")
        return lines
    lines += [
        f"DVC cache:    {cache}: INSIDE the Dropbox folder {cache_in.path}",
        "  The desktop app uploads every cached object a second time and may create conflicted",
        "  copies in the cache. Keep the cache out of Dropbox: move its content to a folder",
        "  outside it and point DVC there, for this computer only:",
        "    dvc cache dir --local <folder outside Dropbox>",
        f"  or tell the desktop app to ignore it ({IGNORED_FILES_HELP}):",
    ]
    lines += [f"    {command}" for command in _ignore_commands(cache)]
    return lines


def report_remote_folder(
    app: DesktopApp,
    remote_path: str,
    account: Optional[AccountInfo],
    path_root: Optional[str],
    exists_in_dropbox: Optional[bool],
) -> list[str]:
    shown = "/" + remote_path.strip("/")
    lines = []
    finding = find_synced(app, remote_path, account, path_root)
    for candidate, folder in finding.synced:
        unsure = "" if candidate.certain else " (if it is the remote's account)"
        lines += [
            f"Remote folder {shown}: SYNCED to this computer by the desktop app{unsure}, at",
            f"  {folder}",
        ]
        lines += selective_sync_advice(candidate, folder)
    if not finding.synced:
        for candidate in finding.absent:
            if exists_in_dropbox is False:
                lines += [
                    f"Remote folder {shown}: not in Dropbox yet ({candidate.folder} does not "
                    "exist).",
                    "  The first `dvc push` creates it, and the desktop app then syncs it unless",
                    "  you exclude it: run `dvc-dropbox doctor` again after that push.",
                ]
            elif candidate.certain:
                lines.append(
                    f"Remote folder {shown}: not synced here ({candidate.folder} does not exist): "
                    "excluded with Selective Sync, or not synced to this computer (good)"
                )
            else:
                lines.append(
                    f"Remote folder {shown}: probably not synced here ({candidate.folder} does "
                    "not exist)"
                )
    lines += [f"  Note: {note}" for note in finding.notes]
    return lines


def report(
    app: Optional[DesktopApp],
    remote: Any,
    show_status: Callable[[Any], tuple[Any, Any]],
    out: Callable[[str], None] = print,
) -> int:
    """Print the whole report for `remote` (a `cli.Remote`); `app` None: no desktop app here.

    `show_status` prints what `dvc-dropbox status` prints and returns (client, account).
    """
    from .errors import DropboxRemoteError

    if app is None:
        where = " or ".join(str(p) for p in desktop_app.info_json_locations()) or "info.json"
        out(f"No Dropbox desktop app found on this computer (no {where}).")
        out("Nothing to check: Selective Sync and Smart Sync only concern the desktop app.")
        return 0
    out(f"Dropbox desktop app: {app.info_file}")
    if app.problem:
        out(f"  cannot use it: {app.problem}")
        return 1
    for acc in app.accounts:
        out(_describe_linked(acc))
    out("")

    account: Optional[AccountInfo] = None
    client: Any = None
    try:
        client, full_account = show_status(remote)
        account = AccountInfo.from_account(full_account)
    except DropboxRemoteError as exc:
        out(f"Status:       cannot check the account: {exc}")
    except Exception as exc:
        import requests

        if not isinstance(exc, requests.RequestException):
            raise
        out(f"Status:       cannot reach Dropbox ({type(exc).__name__})")
    out("")

    if remote.url:
        from . import urls

        remote_path = urls.strip_protocol(remote.url)
        path_root = _path_root_of(remote.name)
        exists = _exists_in_dropbox(client, remote_path, path_root) if client else None
        for line in report_remote_folder(app, remote_path, account, path_root, exists):
            out(line)
    else:
        out("Remote folder: no DVC remote named, so no folder to check.")

    from .auth.credentials import find_repo_root

    root = find_repo_root()
    if root is not None:
        out("")
        for line in report_local_folders(app, Path(root), _cache_dir(root)):
            out(line)
    return 0


def _path_root_of(remote_name: Optional[str]) -> Optional[str]:
    if not remote_name:
        return None
    from dvc.config import Config

    conf = Config.from_cwd(validate=False).get("remote", {}).get(remote_name, {})
    value = conf.get("path_root")
    return str(value) if value else None


def _exists_in_dropbox(client: Any, remote_path: str, path_root: Optional[str]) -> Optional[bool]:
    """Whether the remote's folder exists in Dropbox (None: could not tell)."""
    from dropbox.exceptions import ApiError

    from . import urls

    try:
        if path_root:
            from .auth.client import _path_root

            client = client.with_path_root(_path_root(path_root, client))
        client.files_get_metadata(urls.api_path(remote_path))
        return True
    except ApiError as exc:
        error = getattr(exc, "error", None)
        if error is not None and error.is_path() and error.get_path().is_not_found():
            return False
        return None
    except Exception as exc:  # only refines the wording of the report
        logger.debug("could not look up the remote folder: %s", type(exc).__name__)
        return None


def _cache_dir(root: str) -> Optional[Path]:
    """`dvc cache dir` of the repository (it may be configured outside the repository)."""
    try:
        from dvc.repo import Repo

        with Repo(root) as repo:
            path = repo.cache.local_cache_dir
    except Exception as exc:
        logger.debug("could not read the cache dir: %s", exc)
        return None
    return Path(path) if path else None


# -- the one-time hint after a push ---------------------------------------------------------------


class PushWatch:
    """Notices the first successful upload per remote; at exit, hints at `dvc-dropbox doctor`.

    The per-file cost is a flag test: the desktop app is looked up once per process, and with
    none (CI, servers) every later call returns at once. The hint needs the push to be over and
    to have had no failed upload, so it waits for the end of the process.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.disabled = False
        self.failed = False
        self.app: Optional[DesktopApp] = None
        self.remotes: dict[tuple[str, Optional[str]], Any] = {}

    def uploaded(self, root: Optional[str], path_root: Optional[str], adapter: Any) -> None:
        """After each successful upload; `adapter` is the DVC filesystem (its client at exit)."""
        if self.disabled or not root or (root, path_root) in self.remotes:
            return
        with self.lock:
            if self.disabled or (root, path_root) in self.remotes:
                return
            if self.app is None:
                # `dvc push -q` silences DVC's loggers only while the command runs, so decide
                # now, during the push, rather than at exit.
                quiet = not logging.getLogger("dvc").isEnabledFor(logging.INFO)
                app = None if quiet else desktop_app.find_desktop_app()
                if app is None or not app.accounts:
                    self.disabled = True
                    return
                self.app = app
                atexit.register(self.at_exit)
            self.remotes[(root, path_root)] = adapter

    def upload_failed(self) -> None:
        self.failed = True

    def at_exit(self) -> None:
        try:
            self.hint()
        except Exception as exc:  # a hint must never turn a successful push into a failure
            logger.debug("desktop app hint skipped: %s", type(exc).__name__)

    def hint(self) -> Optional[str]:
        if self.failed or self.app is None:
            return None
        from .auth.credentials import find_repo_root

        root = find_repo_root()
        if root is None:
            return None
        marker = Path(root) / ".dvc" / "tmp" / HINT_MARKER
        if marker.exists():
            return None
        for (remote_path, path_root), adapter in self.remotes.items():
            folder = self._synced_folder(remote_path, path_root, adapter)
            if folder is None:
                continue
            line = (
                f"dvc-dropbox: the Dropbox desktop app on this computer syncs the remote folder "
                f"/{remote_path} ({folder}); see `dvc-dropbox doctor` for Selective Sync advice."
            )
            with contextlib.suppress(OSError):
                marker.parent.mkdir(exist_ok=True)  # .dvc exists: only its tmp may be missing
                marker.write_text(f"{folder}\n", encoding="utf-8")
            print(line, file=sys.stderr, flush=True)
            return line
        return None

    def _synced_folder(
        self, remote_path: str, path_root: Optional[str], adapter: Any
    ) -> Optional[Path]:
        assert self.app is not None
        # Cheap first: with no folder of that name anywhere the app could put it, no API call.
        if not _possibly_synced(self.app, remote_path):
            return None
        client = adapter.fs.conn.client.clone(timeout=10)
        account = AccountInfo.from_account(client.users_get_current_account())
        finding = find_synced(self.app, remote_path, account, path_root)
        return finding.synced[0][1] if finding.synced else None


def _possibly_synced(app: DesktopApp, remote_path: str) -> bool:
    """Whether any folder the desktop app might keep the remote's folder in exists (no network)."""
    candidates, _ = desktop_app.synced_folder_candidates(app, remote_path, None)
    return any(desktop_app.existing_folder(c.folder) is not None for c in candidates)


PUSHES = PushWatch()
