"""sdk_errors: the tag walker, the policy (`classify`) and the tables, over the SDK's real types.

Pure logic: exceptions and stone values are built from `dropbox.exceptions` / `dropbox.files`
exactly as the SDK builds them from Dropbox's answers (dropbox-api.md §1.6).
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl

import pytest
import requests
import urllib3
from dropbox import auth, exceptions, files

from dvc_dropbox import sdk_errors
from dvc_dropbox.errors import (
    DropboxAuthError,
    DropboxConfigError,
    DropboxFullError,
    DropboxRemoteError,
    DropboxRemotePathError,
    DropboxWriteDenied,
)
from dvc_dropbox.sdk_errors import translate_errors
from dvc_dropbox.transfer.pacer import Action, Decision, DropboxRetryError

CONTEXT = sdk_errors.AuthContext(
    where="the credentials file /repo/.dvc/tmp/creds.json",
    fix="remove it and run the command again",
    app_key_from="the remote's app_key option",
    expired_why="renewing it did not help",
    console="https://www.dropbox.com/developers/apps",
    scopes="files.metadata.read, files.content.read",
)


def api(error: object) -> exceptions.ApiError:
    return exceptions.ApiError("req-1", error, None, None)


def rate_limited(reason: auth.RateLimitReason, retry_after: int) -> exceptions.RateLimitError:
    return exceptions.RateLimitError("req-1", auth.RateLimitError(reason, retry_after), retry_after)


# -- the walker -----------------------------------------------------------------------------------


def test_tags_walk_unions_and_structs() -> None:
    conflict = files.UploadSessionFinishError.path(
        files.WriteError.conflict(files.WriteConflictError.file)
    )
    assert sdk_errors.tags(conflict) == ("path", "conflict", "file")
    upload = files.UploadError.path(
        files.UploadWriteFailed(reason=files.WriteError.insufficient_space, upload_session_id="s")
    )
    assert sdk_errors.tags(upload) == ("path", "insufficient_space")
    reason = auth.RateLimitError(auth.RateLimitReason.too_many_write_operations, 3)
    assert sdk_errors.tags(reason) == ("too_many_write_operations",)
    assert sdk_errors.tags(None) == ()
    assert sdk_errors.tags("not a union") == ()
    assert sdk_errors.summary(conflict) == "path/conflict/file"
    assert sdk_errors.summary(None) == "unknown error"
    offset = files.UploadSessionOffsetError(correct_offset=7)
    lookup = files.UploadSessionFinishError.lookup_failed(
        files.UploadSessionLookupError.incorrect_offset(offset)
    )
    assert sdk_errors.member(lookup, "incorrect_offset") == offset
    assert sdk_errors.member(lookup, "not_found") is None


# -- the policy -----------------------------------------------------------------------------------


def test_too_many_requests_is_retried_after_what_dropbox_asked_and_pauses_everyone() -> None:
    decision = sdk_errors.classify(rate_limited(auth.RateLimitReason.too_many_requests, 7))
    assert decision == Decision(Action.RETRY, "too_many_requests", retry_after=7.0, pause_all=True)


def test_write_contention_as_429_waits_only_the_call_that_met_it() -> None:
    decision = sdk_errors.classify(rate_limited(auth.RateLimitReason.too_many_write_operations, 3))
    assert decision == Decision(Action.RETRY, "too_many_write_operations", retry_after=3.0)


def test_plain_text_429_is_too_many_requests() -> None:
    # A plain-text 429: no JSON error, Retry-After only in the header (or not at all).
    with_header = sdk_errors.classify(exceptions.RateLimitError("req-1", None, 12))
    assert with_header == Decision(Action.RETRY, "too_many_requests", 12.0, pause_all=True)
    without = sdk_errors.classify(exceptions.RateLimitError("req-1", None, None))
    assert without.retry_after == sdk_errors.DEFAULT_RETRY_AFTER_S
    assert without.reason == "too_many_requests" and without.pause_all


@pytest.mark.parametrize(
    "error",
    [
        files.UploadSessionFinishError.too_many_write_operations,
        files.UploadSessionFinishError.path(files.WriteError.too_many_write_operations),
        files.DeleteError.too_many_write_operations,
        files.DeleteBatchError.too_many_write_operations,
        files.RelocationBatchErrorEntry.too_many_write_operations,
        files.CreateFolderError.path(files.WriteError.too_many_write_operations),
        files.UploadError.path(
            files.UploadWriteFailed(
                reason=files.WriteError.too_many_write_operations, upload_session_id="s"
            )
        ),
    ],
)
def test_write_contention_as_409_is_retried_without_a_size(error: object) -> None:
    assert sdk_errors.classify(api(error)) == Decision(Action.RETRY, "too_many_write_operations")
    assert sdk_errors.write_contention(error)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (exceptions.InternalServerError("req-1", 503, "busy"), "server error"),
        (exceptions.InternalServerError("req-1", 500, "oops"), "server error"),
        (requests.exceptions.ConnectionError("reset by peer"), "connection error"),
        (requests.exceptions.ChunkedEncodingError("body broke off"), "connection error"),
        (ConnectionResetError(104, "reset"), "connection error"),
        (urllib3.exceptions.ProtocolError("broken"), "connection error"),
        (requests.exceptions.ReadTimeout("read timed out"), "timed out"),
        (requests.exceptions.ConnectTimeout("connect timed out"), "timed out"),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ReadTimeoutError(None, "/2/files/download", "timed out")
            ),
            "timed out",
        ),
        (socket.timeout("timed out"), "timed out"),
    ],
)
def test_server_errors_connections_and_timeouts_back_off(exc: BaseException, reason: str) -> None:
    assert sdk_errors.classify(exc) == Decision(Action.BACKOFF, reason)


def test_upload_offset_errors_resume_at_the_servers_offset() -> None:
    offset = files.UploadSessionOffsetError(correct_offset=8 * 2**20)
    append = api(files.UploadSessionAppendError.incorrect_offset(offset))
    assert sdk_errors.classify(append) == Decision(
        Action.RESUME, "incorrect_offset", resume_at=8 * 2**20
    )
    finish = api(
        files.UploadSessionFinishError.lookup_failed(
            files.UploadSessionLookupError.incorrect_offset(offset)
        )
    )
    assert sdk_errors.classify(finish).resume_at == 8 * 2**20


@pytest.mark.parametrize(
    "exc",
    [
        api(files.GetMetadataError.path(files.LookupError.not_found)),
        api(files.UploadSessionFinishError.path(files.WriteError.insufficient_space)),
        exceptions.AuthError("req-1", auth.AuthError.invalid_access_token),
        exceptions.BadInputError("req-1", "Error in call to API function"),
        exceptions.HttpError("req-1", 416, "range not satisfiable"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"),
        OSError(errno.ENOSPC, "No space left on device"),
        DropboxRetryError("gave up"),
        ValueError("a bug"),
    ],
)
def test_everything_else_fails(exc: BaseException) -> None:
    assert sdk_errors.classify(exc).action is Action.FAIL


# -- route errors -> Python/DVC exceptions ---------------------------------------------------------

SHOWN = "/dvc/project/files/md5/ab/cdef"


@pytest.mark.parametrize(
    ("error", "kind", "number", "text"),
    [
        (
            files.GetMetadataError.path(files.LookupError.not_found),
            FileNotFoundError,
            errno.ENOENT,
            "No such file or directory",
        ),
        (
            files.ListFolderError.path(files.LookupError.not_folder),
            NotADirectoryError,
            errno.ENOTDIR,
            "Not a directory",
        ),
        (
            files.DownloadError.path(files.LookupError.not_file),
            IsADirectoryError,
            errno.EISDIR,
            "Is a directory",
        ),
        (
            files.CreateFolderError.path(files.WriteError.conflict(files.WriteConflictError.file)),
            FileExistsError,
            errno.EEXIST,
            "File exists (path/conflict/file)",
        ),
        (
            files.DownloadError.path(files.LookupError.restricted_content),
            PermissionError,
            errno.EACCES,
            "Dropbox refused access (path/restricted_content)",
        ),
    ],
)
def test_path_errors_become_os_errors(
    error: object, kind: type[OSError], number: int, text: str
) -> None:
    translated = sdk_errors.translate(api(error), SHOWN)
    assert type(translated) is kind
    assert isinstance(translated, OSError)
    assert (translated.errno, translated.strerror, translated.filename) == (number, text, SHOWN)


def test_file_ancestor_insufficient_space_and_others_say_what_to_do() -> None:
    ancestor = files.UploadSessionFinishError.path(
        files.WriteError.conflict(files.WriteConflictError.file_ancestor)
    )
    translated = sdk_errors.translate(api(ancestor), SHOWN)
    assert isinstance(translated, DropboxConfigError)
    assert str(translated).startswith(f"cannot write {SHOWN}: one of its parent folders is a file")
    assert "dvc remote modify <name> url dropbox://<folder>/..." in str(translated)

    full = files.UploadSessionFinishError.path(files.WriteError.insufficient_space)
    translated = sdk_errors.translate(api(full), SHOWN)
    assert type(translated) is DropboxFullError
    assert str(translated) == (
        f"Dropbox is full: there is not enough space left in the account to write {SHOWN} "
        "(insufficient_space); free up space in that Dropbox account or upgrade its plan "
        "(https://www.dropbox.com/plans)"
    )

    member = files.RelocationError.insufficient_quota
    translated = sdk_errors.translate(api(member), SHOWN)
    assert type(translated) is DropboxFullError
    assert "ask a team admin to raise its member space limit" in str(translated)

    denied = files.UploadSessionFinishError.path(files.WriteError.no_write_permission)
    translated = sdk_errors.translate(api(denied), SHOWN)
    assert type(translated) is DropboxWriteDenied and isinstance(translated, PermissionError)
    assert (translated.errno, translated.filename) == (errno.EACCES, SHOWN)
    assert str(translated.strerror).startswith(
        f"Dropbox does not let this account write to {SHOWN} (no_write_permission)"
    )
    assert "dvc remote modify <name> url dropbox://<folder>/<subfolder>" in translated.strerror

    for bad in (
        files.GetMetadataError.path(files.LookupError.malformed_path("bad")),
        files.UploadSessionFinishError.path(files.WriteError.disallowed_name),
    ):
        translated = sdk_errors.translate(api(bad), SHOWN)
        assert type(translated) is DropboxRemotePathError
        assert str(translated).startswith(f"Dropbox does not accept the path {SHOWN} (path/")

    other = files.GetMetadataError.path(files.LookupError.unsupported_content_type)
    translated = sdk_errors.translate(api(other), SHOWN)
    assert str(translated) == f"Dropbox error for {SHOWN}: path/unsupported_content_type"
    not_api = requests.exceptions.ConnectionError("reset")
    assert sdk_errors.translate(not_api, SHOWN) is not_api


def test_no_translated_message_shows_an_sdk_repr() -> None:
    for row in (*sdk_errors.PATH_ERRORS, sdk_errors.OTHER_ERROR):
        text = str(row.build(SHOWN, "path/x"))
        assert "Error(" not in text and "None)" not in text, text


def test_translated_errors_are_raised_from_none_and_the_cause_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dvc.dvc_dropbox")
    full = api(files.UploadSessionFinishError.path(files.WriteError.insufficient_space))
    with pytest.raises(DropboxRemoteError) as info, translate_errors("dvc/project/x"):
        raise full
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "UploadSessionFinishError" not in str(info.value)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("insufficient_space" in m and "/dvc/project/x" in m for m in logged), logged


# -- authentication errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "refreshing", "expected"),
    [
        (
            exceptions.AuthError("r", auth.AuthError.invalid_access_token),
            False,
            "Dropbox rejected the access token from the credentials file /repo/.dvc/tmp/creds.json"
            " as invalid (revoked or malformed). To fix it, remove it and run the command again",
        ),
        (
            exceptions.AuthError("r", auth.AuthError.invalid_access_token),
            True,
            "Dropbox rejected the refresh token from the credentials file "
            "/repo/.dvc/tmp/creds.json (invalid_grant)",
        ),
        (
            exceptions.AuthError("r", auth.AuthError.expired_access_token),
            False,
            "has expired and renewing it did not help. To fix it,",
        ),
        (
            exceptions.AuthError(
                "r", auth.AuthError.missing_scope(auth.TokenScopeError("files.content.write"))
            ),
            False,
            "lacks the permission 'files.content.write'. In https://www.dropbox.com/developers"
            "/apps open your app, tick files.content.write (dvc-dropbox needs "
            "files.metadata.read, files.content.read)",
        ),
        (
            exceptions.AuthError("r", auth.AuthError.user_suspended),
            False,
            "is suspended; contact Dropbox support",
        ),
        (
            exceptions.AuthError("r", auth.AuthError.route_access_denied),
            False,
            "Dropbox refused the credentials from the credentials file /repo/.dvc/tmp/creds.json "
            "(route_access_denied)",
        ),
        (
            exceptions.BadInputError("r", 'Error: {"error": "invalid_client"}'),
            True,
            "does not accept the app key from the remote's app_key option (invalid_client)",
        ),
        (
            exceptions.BadInputError("r", "Your app is not permitted: required scope 'files.x'."),
            False,
            "your Dropbox app lacks the permission 'files.x'",
        ),
        (
            exceptions.BadInputError("r", "bad token shape"),
            False,
            "as malformed; to fix it, remove it and run the command again",
        ),
    ],
)
def test_auth_errors_name_the_cause_the_source_and_the_fix(
    exc: BaseException, refreshing: bool, expected: str
) -> None:
    translated = sdk_errors.auth_error(exc, CONTEXT, refreshing=refreshing)
    assert isinstance(translated, DropboxAuthError)
    assert expected in str(translated)
    assert "AuthError(" not in str(translated) and "BadInputError(" not in str(translated)


def _verify_failure() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify")
    error.verify_message = "unable to get local issuer certificate"
    return error


def _as_requests_raises(reason: BaseException, cls: type[Exception]) -> Exception:
    """requests(MaxRetryError(reason=urllib3(ssl/socket error))), as the SDK hands it on."""
    pool_error = urllib3.exceptions.MaxRetryError(None, "/2/check/user", reason)  # type: ignore
    return cls(pool_error)


@pytest.mark.parametrize(
    "exc",
    [
        _as_requests_raises(
            urllib3.exceptions.SSLError(_verify_failure()), requests.exceptions.SSLError
        ),
        _as_requests_raises(
            urllib3.exceptions.ProxyError("Unable to connect to proxy", OSError("refused")),
            requests.exceptions.ProxyError,
        ),
        requests.exceptions.ProxyError("Tunnel connection failed: 403 Forbidden"),
        OSError("Could not find a suitable TLS CA certificate bundle, invalid path: /nope"),
    ],
    ids=["certificate", "proxy-refused", "proxy-tunnel", "no-bundle"],
)
def test_certificate_and_proxy_errors_fail_at_once_as_one_cause(exc: Exception) -> None:
    assert sdk_errors.classify(exc).action is Action.FAIL  # no backoff: waiting cannot help
    assert sdk_errors.transfer_fatal(exc)  # every other file meets the same
    assert sdk_errors.network_setup_error(exc) is not None


def test_a_certificate_message_names_the_bundle_and_a_proxy_message_hides_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp-ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://me:s3cret@proxy.example:3128")
    certificate = _as_requests_raises(
        urllib3.exceptions.SSLError(_verify_failure()), requests.exceptions.SSLError
    )
    text = sdk_errors.fatal_text(certificate)
    assert "unable to get local issuer certificate" in text
    assert "REQUESTS_CA_BUNDLE is set to /etc/corp-ca.pem" in text
    text = sdk_errors.fatal_text(requests.exceptions.ProxyError("Cannot connect to proxy."))
    assert "the proxy http://proxy.example:3128 (from HTTPS_PROXY)" in text
    assert "s3cret" not in text and "NO_PROXY" in text


def test_a_tls_handshake_cut_off_is_still_a_connection_error_that_may_pass() -> None:
    cut = _as_requests_raises(
        urllib3.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")),
        requests.exceptions.SSLError,
    )
    assert sdk_errors.classify(cut) == Decision(Action.BACKOFF, "connection error")
