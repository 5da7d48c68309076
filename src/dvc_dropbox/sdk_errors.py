"""Everything the plugin knows about Dropbox's errors, in one place.

- `tags`: the one walker of stone error unions (`['path', 'conflict', 'file']`);
- `classify`: the pacer's policy (rclone's `shouldRetry`): retry after what Dropbox asked, back off,
  resume from the server's state, or fail;
- `translate` and `PATH_ERRORS`: route errors -> the Python/DVC exceptions fsspec and DVC expect;
- `auth_error` and `AUTH_MESSAGES`: 401s and token-endpoint refusals -> one message with the fix;
- `transfer_fatal` and `fatal_text`: which failures every file of a transfer would meet alike (the
  transfer stops at the first, `transfer.fatal`), and how that one cause reads.

Where each tag comes from: dropbox-api.md §1.6 (how the SDK raises), §3.2 (the two kinds of "slow
down", as 429 and as 409) and §5.4 (401 tags).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from . import sdk_internals, urls
from .errors import (
    DropboxAuthError,
    DropboxConfigError,
    DropboxFullError,
    DropboxNetworkSetupError,
    DropboxRemoteError,
    DropboxRemotePathError,
    DropboxWriteDenied,
    TransferFatal,
)
from .transfer.pacer import Action, Decision, Pacer

if TYPE_CHECKING:
    from dropbox.exceptions import ApiError

logger = logging.getLogger("dvc.dvc_dropbox")

TOO_MANY_REQUESTS = "too_many_requests"
TOO_MANY_WRITE_OPERATIONS = "too_many_write_operations"
# A 429 without Retry-After (plain-text bodies come without one too): wait this long.
DEFAULT_RETRY_AFTER_S = 5.0
# Unions nest a few levels (UploadSessionFinishError.path -> WriteError.conflict -> ...).
MAX_UNION_DEPTH = 8


# -- the walker -----------------------------------------------------------------------------------


def tags(error: Any) -> tuple[str, ...]:
    """The tag path of a route error union, e.g. ('path', 'conflict', 'file') (bounded walk).

    A struct on the way (UploadWriteFailed, auth.RateLimitError) is followed through its `reason`.
    """
    found: list[str] = []
    for _ in range(MAX_UNION_DEPTH):
        error = _through_struct(error)
        tag = sdk_internals.union_tag(error)
        if tag is None:
            break
        found.append(tag)
        error = sdk_internals.union_value(error)
    return tuple(found)


def member(error: Any, tag: str) -> Any:
    """The value carried by the union tagged `tag` on the tag path (None if there is none)."""
    for _ in range(MAX_UNION_DEPTH):
        error = _through_struct(error)
        found = sdk_internals.union_tag(error)
        if found is None:
            return None
        if found == tag:
            return sdk_internals.union_value(error)
        error = sdk_internals.union_value(error)
    return None


def _through_struct(value: Any) -> Any:
    if sdk_internals.union_tag(value) is None and value is not None:
        return getattr(value, "reason", None)
    return value


def summary(error: Any) -> str:
    """The tag path for messages ('path/conflict/file'): never an SDK repr."""
    return "/".join(tags(error)) or "unknown error"


def write_contention(error: Any) -> bool:
    """True if a route error (at any depth) is too_many_write_operations."""
    return TOO_MANY_WRITE_OPERATIONS in tags(error)


def rate_limit_reason(exc: Any) -> str:
    """A RateLimitError's reason: too_many_requests (also plain-text 429s) or write contention."""
    if write_contention(getattr(exc, "error", None)):
        return TOO_MANY_WRITE_OPERATIONS
    return TOO_MANY_REQUESTS


def api_error(error: Any) -> ApiError:
    """A route error that came inside a result (batch entry, failed job), as the SDK raises it."""
    from dropbox.exceptions import ApiError

    return ApiError(None, error, None, None)


# -- the policy -----------------------------------------------------------------------------------


def classify(exc: BaseException) -> Decision:
    """The pacer's policy: what to do about one failed call."""
    from dropbox import exceptions

    if isinstance(exc, exceptions.RateLimitError):
        reason = rate_limit_reason(exc)
        wait = float(exc.backoff) if exc.backoff is not None else DEFAULT_RETRY_AFTER_S
        # too_many_requests is per token: every call of the client must wait. Contention is per
        # namespace and per commit: only the call that met it waits.
        pause_all = reason == TOO_MANY_REQUESTS
        return Decision(Action.RETRY, reason, retry_after=wait, pause_all=pause_all)
    if isinstance(exc, exceptions.ApiError):
        return classify_error(exc.error)
    if isinstance(exc, exceptions.InternalServerError):
        return Decision(Action.BACKOFF, "server error")
    # Before the connection errors they are: a certificate or a proxy does not get better by
    # waiting (5 minutes of backoff before issue 16), so they fail, once, with the fix.
    if certificate_failure(exc) is not None or proxy_failure(exc) is not None:
        return Decision(Action.FAIL, "network setup")
    if _is_timeout(exc):
        return Decision(Action.BACKOFF, "timed out")
    if _is_connection_error(exc):
        return Decision(Action.BACKOFF, "connection error")
    return Decision(Action.FAIL, type(exc).__name__)


def classify_error(error: Any) -> Decision:
    """The decision for a route error value (409 body, batch entry failure, failed job)."""
    path = tags(error)
    if TOO_MANY_WRITE_OPERATIONS in path:
        # The 409 form carries no retry_after: the pacer backs off exponentially.
        return Decision(Action.RETRY, TOO_MANY_WRITE_OPERATIONS)
    if "incorrect_offset" in path:
        offset = getattr(member(error, "incorrect_offset"), "correct_offset", None)
        if isinstance(offset, int):
            return Decision(Action.RESUME, "incorrect_offset", resume_at=offset)
    return Decision(Action.FAIL, "/".join(path) or "unknown error")


def _is_timeout(exc: BaseException) -> bool:
    import socket

    import requests
    import urllib3

    if isinstance(exc, (requests.exceptions.Timeout, TimeoutError, socket.timeout)):
        return True
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return True
    # requests turns a read timeout in the middle of a body into ConnectionError(ReadTimeoutError).
    return isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    )


def _is_connection_error(exc: BaseException) -> bool:
    import requests
    import urllib3

    return isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,  # the body broke off
            urllib3.exceptions.ProtocolError,
            ConnectionError,
        ),
    )


# -- certificates and proxies: errors no wait can fix -----------------------------------------

# Where requests finds the CA bundle and the proxy (requests.utils: lowercase names win).
CA_BUNDLE_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARS = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
# The SDK hands the exception of requests on as it is; requests wraps urllib3's (MaxRetryError
# whose `reason` is the SSLError or ProxyError), which wraps the ssl/socket one: a short walk.
MAX_CAUSE_DEPTH = 8


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps (args, urllib3's `reason`, the exception chain), bounded."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < MAX_CAUSE_DEPTH * 4:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__]
        inner += list(getattr(current, "args", ()) or ())
        todo += [e for e in inner if isinstance(e, BaseException)]


def certificate_failure(exc: BaseException) -> Optional[BaseException]:
    """The certificate verification failure inside `exc` (any wrapping), if that is what it is.

    Only verification: other TLS errors (a handshake cut by a dropped connection) may pass.
    """
    import ssl

    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause  # the innermost: it says why (`verify_message`)
    for cause in causes:
        if isinstance(cause, (ssl.SSLError, OSError)) and "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return cause
        if "Could not find a suitable TLS CA certificate bundle" in str(cause):
            return cause  # requests: REQUESTS_CA_BUNDLE names no file
    return None


def proxy_failure(exc: BaseException) -> Optional[BaseException]:
    """The proxy error inside `exc`: the proxy refused, does not exist, or refused the tunnel."""
    import requests
    import urllib3

    for cause in _causes(exc):
        if isinstance(cause, (requests.exceptions.ProxyError, urllib3.exceptions.ProxyError)):
            return cause
    return None


def _without_userinfo(url: str) -> str:
    """A proxy URL for messages: `user:password@` is never shown."""
    scheme, sep, rest = url.rpartition("://")
    host = rest.rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}" if sep else host


def network_setup_error(
    exc: BaseException, hostname: str = "Dropbox"
) -> Optional[DropboxNetworkSetupError]:
    """A certificate or proxy failure -> one message naming the variables that set it up."""
    certificate = certificate_failure(exc)
    if certificate is not None:
        why = getattr(certificate, "verify_message", None) or "certificate verify failed"
        bundle = next(((v, os.environ[v]) for v in CA_BUNDLE_VARS if os.environ.get(v)), None)
        if bundle is not None:
            where = (
                f"{bundle[0]} is set to {bundle[1]}, and that CA bundle does not trust it: "
                f"point {bundle[0]} at a bundle that holds the CA of {hostname}, or unset it "
                "to use the default bundle"
            )
        else:
            where = (
                "the default CA bundle does not trust it; if a proxy or firewall inspects TLS, "
                f"set {CA_BUNDLE_VARS[0]} to a CA bundle that holds its CA"
            )
        if "suitable TLS CA certificate bundle" in str(certificate):
            what = "no CA bundle at the path given"
        else:
            what = f"the TLS certificate of {hostname} could not be verified ({why})"
        logger.debug("Dropbox request to %s: %s: %s", hostname, type(certificate).__name__, why)
        return DropboxNetworkSetupError(f"{what}: {where}")
    proxy = proxy_failure(exc)
    if proxy is not None:
        given = [(v, os.environ[v]) for v in PROXY_VARS if os.environ.get(v)]
        if given:
            var, url = given[0]
            where = f"the proxy {_without_userinfo(url)} (from {var})"
        else:
            where = "the configured proxy"
        logger.debug("Dropbox request to %s through a proxy: %s", hostname, type(proxy).__name__)
        return DropboxNetworkSetupError(
            f"cannot reach {hostname} through {where}: it refused the connection, does not "
            "exist, or refused the tunnel. Check HTTPS_PROXY (or https_proxy, ALL_PROXY), or "
            f"add {hostname.rsplit(':', 1)[0]} to NO_PROXY to connect without the proxy"
        )
    return None


def new_pacer(jobs: int, **kwargs: Any) -> Pacer:
    """The pacer of one client: the generic mechanism with Dropbox's policy."""
    return Pacer(classify, max_in_flight=max(1, jobs), **kwargs)


# -- route errors -> Python/DVC exceptions ---------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    """One row of the table: any of `tags` on an error's tag path selects it (first row wins)."""

    tags: frozenset[str]
    exception: type[Exception]
    message: str  # formatted with {path} (as shown), {summary} (the tag path), {strerror}
    errno: Optional[int] = None  # OSErrors carry errno and the path, as fsspec and DVC expect

    def build(self, path: str, summary: str) -> Exception:
        strerror = os.strerror(self.errno) if self.errno is not None else ""
        message = self.message.format(path=path, summary=summary, strerror=strerror)
        if self.errno is not None:
            return self.exception(self.errno, message, path)
        return self.exception(message)


SPACE_FIX = (
    "free up space in that Dropbox account or upgrade its plan (https://www.dropbox.com/plans)"
)
REMOTE_URL_FIX = "dvc remote modify <name> url dropbox://<folder>/<subfolder>"

PATH_ERRORS: tuple[Translation, ...] = (
    Translation(frozenset({"not_found"}), FileNotFoundError, "{strerror}", errno.ENOENT),
    Translation(frozenset({"not_folder"}), NotADirectoryError, "{strerror}", errno.ENOTDIR),
    Translation(frozenset({"not_file"}), IsADirectoryError, "{strerror}", errno.EISDIR),
    Translation(
        frozenset({"file_ancestor"}),
        DropboxConfigError,
        "cannot write {path}: one of its parent folders is a file in Dropbox; point the remote "
        "at a folder (dvc remote modify <name> url dropbox://<folder>/...)",
    ),
    # Before `conflict`: these name the remote folder, so every object below it meets them.
    Translation(
        frozenset({"disallowed_name", "malformed_path"}),
        DropboxRemotePathError,
        "Dropbox does not accept the path {path} ({summary}): a name in it is not allowed in "
        f"Dropbox; point the remote at another folder ({REMOTE_URL_FIX})",
    ),
    Translation(
        frozenset({"no_write_permission"}),
        DropboxWriteDenied,
        "Dropbox does not let this account write to {path} (no_write_permission): the folder is "
        "shared with it read-only, or is a team folder it may not edit. Ask the folder's owner "
        f"for edit access, or point the remote at a folder you can write to ({REMOTE_URL_FIX})",
        errno.EACCES,
    ),
    Translation(frozenset({"conflict"}), FileExistsError, "{strerror} ({summary})", errno.EEXIST),
    Translation(
        frozenset({"insufficient_space"}),
        DropboxFullError,
        "Dropbox is full: there is not enough space left in the account to write {path} "
        f"(insufficient_space); {SPACE_FIX}",
    ),
    Translation(
        frozenset({"insufficient_quota"}),
        DropboxFullError,
        "the Dropbox team's space limit for this account is reached, so {path} cannot be "
        "written (insufficient_quota); free up space in the account, or ask a team admin to "
        "raise its member space limit",
    ),
    Translation(
        frozenset({"access_restricted", "restricted_content"}),
        PermissionError,
        "Dropbox refused access ({summary})",
        errno.EACCES,
    ),
)
OTHER_ERROR = Translation(frozenset(), DropboxRemoteError, "Dropbox error for {path}: {summary}")


def translate(exc: BaseException, shown: str) -> BaseException:
    """An SDK ApiError -> the exception fsspec and DVC expect; anything else is returned as is.

    `shown` is the Dropbox path as the user should read it (`/dvc/project/...`).
    """
    from dropbox import exceptions

    if not isinstance(exc, exceptions.ApiError):
        return exc
    return translation(exc.error).build(shown, summary(exc.error))


@contextlib.contextmanager
def translate_errors(path: str) -> Iterator[None]:
    """Inside: an SDK ApiError about plugin path `path` is raised as what fsspec and DVC expect."""
    from dropbox import exceptions

    try:
        yield
    except exceptions.ApiError as exc:
        # DVC prints the cause chain: an SDK repr there would be noise (and no help) to users.
        shown = urls.api_path(path) or "/"
        logger.debug("Dropbox error for %s: %r", shown, exc)
        raise translate(exc, shown) from None


def translation(error: Any) -> Translation:
    """The table row for a route error value."""
    path = set(tags(error))
    for row in PATH_ERRORS:
        if row.tags & path:
            return row
    return OTHER_ERROR


# -- authentication errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthContext:
    """The words an auth message needs that depend on where the credentials came from."""

    where: str  # "the credentials file /…/dropbox-user-credentials.json"
    fix: str  # what to do about it
    app_key_from: str  # "the remote's app_key option" / "DROPBOX_APP_KEY"
    expired_why: str  # why an expired access token was not renewed
    console: str  # the Dropbox App Console URL
    scopes: str  # the scopes dvc-dropbox needs, comma-separated


# Keyed by the 401 tag (dropbox-api.md §5.4), plus what the token endpoint answers: invalid_grant
# (a refresh token Dropbox no longer accepts), invalid_client (the app key), required_scope and
# malformed (a 400 BadInputError).
AUTH_MESSAGES: dict[str, str] = {
    "invalid_client": (
        "Dropbox does not accept the app key from {app_key_from} (invalid_client) while renewing "
        "the token from {where}: the key is wrong, or the app was deleted or needs its app "
        "secret. Check the key in {console}; then {fix}"
    ),
    "required_scope": (
        "your Dropbox app lacks the permission {scope!r}: in {console} open the app, tick "
        "{scope} on its Permissions tab, click Submit; then {fix}"
    ),
    "malformed": "Dropbox rejected the credentials from {where} as malformed; to fix it, {fix}",
    "invalid_grant": (
        "Dropbox rejected the refresh token from {where} (invalid_grant): access was revoked "
        "(e.g. the app was disconnected under Dropbox Settings > Connected apps), or the token "
        "was issued to another app than the app key from {app_key_from}. To fix it, {fix}"
    ),
    "invalid_access_token": (
        "Dropbox rejected the access token from {where} as invalid (revoked or malformed). "
        "To fix it, {fix}"
    ),
    "expired_access_token": (
        "the Dropbox access token from {where} has expired and {expired_why}. To fix it, {fix}"
    ),
    "missing_scope": (
        "the Dropbox token from {where} lacks the permission {scope!r}. In {console} open your "
        "app, tick {scope} (dvc-dropbox needs {scopes}) on its Permissions tab and click Submit; "
        "tokens keep their old permissions, so then {fix}"
    ),
    "user_suspended": (
        "the Dropbox account of the credentials from {where} is suspended; contact Dropbox "
        "support or use another account: {fix}"
    ),
    "other": "Dropbox refused the credentials from {where} ({tag}). To fix it, {fix}",
}


def auth_problem(exc: BaseException, *, refreshing: bool = False) -> tuple[str, str, str]:
    """(AUTH_MESSAGES key, Dropbox's tag, the scope concerned or '') of an auth failure."""
    from dropbox.exceptions import BadInputError

    text = str(getattr(exc, "body", None) or getattr(exc, "message", None) or "")
    if "invalid_client" in text:
        return "invalid_client", "invalid_client", ""
    if isinstance(exc, BadInputError):
        if "required scope" in text:
            return "required_scope", "", text.split("required scope", 1)[1].strip(" '\".:")
        return "malformed", "", ""
    error = getattr(exc, "error", None)
    tag = (tags(error) or ("other",))[0]
    if tag == "invalid_access_token" and refreshing:
        return "invalid_grant", tag, ""
    if tag == "missing_scope":
        return tag, tag, str(getattr(member(error, tag), "required_scope", None) or "?")
    return (tag if tag in AUTH_MESSAGES else "other"), tag, ""


def auth_error(
    exc: BaseException, context: AuthContext, *, refreshing: bool = False
) -> DropboxAuthError:
    """An SDK AuthError/BadInputError -> a message naming the cause, the source and the fix."""
    key, tag, scope = auth_problem(exc, refreshing=refreshing)
    # Only the class and the tag: a token endpoint's body is not ours to log.
    logger.debug("Dropbox refused the credentials: %s (%s)", type(exc).__name__, tag or key)
    return DropboxAuthError(
        AUTH_MESSAGES[key].format(
            where=context.where,
            fix=context.fix,
            app_key_from=context.app_key_from,
            expired_why=context.expired_why,
            console=context.console,
            scopes=context.scopes,
            scope=scope,
            tag=tag,
        )
    )


# -- causes that fail every file of a transfer -----------------------------------------------------

# The local disk is full (a download into the cache): every other file meets it too.
LOCAL_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def transfer_fatal(exc: BaseException) -> bool:
    """True if every other file of the same transfer would fail for the same reason.

    Rejected credentials (revoked, expired past renewal, a missing scope), no space in Dropbox, a
    remote folder Dropbox will not let this account write (a name it refuses, read-only sharing)
    and a full local disk: retrying file after file only repeats the message (issue 11 item 4).
    What concerns one file (a conflict, a file where a folder should be, a corrupt download,
    contention) is not fatal: the other files may well succeed.
    """
    from dropbox import exceptions

    if isinstance(exc, TransferFatal):
        return True
    if isinstance(exc, exceptions.AuthError):
        return True  # raw, not yet worded (the plugin's clients translate them on the way)
    if isinstance(exc, exceptions.ApiError):
        return issubclass(translation(exc.error).exception, TransferFatal)
    if network_setup_error(exc) is not None:
        return True  # raw, not yet worded: every request meets the same certificate or proxy
    return isinstance(exc, OSError) and exc.errno in LOCAL_FULL_ERRNOS


def fatal_text(exc: BaseException) -> str:
    """How a transfer-fatal cause reads for the user: its message, never an SDK repr."""
    from dropbox import exceptions

    if isinstance(exc, exceptions.AuthError):
        tag = (tags(exc.error) or ("unknown",))[0]
        return f"Dropbox refused the credentials ({tag}); re-authorize and run the command again"
    if isinstance(exc, exceptions.ApiError):
        exc = translate(exc, "the remote folder")
    setup = None if isinstance(exc, DropboxRemoteError) else network_setup_error(exc)
    if setup is not None:
        return str(setup)
    if isinstance(exc, OSError) and not isinstance(exc, DropboxRemoteError):
        if exc.errno in LOCAL_FULL_ERRNOS:
            where = f" writing {exc.filename}" if exc.filename else ""
            return (
                f"the local disk is full ({exc.strerror or 'no space left'}{where}); free up "
                "space there (or point the DVC cache elsewhere)"
            )
        # Ours (DropboxWriteDenied) carry the whole message there; str() would add "[Errno 13]".
        return str(exc.strerror or exc)
    return str(exc)


__all__ = [
    "AUTH_MESSAGES",
    "PATH_ERRORS",
    "TOO_MANY_REQUESTS",
    "TOO_MANY_WRITE_OPERATIONS",
    "AuthContext",
    "Translation",
    "api_error",
    "auth_error",
    "classify",
    "classify_error",
    "fatal_text",
    "member",
    "network_setup_error",
    "new_pacer",
    "rate_limit_reason",
    "summary",
    "tags",
    "transfer_fatal",
    "translate",
    "write_contention",
]
