"""Where credentials come from: environment -> credentials file -> interactive authorization."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from typing import Optional

from ..errors import DropboxAuthError, DropboxConfigError
from . import oauth_flow
from .credentials import (
    ENV_ACCESS_TOKEN,
    ENV_APP_KEY,
    ENV_CREDENTIALS_FILE,
    ENV_EXPIRES_AT,
    ENV_REFRESH_TOKEN,
    Credentials,
    CredentialsFile,
    _utc_now,
    credentials_path,
    parse_expiry,
    warn_if_not_git_ignored,
)
from .messages import (
    CredentialSource,
    authorized_line,
    helper_args,
    missing_app_key_message,
    no_terminal_message,
)
from .terminal import Terminal

logger = logging.getLogger("dvc.dvc_dropbox.auth")


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name, "").strip()
    return value or None


def parse_expires_at(value: str) -> datetime.datetime:
    """DROPBOX_EXPIRES_AT: ISO 8601 with or without timezone (naive = UTC) -> naive UTC."""
    try:
        return parse_expiry(value)
    except ValueError:
        raise DropboxConfigError(
            f"{ENV_EXPIRES_AT} is not an ISO 8601 date-time (got {len(value)} characters "
            "that do not parse); use e.g. 2026-01-31T12:00:00Z or 2026-01-31T12:00:00 (UTC), "
            "or unset it"
        ) from None


def _remote_label(remote_name: Optional[str], url: Optional[str]) -> Optional[str]:
    """The DVC remote these credentials are for (for messages), or None if not known."""
    if remote_name:
        return remote_name
    try:
        from dvc.config import Config

        remotes = Config.from_cwd(validate=False).get("remote", {})
    except Exception:  # only for wording a message: never fail because of it
        return None
    dropbox_remotes = [
        name for name, conf in remotes.items() if str(conf.get("url", "")).startswith("dropbox://")
    ]
    if url:
        for name in dropbox_remotes:
            if str(remotes[name].get("url", "")).rstrip("/") == url.rstrip("/"):
                return name
    if len(dropbox_remotes) == 1:
        return dropbox_remotes[0]
    return "<remote>" if dropbox_remotes else None


@dataclasses.dataclass
class Resolved:
    credentials: Credentials
    source: CredentialSource
    store: Optional[CredentialsFile] = None


# Credentials obtained interactively that could not be written to disk, so one process asks once.
_SESSION: dict[tuple[str, str], Credentials] = {}


def _from_env(
    app_key: Optional[str], app_key_from: str, remote: Optional[str]
) -> Optional[Resolved]:
    access = _env(ENV_ACCESS_TOKEN)
    refresh = _env(ENV_REFRESH_TOKEN)
    expires = _env(ENV_EXPIRES_AT)
    if not access and not refresh:
        if expires:
            raise DropboxConfigError(
                f"{ENV_EXPIRES_AT} is set but neither {ENV_ACCESS_TOKEN} nor {ENV_REFRESH_TOKEN} "
                "is; set the token it belongs to, or unset it"
            )
        return None
    used = tuple(
        name
        for name, value in (
            (ENV_ACCESS_TOKEN, access),
            (ENV_EXPIRES_AT, expires),
            (ENV_REFRESH_TOKEN, refresh),
        )
        if value
    )
    source = CredentialSource("env", env_vars=used, app_key_from=app_key_from, remote=remote)
    expires_at = parse_expires_at(expires) if expires else None
    if refresh and not app_key:
        raise DropboxAuthError(
            f"{ENV_REFRESH_TOKEN} is set, but refreshing needs the Dropbox app key it was issued "
            f"to: run `dvc remote modify {remote or '<remote>'} app_key <app key>` or set "
            f"{ENV_APP_KEY}"
        )
    if not refresh and expires_at is not None and expires_at <= _utc_now():
        raise DropboxAuthError(
            f"the access token in {ENV_ACCESS_TOKEN} expired at {expires_at.isoformat()}Z "
            f"({ENV_EXPIRES_AT}) and there is no {ENV_REFRESH_TOKEN} to renew it; "
            f"set {ENV_REFRESH_TOKEN} (with the app key) instead: {source.fix()}"
        )
    creds = Credentials(
        app_key=app_key, refresh_token=refresh, access_token=access, expires_at=expires_at
    )
    return Resolved(creds, source)


def resolve_credentials(
    app_key: Optional[str] = None,
    app_secret: Optional[str] = None,
    *,
    remote_name: Optional[str] = None,
    url: Optional[str] = None,
    interactive: bool = True,
    app_key_from: Optional[str] = None,
    dvc_remote: bool = True,
) -> Resolved:
    """Environment -> credentials file -> interactive authorization (if stdin is a terminal).

    `dvc_remote=False` (fsspec/pandas use): messages name no DVC remote, whose options do not
    apply there.
    """
    if app_key:
        key_from = app_key_from or "the remote's app_key option"
    else:
        app_key = _env(ENV_APP_KEY)
        key_from = ENV_APP_KEY
    remote = _remote_label(remote_name, url) if dvc_remote else None

    from_env = _from_env(app_key, key_from, remote)
    if from_env is not None:
        logger.debug("Dropbox credentials from %s", from_env.source.describe())
        return from_env

    path = credentials_path()
    if not app_key:
        raise DropboxConfigError(missing_app_key_message(remote))
    store = CredentialsFile(path)
    source = CredentialSource("file", path=path, app_key_from=key_from, remote=remote)
    found = _load(store, app_key)
    if found is not None:
        logger.debug("Dropbox credentials from %s", source.describe())
        return Resolved(found, source, store)
    if not interactive:
        raise DropboxAuthError(
            f"no Dropbox credentials for app key {app_key!r} in {path}; "
            f"run `dvc-dropbox login {helper_args(remote)}`"
        )
    if not oauth_flow.stdin_is_terminal():
        raise DropboxAuthError(no_terminal_message(remote, path))
    with oauth_flow.FLOW_LOCK:
        # Another thread may have authorized while this one waited for the lock.
        found = _load(store, app_key)
        if found is None:
            refused = oauth_flow.ended()
            if refused is not None:
                raise refused  # cancelled or failed once in this process: no second link
            found = oauth_flow.authorize_no_redirect(app_key, app_secret)
            # Saved outside the conversation: the file lock may be held by a thread that is
            # logging, i.e. waiting for the progress-bar lock the conversation holds.
            saved = save_credentials(store, found)
            line = authorized_line(found, store.path, saved)
            with Terminal() as terminal:  # bars cleared around the line, as DVC's own messages
                terminal.write(line + "\n")
    return Resolved(found, source, store)


def _load(store: CredentialsFile, app_key: str) -> Optional[Credentials]:
    cached = _SESSION.get((str(store.path), app_key))
    if cached is not None:
        return cached
    if not store.path.exists():
        return None
    warn_if_not_git_ignored(store.path)
    return store.get(app_key)


def save_credentials(store: CredentialsFile, creds: Credentials) -> bool:
    """Store freshly authorized credentials; on a read-only disk keep them for this process."""
    assert creds.app_key
    try:
        with store.locked():
            store.put(creds)
    except (OSError, DropboxAuthError) as exc:
        _SESSION[(str(store.path), creds.app_key)] = creds
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        logger.warning(
            "could not save the Dropbox credentials to %s (%s); they are used for this command "
            "only. Set %s to a writable path to keep them.",
            store.path,
            reason,
            ENV_CREDENTIALS_FILE,
        )
        return False
    _SESSION.pop((str(store.path), creds.app_key), None)
    warn_if_not_git_ignored(store.path)
    return True
