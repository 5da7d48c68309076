"""`DropboxClient`: refreshes that are thread-safe, shared and persisted; its constructors."""

from __future__ import annotations

import datetime
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Optional

import dropbox
from dropbox.exceptions import AuthError, BadInputError
from dropbox.session import API_HOST as API_HOST_DEFAULT

from .. import sdk_internals
from ..errors import DropboxRemoteError, TransferFatal
from ..http_session import create_session
from ..options import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, path_root_value
from .credentials import Credentials, CredentialsFile, _utc_now
from .messages import CredentialSource, translate_auth_error
from .resolve import resolve_credentials

if TYPE_CHECKING:
    from ..transfer.pacer import Pacer

logger = logging.getLogger("dvc.dvc_dropbox.auth")

REFRESH_MARGIN = datetime.timedelta(seconds=300)
# A request that times out is tried again once (a lost packet); a second timeout in a row in the
# same thread means the server is silent, and says so instead of waiting through every retry.
TIMEOUTS_IN_A_ROW = 2
# Routes that do long work inside the request: a commit of up to 1,000 files holds Dropbox's
# namespace write lock in turn with every other writer of the account, and answers only when all
# are committed (seconds to minutes on a busy account: "about 10 or 15 seconds until the first
# error" on a slow finish, dropbox-api.md). Their read timeout is at least COMMIT_TIMEOUT_S, so a
# slow commit is not taken for a silent server, while every other route keeps the short
# `timeout` (25 s) that tells a silent server within a minute. 90 s: several slow commits'
# worth, and two of them in a row (the timeout rule) still end well within the 4 minutes a hung
# `dvc push` is given in the fault matrix.
COMMIT_ROUTES = frozenset(
    {"files/upload_session/finish_batch_v2", "files/upload_session/finish"}
)
COMMIT_TIMEOUT_S = 90.0
# The SDK's host keys and the environment variables that override those hosts (dropbox.session).
HOST_VARS = {
    "api": "DROPBOX_API_HOST",
    "content": "DROPBOX_API_CONTENT_HOST",
    "notify": "DROPBOX_API_NOTIFY_HOST",
}


class DropboxTimeoutError(TransferFatal, DropboxRemoteError):
    """Dropbox (or the host configured in its place) did not answer, twice in a row.

    Transfer-fatal: every other file would wait out the same timeouts (a frozen server printed
    one error line per file, 31 in the fault matrix) before failing the same way."""


def timeout_error(hostname: str, var: Optional[str], exc: BaseException, timeouts: Any) -> str:
    """What to say about a host that did not answer (`timeouts`: (connect, read) seconds)."""
    import requests

    connect, read = timeouts if isinstance(timeouts, tuple) else (timeouts, timeouts)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        what = f"connecting to {hostname} timed out ({connect:g} s, connect_timeout)"
    else:
        what = (
            f"requests to {hostname} timed out: no answer within {connect:g} s to set up the "
            f"connection (connect_timeout) or {read:g} s to answer (timeout)"
        )
    where = ""
    if var and os.environ.get(var):
        where = f"; {var} is set, so {hostname} is used instead of Dropbox: check that variable"
    return (
        f"Dropbox did not answer: {what}, {TIMEOUTS_IN_A_ROW} times in a row{where}. Check the "
        "network connection and any proxy settings; on a slow link raise the remote's timeout "
        "(dvc remote modify <name> timeout 120)"
    )


def _raise_network_setup_error(exc: BaseException, hostname: str) -> None:
    """A certificate or proxy failure is raised as its one message (sdk_errors), from None."""
    from .. import sdk_errors  # not at import time: sdk_errors imports the transfer package

    setup = sdk_errors.network_setup_error(exc, hostname)
    if setup is not None:
        raise setup from None


def _expiring(expires_at: Optional[datetime.datetime]) -> bool:
    return expires_at is not None and _utc_now() + REFRESH_MARGIN >= expires_at


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
    # Route -> the requests timeout it gets instead of the client's (COMMIT_ROUTES).
    _dvc_route_timeouts: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = self._dvc_state
        where = state.source.describe() if state else "unknown source"
        return f"<DropboxClient app_key={sdk_internals.app_key(self)!r} credentials from {where}>"

    def clone(self, *args: Any, **kwargs: Any) -> DropboxClient:
        new = super().clone(*args, **kwargs)
        new._dvc_state = self._dvc_state
        new._dvc_route_timeouts = self._dvc_route_timeouts
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

    def request_json_string(self, host: str, *args: Any, **kwargs: Any) -> Any:
        import requests

        self._state.used.token = sdk_internals.access_token(self)
        route = args[0] if args else kwargs.get("func_name")
        if kwargs.get("timeout") is None and route in self._dvc_route_timeouts:
            kwargs["timeout"] = self._dvc_route_timeouts[route]
        try:
            result = super().request_json_string(host, *args, **kwargs)
        except requests.exceptions.Timeout as exc:
            hostname = sdk_internals.host_name(self, host)
            self._timed_out(hostname, HOST_VARS.get(host), exc, kwargs.get("timeout"))
            raise
        except OSError as exc:  # requests' errors are OSErrors: a certificate, a proxy?
            _raise_network_setup_error(exc, sdk_internals.host_name(self, host))
            raise
        self._state.used.timeouts = 0
        return result

    def _timed_out(
        self, hostname: str, var: Optional[str], exc: BaseException, timeouts: Any = None
    ) -> None:
        """Count a timeout of this thread; the second in a row is the end (not retried)."""
        used = self._state.used
        used.timeouts = getattr(used, "timeouts", 0) + 1
        if used.timeouts >= TIMEOUTS_IN_A_ROW:
            used.timeouts = 0
            logger.debug("Dropbox request to %s: %r", hostname, exc)
            raise DropboxTimeoutError(
                timeout_error(hostname, var, exc, timeouts or sdk_internals.timeout(self))
            ) from None

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
        import requests

        try:
            super().refresh_access_token(host=host, scope=scope)
        except (AuthError, BadInputError) as exc:
            raise translate_auth_error(exc, self._state.source, refreshing=True) from None
        except requests.exceptions.Timeout as exc:
            var = HOST_VARS["api"] if host == API_HOST_DEFAULT else None
            self._timed_out(host, var, exc)
            raise
        except OSError as exc:
            _raise_network_setup_error(exc, sdk_internals.host_name(self, "api"))
            raise
        self._state.used.timeouts = 0


def create_client(
    app_key: Optional[str] = None,
    app_secret: Optional[str] = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_connections: int = 8,
    path_root: Optional[str] = None,
    remote_name: Optional[str] = None,
    url: Optional[str] = None,
    interactive: bool = True,
    validate: bool = True,
    app_key_from: Optional[str] = None,
    dvc_remote: bool = True,
    pacer: Optional[Pacer] = None,
) -> DropboxClient:
    """A ready client: credentials resolved (asking if needed) and checked before it returns.

    With a `pacer`, the start-up renewal goes through it like every other call: a 5xx or a dropped
    connection on the token endpoint is waited out, not fatal.

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
    client = client_for(
        resolved.credentials,
        app_secret,
        resolved.source,
        resolved.store,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_connections=max_connections,
    )
    if validate:
        _validate(client, pacer)
    if path_root:
        client = client.with_path_root(_path_root(path_root, client))
    return client


def client_for(
    creds: Credentials,
    app_secret: Optional[str],
    source: CredentialSource,
    store: Optional[CredentialsFile],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: Optional[float] = None,
    max_connections: int = 8,
    paced: bool = True,
) -> DropboxClient:
    """A client on credentials already resolved (`create_client` resolves them first).

    Renewed tokens go to `store`; messages name `source`. No request is made here. `paced=False`
    (the `dvc-dropbox` commands, which make a few calls without a pacer) keeps the SDK's retries.
    """
    # The pacer owns rate-limit and server-error waits (visible, bounded); the SDK would retry
    # 429s forever and 5xx with silent sleeps before the pacer ever saw them.
    retries = {} if not paced else {"max_retries_on_rate_limit": 0, "max_retries_on_error": 0}
    client = DropboxClient(
        oauth2_access_token=creds.access_token,
        oauth2_refresh_token=creds.refresh_token,
        oauth2_access_token_expiration=creds.expires_at,
        app_key=creds.app_key if creds.refresh_token else None,
        app_secret=app_secret or None,
        session=create_session(max_connections),
        # (connect, read): a host that accepts nothing is told apart in seconds, while the read
        # timeout leaves the server its time to answer.
        timeout=timeout if connect_timeout is None else (min(connect_timeout, timeout), timeout),
        user_agent="dvc-dropbox",
        **retries,
    )
    client._dvc_state = _AuthState(source, store)
    connect = timeout if connect_timeout is None else min(connect_timeout, timeout)
    commit = (connect, max(timeout, COMMIT_TIMEOUT_S))
    client._dvc_route_timeouts = dict.fromkeys(COMMIT_ROUTES, commit)
    return client


def _validate(client: DropboxClient, pacer: Optional[Pacer] = None) -> None:
    """Renew now if due, so a revoked refresh token fails here rather than in a worker thread.

    The filesystem then makes one cheap authenticated call (connection.Connection.check) in the same
    thread, which catches a revoked access token too.
    """
    import requests

    def oauth2_token() -> None:  # the name the pacer's messages use
        client.check_and_refresh_access_token()

    try:
        if pacer is not None:
            pacer.call(oauth2_token)
        else:
            oauth2_token()
    except requests.Timeout:
        raise DropboxTimeoutError(
            f"Dropbox did not answer ({API_HOST_DEFAULT}) while renewing the access token: the "
            "request timed out; check the network connection (and any proxy settings) and run "
            "the command again"
        ) from None
    except requests.ConnectionError:
        raise DropboxRemoteError(
            f"cannot connect to Dropbox ({API_HOST_DEFAULT}) to renew the access token; check "
            "the network connection (and any proxy settings) and run the command again"
        ) from None


def _path_root(value: str, client: Any) -> Any:
    """The SDK's PathRoot for a configured `path_root`.

    `root` is the account's root namespace (a team space's root, which contains the member's home
    folder; for an account without a team space, its home), discovered with one
    get_current_account call, made only when `root` is configured and once per client (clients
    are cached per settings in connection.py); a namespace id is used as it is.
    """
    from dropbox import common

    value = path_root_value(value)  # the config schema's rule; refuses anything else
    if value == "home":
        return common.PathRoot.home
    if value == "root":
        from ..sdk_errors import new_pacer

        account = new_pacer(1).call(client.users_get_current_account)
        return common.PathRoot.root(account.root_info.root_namespace_id)
    # Any namespace the user can reach (a team folder, a shared folder, the root itself): Dropbox
    # answers `root` with invalid_root unless the id is the root namespace.
    return common.PathRoot.namespace_id(value)
