"""Credentials and the SDK client: environment first, then the credentials file, then interactive.

`create_client` is the single place the plugin gets a `dropbox.Dropbox` from. It resolves the
credentials eagerly (in the calling thread, which for DVC is the main thread building the
filesystem), so the interactive prompt reads the terminal once and credential errors surface as
one clear `DropboxAuthError` before any transfer thread starts.

The SDK refreshes access tokens only in memory; `DropboxClient` serializes refreshes across
threads, reuses a token another process has just written, and writes refreshed tokens back to the
file they came from (never to the environment). Every `AuthError` leaving the client is turned into
a `DropboxAuthError` that says what happened, where the credentials came from and what to do.
No message, log line or repr contains a token.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import threading
from pathlib import Path
from typing import Any, Optional

import dropbox
from dropbox.exceptions import AuthError, BadInputError
from dropbox.session import API_HOST as API_HOST_DEFAULT

from . import oauth_flow, sdk_errors, sdk_internals
from .credentials import (
    ENV_CREDENTIALS_FILE,
    Credentials,
    CredentialsFile,
    _utc_now,
    credentials_path,
    parse_expiry,
    warn_if_not_git_ignored,
)
from .errors import DropboxAuthError, DropboxConfigError, DropboxRemoteError
from .oauth_flow import SCOPES
from .terminal import Terminal

logger = logging.getLogger("dvc.dvc_dropbox.auth")

ENV_ACCESS_TOKEN = "DROPBOX_ACCESS_TOKEN"
ENV_REFRESH_TOKEN = "DROPBOX_REFRESH_TOKEN"
ENV_EXPIRES_AT = "DROPBOX_EXPIRES_AT"
ENV_APP_KEY = "DROPBOX_APP_KEY"
# The SDK refreshes this long before the recorded expiry (dropbox_client.TOKEN_EXPIRATION_BUFFER).
REFRESH_MARGIN = datetime.timedelta(seconds=300)
APP_CONSOLE_URL = "https://www.dropbox.com/developers/apps"
# Naming the account after authorizing is one request; a slow answer must not hold the command.
ACCOUNT_LOOKUP_TIMEOUT_S = 10.0

__all__ = [
    "SCOPES",
    "CredentialSource",
    "DropboxClient",
    "create_client",
    "explain_auth_error",
    "parse_expires_at",
    "resolve_credentials",
]


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


# -- where credentials come from ----------------------------------------------------------------


@dataclasses.dataclass
class CredentialSource:
    """Where the credentials in use came from, for messages: never holds a secret."""

    kind: str  # "env" | "file" | "unknown"
    path: Optional[Path] = None
    env_vars: tuple[str, ...] = ()
    app_key_from: str = ""  # "the remote's app_key option" / "DROPBOX_APP_KEY"
    remote: Optional[str] = None  # None: no DVC remote known (e.g. `dvc ls-url dropbox://...`)

    def describe(self) -> str:
        if self.kind == "env":
            return "the environment variable" + (
                f" {self.env_vars[0]}"
                if len(self.env_vars) == 1
                else "s " + ", ".join(self.env_vars)
            )
        if self.kind == "file":
            return f"the credentials file {self.path}"
        return "the credentials in use"

    def fix(self) -> str:
        if self.kind == "env":
            return (
                f"get new values with `dvc-dropbox login {helper_args(self.remote)}` and "
                f"`dvc-dropbox export-env {helper_args(self.remote)}` on a machine with a "
                "browser, or unset "
                f"{', '.join(self.env_vars)} to use the credentials file instead"
            )
        if self.kind == "file":
            return f"remove {self.path} and run the command again to re-authorize"
        return (
            f"run `dvc-dropbox status {helper_args(self.remote)}` to see where the credentials "
            "come from, "
            "and renew them"
        )


def helper_args(remote: Optional[str]) -> str:
    """How to name the remote to `dvc-dropbox` commands in a message."""
    return remote if remote else "--app-key <app key>"


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


def missing_app_key_message(remote: Optional[str]) -> str:
    if remote:
        what = f"the Dropbox remote '{remote}' has no app key"
        configure = (
            f"       dvc remote modify {remote} app_key <app key>\n     (or set {ENV_APP_KEY})."
        )
    else:
        what = f"no Dropbox app key is set ({ENV_APP_KEY})"
        configure = (
            f"       export {ENV_APP_KEY}=<app key>\n"
            "     (for a DVC remote: dvc remote modify <remote> app_key <app key>)."
        )
    return (
        f"{what}. dvc-dropbox reaches Dropbox through a Dropbox app of your own, created once "
        "in a minute:\n"
        f"  1. open {APP_CONSOLE_URL} and click 'Create app';\n"
        "  2. choose 'Scoped access' and 'Full Dropbox', and give it any name;\n"
        "  3. on its Permissions tab tick " + ", ".join(SCOPES) + " and click 'Submit'\n"
        "     (no redirect URI and no app secret are needed);\n"
        "  4. copy the 'App key' from its Settings tab and run\n" + configure
    )


def no_terminal_message(remote: Optional[str], path: Path) -> str:
    what = f"Dropbox remote '{remote}' needs" if remote else "Dropbox access needs"
    return (
        f"{what} authorization, but stdin is not a terminal, so dvc-dropbox cannot ask for "
        "it. Authorize in one of three ways:\n"
        "  1. run the command once in an interactive terminal; the credentials are then saved "
        f"to {path} and used from then on;\n"
        f"  2. set {ENV_REFRESH_TOKEN} together with the app key (remote option app_key or "
        f"{ENV_APP_KEY}), e.g. from your CI's secret store;\n"
        f"  3. run `dvc-dropbox login {helper_args(remote)}` on a machine with a browser, then "
        f"`dvc-dropbox export-env {helper_args(remote)}` prints the values for way 2."
    )


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


def authorized_line(creds: Credentials, path: Path, saved: bool) -> str:
    """The one line after a successful first use: whose account, and where it was kept."""
    who = _account_name(creds)
    if saved:
        return f"Authorized Dropbox account {who}; credentials saved to {path}"
    return f"Authorized Dropbox account {who} for this command only (not saved to {path})"


def _account_name(creds: Credentials) -> str:
    """`Name <email>` of the account just authorized; its id if Dropbox does not say quickly."""
    try:
        client = dropbox.Dropbox(
            oauth2_access_token=creds.access_token,
            max_retries_on_error=0,
            max_retries_on_rate_limit=0,
            timeout=ACCOUNT_LOOKUP_TIMEOUT_S,
            user_agent="dvc-dropbox",
        )
        account = client.users_get_current_account()
        return f"{account.name.display_name} <{account.email}>"
    except Exception as exc:  # the credentials are saved; naming the account is a courtesy
        logger.debug("could not read the Dropbox account: %s", type(exc).__name__)
        return creds.account_id or "(account id unknown)"


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


# -- errors ------------------------------------------------------------------------------------


def _expiring(expires_at: Optional[datetime.datetime]) -> bool:
    return expires_at is not None and _utc_now() + REFRESH_MARGIN >= expires_at


def translate_auth_error(
    exc: Exception, source: CredentialSource, *, refreshing: bool = False
) -> DropboxAuthError:
    """An SDK AuthError/BadInputError -> a message naming the cause, the source and the fix."""
    if source.kind == "env" and ENV_REFRESH_TOKEN not in source.env_vars:
        expired_why = f"there is no {ENV_REFRESH_TOKEN} to renew it"
    else:
        expired_why = "renewing it did not help"
    context = sdk_errors.AuthContext(
        where=source.describe(),
        fix=source.fix(),
        app_key_from=source.app_key_from or "the config",
        expired_why=expired_why,
        console=APP_CONSOLE_URL,
        scopes=", ".join(SCOPES),
    )
    return sdk_errors.auth_error(exc, context, refreshing=refreshing)


def explain_auth_error(exc: Exception) -> DropboxAuthError:
    """For an AuthError that reached code outside `DropboxClient` (source unknown)."""
    return translate_auth_error(exc, CredentialSource("unknown"))


# -- the client --------------------------------------------------------------------------------


class _AuthState:
    """Shared by a client and its clones (with_path_root): one refresh at a time, one source."""

    def __init__(self, source: CredentialSource, store: Optional[CredentialsFile]):
        self.source = source
        self.store = store
        self.lock = threading.RLock()
        self.used = threading.local()  # the access token this thread's last request carried


class DropboxClient(dropbox.Dropbox):
    """`dropbox.Dropbox` whose refreshes are thread-safe, shared across processes and persisted."""

    _dvc_state: Optional[_AuthState] = None

    def __repr__(self) -> str:
        state = self._dvc_state
        where = state.source.describe() if state else "unknown source"
        return f"<DropboxClient app_key={sdk_internals.app_key(self)!r} credentials from {where}>"

    def clone(self, *args: Any, **kwargs: Any) -> DropboxClient:
        new = super().clone(*args, **kwargs)
        new._dvc_state = self._dvc_state
        return new

    # The SDK calls these two; both go through _refresh_locked.

    def check_and_refresh_access_token(self) -> None:
        if self._needs_refresh():
            with self._lock:
                if self._needs_refresh():
                    self._refresh(
                        API_HOST_DEFAULT,
                        sdk_internals.scope(self),
                        avoid={sdk_internals.access_token(self)},
                    )

    def refresh_access_token(self, host: str = "", scope: Optional[list[str]] = None) -> None:
        stale = getattr(self._state.used, "token", None)
        with self._lock:
            if (
                stale is not None
                and sdk_internals.access_token(self) != stale
                and not self._needs_refresh()
            ):
                return  # another thread renewed it while this one's request was failing
            avoid = {stale, sdk_internals.access_token(self)}
            self._refresh(host or API_HOST_DEFAULT, scope, avoid=avoid)

    def request_json_string(self, *args: Any, **kwargs: Any) -> Any:
        self._state.used.token = sdk_internals.access_token(self)
        return super().request_json_string(*args, **kwargs)

    def request_json_string_with_retry(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().request_json_string_with_retry(*args, **kwargs)
        except AuthError as exc:
            raise translate_auth_error(exc, self._state.source) from None
        except BadInputError as exc:
            if "required scope" in str(exc.message):
                raise translate_auth_error(exc, self._state.source) from None
            raise

    # -- internals

    @property
    def _state(self) -> _AuthState:
        if self._dvc_state is None:
            self._dvc_state = _AuthState(CredentialSource("env"), None)
        return self._dvc_state

    @property
    def _lock(self) -> threading.RLock:
        return self._state.lock

    def _needs_refresh(self) -> bool:
        if not (sdk_internals.refresh_token(self) and sdk_internals.app_key(self)):
            return False
        expiration = sdk_internals.access_token_expiration(self)
        return not sdk_internals.access_token(self) or expiration is None or _expiring(expiration)

    def _refresh(self, host: str, scope: Optional[list[str]], avoid: set[Optional[str]]) -> None:
        refresh_token, app_key = sdk_internals.refresh_token(self), sdk_internals.app_key(self)
        if not (refresh_token and app_key):
            return  # nothing to refresh with; the SDK then raises the original AuthError
        store = self._state.store
        if store is None:
            self._refresh_now(host, scope)
            return
        with store.locked():
            entry = store.get(app_key)
            same_grant = entry is not None and entry.refresh_token == refresh_token
            if (
                same_grant
                and entry is not None
                and entry.access_token
                and entry.access_token not in avoid
                and entry.expires_at is not None
                and not _expiring(entry.expires_at)
            ):
                # Another process refreshed a moment ago: use its token, save a round trip.
                sdk_internals.set_access_token(self, entry.access_token, entry.expires_at)
                logger.debug("using the access token another process saved to %s", store.path)
                return
            self._refresh_now(host, scope)
            if not same_grant or entry is None:
                # Logged out or re-authorized meanwhile: never resurrect or clobber that entry.
                return
            entry.access_token = sdk_internals.access_token(self)
            entry.expires_at = sdk_internals.access_token_expiration(self)
            try:
                store.put(entry)
            except OSError as exc:
                logger.warning(
                    "could not save the renewed Dropbox access token to %s (%s)",
                    store.path,
                    exc.strerror or exc,
                )
            else:
                logger.debug("saved the renewed Dropbox access token to %s", store.path)

    def _refresh_now(self, host: str, scope: Optional[list[str]]) -> None:
        logger.debug("renewing the Dropbox access token (%s)", self._state.source.describe())
        try:
            super().refresh_access_token(host=host, scope=scope)
        except (AuthError, BadInputError) as exc:
            raise translate_auth_error(exc, self._state.source, refreshing=True) from None


def create_client(
    app_key: Optional[str] = None,
    app_secret: Optional[str] = None,
    *,
    timeout: float = 100.0,
    max_connections: int = 8,
    path_root: Optional[str] = None,
    remote_name: Optional[str] = None,
    url: Optional[str] = None,
    interactive: bool = True,
    validate: bool = True,
    app_key_from: Optional[str] = None,
    dvc_remote: bool = True,
) -> DropboxClient:
    """A ready client: credentials resolved (asking if needed) and checked before it returns.

    Call it from the thread that owns the terminal (DVC's main thread): it may prompt, and it
    raises `DropboxAuthError`/`DropboxConfigError` with the fix instead of failing later inside
    transfer threads. `remote_name`/`url` only improve the wording of messages.
    """
    resolved = resolve_credentials(
        app_key,
        app_secret,
        remote_name=remote_name,
        url=url,
        interactive=interactive,
        app_key_from=app_key_from,
        dvc_remote=dvc_remote,
    )
    creds = resolved.credentials
    session = dropbox.create_session(max_connections=max_connections)
    client = DropboxClient(
        oauth2_access_token=creds.access_token,
        oauth2_refresh_token=creds.refresh_token,
        oauth2_access_token_expiration=creds.expires_at,
        app_key=creds.app_key if creds.refresh_token else None,
        app_secret=app_secret or None,
        session=session,
        timeout=timeout,
        # The pacer owns rate-limit and server-error waits (visible, bounded); the SDK would
        # retry 429s forever and 5xx with silent sleeps before the pacer ever saw them.
        max_retries_on_rate_limit=0,
        max_retries_on_error=0,
        user_agent="dvc-dropbox",
    )
    client._dvc_state = _AuthState(resolved.source, resolved.store)
    if validate:
        _validate(client)
    if path_root:
        client = client.with_path_root(_path_root(path_root))
    return client


def _validate(client: DropboxClient) -> None:
    """Renew now if due, so a revoked refresh token fails here rather than in a worker thread.

    The filesystem then makes one cheap authenticated call (fs.Connection.check) in the same
    thread, which catches a revoked access token too.
    """
    import requests

    try:
        client.check_and_refresh_access_token()
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise DropboxRemoteError(
            f"cannot reach Dropbox ({API_HOST_DEFAULT}) to renew the access token: "
            f"{type(exc).__name__}; check the network connection (and any proxy settings) "
            "and run the command again"
        ) from None


def _path_root(value: str) -> Any:
    from dropbox import common

    if value == "home":
        return common.PathRoot.home
    if value.isdigit():
        return common.PathRoot.root(value)
    raise DropboxConfigError(f"path_root must be 'home' or a namespace id (digits), not {value!r}")
