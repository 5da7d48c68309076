"""The Dropbox desktop app on this computer: where it keeps each linked account's Dropbox folder.

The desktop app writes `info.json` (documented by Dropbox: "How to programmatically find the
Dropbox folder paths") with one entry per linked account type:

    {"personal": {"path": "/home/jane/Dropbox", "host": 123, "is_team": false,
                  "subscription_type": "Plus"},
     "business": {"path": "/home/jane/Dropbox (Acme)", "host": 456, "is_team": true,
                  "subscription_type": "Business"}}

It lives in `~/.dropbox/` on Linux and macOS, and in `%APPDATA%\\Dropbox\\` or
`%LOCALAPPDATA%\\Dropbox\\` on Windows. Nothing here talks to Dropbox: `synced_folder_candidates`
maps a remote's folder onto these local folders from what the caller knows about the account.

Stdlib only, so the end of a push can look here without importing anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

ACCOUNT_TYPES = ("personal", "business")


@dataclasses.dataclass(frozen=True)
class LinkedAccount:
    """One entry of info.json: an account the desktop app syncs, and its local Dropbox folder."""

    kind: str  # "personal" | "business"
    path: Path
    is_team: bool
    host: Optional[int] = None
    subscription_type: Optional[str] = None


@dataclasses.dataclass
class DesktopApp:
    """What info.json says; `problem` is set (and `accounts` empty) when it cannot be read."""

    info_file: Path
    accounts: list[LinkedAccount]
    problem: Optional[str] = None


def info_json_locations(
    platform: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> list[Path]:
    """Where the desktop app keeps info.json on this platform, in the order Dropbox documents."""
    platform = platform or sys.platform
    env = os.environ if environ is None else environ
    if platform == "win32":
        return [
            Path(os.path.join(env[var], "Dropbox", "info.json"))
            for var in ("APPDATA", "LOCALAPPDATA")
            if env.get(var)
        ]
    home = env.get("HOME") or os.path.expanduser("~")
    return [Path(home) / ".dropbox" / "info.json"]


def parse_info(text: str) -> list[LinkedAccount]:
    """The accounts of an info.json document; ValueError if it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    accounts = []
    for kind in ACCOUNT_TYPES:
        entry = doc.get(kind)
        if not isinstance(entry, dict):
            continue
        path = entry.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError(f"the {kind!r} entry has no path")
        host = entry.get("host")
        subscription = entry.get("subscription_type")
        accounts.append(
            LinkedAccount(
                kind=kind,
                path=Path(path),
                # Older files lack is_team; the entry's name says it then.
                is_team=bool(entry.get("is_team", kind == "business")),
                host=host if isinstance(host, int) else None,
                subscription_type=subscription if isinstance(subscription, str) else None,
            )
        )
    if not accounts:
        raise ValueError("it has neither a 'personal' nor a 'business' entry")
    return accounts


def find_desktop_app(
    platform: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> Optional[DesktopApp]:
    """The desktop app's configuration on this computer, or None if there is none."""
    for location in info_json_locations(platform, environ):
        try:
            text = location.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            return DesktopApp(location, [], f"cannot read it: {exc.strerror or exc}")
        try:
            return DesktopApp(location, parse_info(text))
        except ValueError as exc:
            return DesktopApp(location, [], f"not the documented format ({exc})")
    return None


# -- from a remote's folder to a local one --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccountInfo:
    """What `users/get_current_account` told about the remote's account (no secrets)."""

    is_team: bool
    root_namespace_id: Optional[str] = None
    home_namespace_id: Optional[str] = None
    home_path: Optional[str] = None  # the member folder inside a team space, e.g. "/Jane Doe"

    @property
    def team_space(self) -> bool:
        return bool(
            self.is_team
            and self.root_namespace_id
            and self.home_namespace_id
            and self.root_namespace_id != self.home_namespace_id
        )

    @classmethod
    def from_account(cls, account: object) -> AccountInfo:
        """From the SDK's `users.FullAccount`."""
        account_type = getattr(account, "account_type", None)
        is_team = bool(account_type is not None and account_type.is_business())
        root_info = getattr(account, "root_info", None)
        return cls(
            is_team=is_team or bool(getattr(account, "team", None)),
            root_namespace_id=getattr(root_info, "root_namespace_id", None),
            home_namespace_id=getattr(root_info, "home_namespace_id", None),
            home_path=getattr(root_info, "home_path", None),
        )


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A local folder that would hold the remote's folder if the desktop app syncs it."""

    linked: LinkedAccount
    folder: Path  # where the remote's folder is (or would be) on this computer
    sync_path: str  # the same folder as Selective Sync lists it, relative to the Dropbox folder
    certain: bool  # False: the account could not be matched for sure (say so)
    # A guess worth a look but not worth a line when absent: a member folder of a team space,
    # when the account (and so its member folder's name) is unknown.
    speculative: bool = False


def _relative_parts(path: str) -> list[str]:
    return [part for part in path.replace("\\", "/").split("/") if part]


def synced_folder_candidates(
    app: DesktopApp,
    remote_path: str,
    account: Optional[AccountInfo],
    path_root: Optional[str] = None,
) -> tuple[list[Candidate], list[str]]:
    """Where `remote_path` (relative to the remote's path root) lives locally, plus notes.

    Without a team space the Dropbox folder is the account's home. In a team space the desktop
    app's folder is the team space root and the home is the member folder inside it (`home_path`);
    `path_root` set to the root namespace id addresses that root directly. Any other namespace id
    (a team folder or shared folder) cannot be placed from here: the notes say so.
    """
    notes: list[str] = []
    parts = _relative_parts(remote_path)
    if account is not None:
        linked = [acc for acc in app.accounts if acc.is_team == account.is_team]
        if not linked:
            have = " and ".join(f"a {acc.kind}" for acc in app.accounts)
            kind = "team (business)" if account.is_team else "personal"
            notes.append(
                f"the desktop app here is linked to {have} account, the remote's account is a "
                f"{kind} account: this desktop app does not sync it"
            )
            return [], notes
    else:
        linked = list(app.accounts)
        notes.append(
            "the remote's account could not be read (see Status above), so the folders above "
            "are guesses: the desktop app's Dropbox folders, and for a team each folder in it"
        )
    candidates = []
    for acc in linked:
        base: list[str] = []
        certain = account is not None
        if path_root and path_root != "home":
            if account is not None and path_root == account.root_namespace_id:
                base = []  # the team space root is the desktop app's folder itself
            else:
                notes.append(
                    f"path_root {path_root} is a namespace this check cannot place in the "
                    f"Dropbox folder {acc.path}: look for the remote's folder there yourself"
                )
                continue
        elif account is not None and account.team_space and account.home_path:
            base = _relative_parts(account.home_path)
        sync_parts = base + parts
        candidates.append(
            Candidate(acc, acc.path.joinpath(*sync_parts), "/".join(sync_parts), certain)
        )
        if account is None and acc.is_team and not (path_root and path_root != "home"):
            candidates += [
                Candidate(
                    acc,
                    member / Path(*parts),
                    f"{member.name}/" + "/".join(parts),
                    False,
                    speculative=True,
                )
                for member in _member_folders(acc.path)
            ]
    return candidates, notes


def _member_folders(folder: Path) -> list[Path]:
    """The folders of a team space root: one of them may be the (unknown) member's home."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def existing_folder(folder: Path) -> Optional[Path]:
    """`folder` if it exists, matching names case-insensitively as Dropbox does; else None.

    Dropbox paths are case-insensitive while Linux file systems are not: the remote URL may say
    `dvc/x` for the folder the desktop app created as `DVC/x`.
    """
    if folder.is_dir():
        return folder
    anchor = next((p for p in folder.parents if p.is_dir()), None)
    if anchor is None:
        return None
    current = anchor
    for part in folder.relative_to(anchor).parts:
        try:
            names = {name.lower(): name for name in os.listdir(current)}
        except OSError:
            return None
        match = names.get(part.lower())
        if match is None:
            return None
        current = current / match
    return current if current.is_dir() else None


def containing_dropbox_folder(app: DesktopApp, path: Path) -> Optional[LinkedAccount]:
    """The linked account whose Dropbox folder is or contains `path` (symlinks resolved)."""
    try:
        real = Path(os.path.realpath(path))
    except OSError:
        return None
    for acc in app.accounts:
        try:
            folder = Path(os.path.realpath(acc.path))
        except OSError:
            continue
        if not folder.is_dir():
            continue
        probe = real
        while True:
            try:
                if probe == folder or (probe.exists() and os.path.samefile(probe, folder)):
                    return acc
            except OSError:
                pass
            if probe == probe.parent:
                break
            probe = probe.parent
    return None
