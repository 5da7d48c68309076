"""Credentials and the SDK client: env vars first, then the credentials file, then interactive.

`create_client` is the single place the plugin gets a `dropbox.Dropbox` from.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Optional

from .errors import DropboxAuthError, DropboxConfigError

SCOPES = (
    "account_info.read",
    "files.metadata.read",
    "files.metadata.write",
    "files.content.read",
    "files.content.write",
)


def parse_expires_at(value: str) -> datetime.datetime:
    """ISO 8601, with or without timezone (naive = UTC) -> naive UTC, as the SDK wants."""
    try:
        parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DropboxConfigError(
            f"DROPBOX_EXPIRES_AT is not an ISO 8601 date-time: {value!r}; "
            "use e.g. 2026-01-31T12:00:00Z, or unset it"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def create_client(
    app_key: Optional[str] = None,
    app_secret: Optional[str] = None,
    *,
    timeout: float = 100.0,
    max_connections: int = 8,
    path_root: Optional[str] = None,
) -> Any:
    import dropbox

    app_key = app_key or os.environ.get("DROPBOX_APP_KEY")
    access = os.environ.get("DROPBOX_ACCESS_TOKEN")
    refresh = os.environ.get("DROPBOX_REFRESH_TOKEN")
    expires = os.environ.get("DROPBOX_EXPIRES_AT")
    if not access and not refresh:
        raise DropboxAuthError(
            "no Dropbox credentials: set DROPBOX_REFRESH_TOKEN (with the remote's app_key) "
            "or DROPBOX_ACCESS_TOKEN"
        )
    if refresh and not app_key:
        raise DropboxAuthError(
            "DROPBOX_REFRESH_TOKEN needs the Dropbox app key: "
            "`dvc remote modify <remote> app_key <key>` or set DROPBOX_APP_KEY"
        )
    session = dropbox.create_session(max_connections=max_connections)
    client = dropbox.Dropbox(
        oauth2_access_token=access,
        oauth2_refresh_token=refresh,
        oauth2_access_token_expiration=parse_expires_at(expires) if expires else None,
        app_key=app_key,
        app_secret=app_secret,
        session=session,
        timeout=timeout,
        # The pacer owns rate-limit waits (visible, bounded); the SDK would retry forever.
        max_retries_on_rate_limit=0,
        user_agent="dvc-dropbox",
    )
    if path_root:
        client = client.with_path_root(_path_root(path_root))
    return client


def _path_root(value: str) -> Any:
    from dropbox import common

    if value == "home":
        return common.PathRoot.home
    if value.isdigit():
        return common.PathRoot.root(value)
    raise DropboxConfigError(
        f"path_root must be 'home' or a namespace id (digits), not {value!r}"
    )
