"""The wire as the SDK sees it: statuses, content types, request ids, arguments, auth, downloads,
the request size cap. Where the SDK cannot send something (bad arguments, no token), plain HTTPS."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any, Optional

import dropbox
import pytest
import requests
from dropbox import common, exceptions, files

from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess
from tests.helpers.sdk_compat import download_with_headers

MiB = 1024 * 1024


def post(
    emu: EmulatorProcess,
    route: str,
    *,
    token: Optional[str] = None,
    body: Any = None,
    arg: Optional[str] = None,
    content_type: Optional[str] = "application/json",
    headers: Optional[dict[str, str]] = None,
    method: str = "POST",
) -> requests.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if arg is not None:
        sent["Dropbox-API-Arg"] = arg
    if content_type is not None:
        sent["Content-Type"] = content_type
    return requests.request(
        method,
        f"{emu.url}/{route.lstrip('/')}",
        data=body,
        headers=sent,
        verify=emu.ca_bundle,
        timeout=60,
    )


@pytest.fixture
def token(emulator: EmulatorProcess) -> str:
    return emulator.token()["access_token"]


def assert_text_400(resp: requests.Response, route: str, message: str) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.headers["X-Dropbox-Request-Id"]
    assert resp.text.startswith(f'Error in call to API function "{route}": '), resp.text
    assert message in resp.text


# -- success responses ---------------------------------------------------------------------------


def test_rpc_success_shape(emulator: EmulatorProcess, token: str) -> None:
    resp = post(emulator, "2/check/user", token=token, body='{"query": "ping"}')
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"  # exactly, the SDK compares it
    assert len(resp.headers["X-Dropbox-Request-Id"]) >= 16
    assert resp.json() == {"result": "ping"}
    assert resp.raw.version == 11  # HTTP/1.1, keep-alive
    assert "close" not in resp.headers.get("Connection", "")


@pytest.mark.parametrize("body", ["null", "", " null "])
def test_void_argument_accepts_null_and_empty(
    emulator: EmulatorProcess, token: str, body: str
) -> None:
    resp = post(emulator, "2/users/get_space_usage", token=token, body=body)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "application/json"


def test_sdk_round_trip_and_request_ids(sdk_client: Any) -> None:
    assert sdk_client.check_user("hello").result == "hello"
    account = sdk_client.users_get_current_account()
    assert len(account.account_id) == 40 and account.account_id.startswith("dbid:")
    with pytest.raises(exceptions.ApiError) as err:
        sdk_client.files_get_metadata("/transport/missing")
    assert err.value.request_id
    assert err.value.error.is_path() and err.value.error.get_path().is_not_found()


def test_keep_alive_reuses_connection(emulator: EmulatorProcess, token: str) -> None:
    with requests.Session() as session:
        session.verify = emulator.ca_bundle
        session.trust_env = False
        ports = set()
        for i in range(5):
            resp = session.post(
                f"{emulator.url}/2/check/user",
                data=json.dumps({"query": str(i)}),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=60,
                stream=True,
            )
            ports.add(resp.raw.connection.sock.getsockname()[1])
            assert resp.json() == {"result": str(i)}
    assert len(ports) == 1


# -- 400: routes and arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["2/files/no_such_route", "2/nonsense", "2/", "favicon.ico", "2/files/upload_v9"]
)
def test_unknown_route_is_400_text(emulator: EmulatorProcess, token: str, path: str) -> None:
    resp = post(emulator, path, token=token, body="{}")
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Unknown API function" in resp.text
    assert "<html" not in resp.text.lower()
    assert resp.headers["X-Dropbox-Request-Id"]


def test_get_on_rpc_route_is_400(emulator: EmulatorProcess, token: str) -> None:
    resp = post(emulator, "2/check/user", token=token, method="GET", content_type=None)
    assert_text_400(resp, "check/user", "POST")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "request body: could not decode input as JSON"),
        ('{"path": "/a", "bogus": 1}', "request body: unknown field 'bogus'"),
        ('{"path": "no-slash"}', "request body: path: 'no-slash' did not match pattern"),
        ("[1, 2]", "request body:"),
        ("null", "request body:"),
        ("", "request body: could not decode input as JSON"),
        (b"\xff\xfe", "request body: could not decode input as JSON"),
    ],
)
def test_bad_rpc_arguments(emulator: EmulatorProcess, token: str, body: Any, message: str) -> None:
    resp = post(emulator, "2/files/get_metadata", token=token, body=body)
    assert_text_400(resp, "files/get_metadata", message)


def test_void_route_refuses_a_value(emulator: EmulatorProcess, token: str) -> None:
    resp = post(emulator, "2/users/get_current_account", token=token, body='{"a": 1}')
    assert_text_400(resp, "users/get_current_account", "request body")


def test_rpc_content_type_checked(emulator: EmulatorProcess, token: str) -> None:
    resp = post(
        emulator, "2/check/user", token=token, body='{"query": ""}', content_type="text/xml"
    )
    assert_text_400(resp, "check/user", 'Bad HTTP "Content-Type" header: "text/xml"')


def test_versioned_url_maps_to_route(emulator: EmulatorProcess, token: str) -> None:
    resp = post(emulator, "2/files/delete_v2", token=token, body='{"path": 7}')
    assert_text_400(resp, "files/delete_v2", "request body: path")


def test_content_route_argument_errors(emulator: EmulatorProcess, token: str) -> None:
    octet = "application/octet-stream"
    resp = post(emulator, "2/files/upload", token=token, body=b"x", content_type=octet)
    assert_text_400(resp, "files/upload", 'Must provide HTTP header "Dropbox-API-Arg"')
    resp = post(emulator, "2/files/upload", token=token, body=b"x", content_type=octet, arg="{bad")
    assert_text_400(resp, "files/upload", 'HTTP header "Dropbox-API-Arg": could not decode')
    resp = post(
        emulator,
        "2/files/upload",
        token=token,
        body=b"x",
        content_type="application/json",
        arg=json.dumps({"path": "/t/x"}),
    )
    assert_text_400(resp, "files/upload", 'Bad HTTP "Content-Type" header')
    resp = post(emulator, "2/files/download", token=token, arg='{"path": 3}', content_type=None)
    assert_text_400(resp, "files/download", 'HTTP header "Dropbox-API-Arg": path')


def test_arg_url_parameter(emulator: EmulatorProcess, sdk_client: Any, token: str) -> None:
    sdk_client.files_upload(b"via url", "/transport/url-arg.txt", mode=files.WriteMode.overwrite)
    arg = json.dumps({"path": "/transport/url-arg.txt"})
    resp = requests.post(
        f"{emulator.url}/2/files/download",
        params={"arg": arg},
        headers={"Authorization": f"Bearer {token}"},
        verify=emulator.ca_bundle,
        timeout=60,
    )
    assert resp.status_code == 200
    assert resp.content == b"via url"


def test_bad_path_root_header(emulator: EmulatorProcess, token: str) -> None:
    resp = post(
        emulator,
        "2/check/user",
        token=token,
        body='{"query": ""}',
        headers={"Dropbox-API-Path-Root": '{".tag": "nowhere"}'},
    )
    assert_text_400(resp, "check/user", 'HTTP header "Dropbox-API-Path-Root"')


def test_unknown_namespace_is_422(sdk_client: Any) -> None:
    rooted = sdk_client.with_path_root(common.PathRoot.namespace_id("987654321"))
    with pytest.raises(exceptions.PathRootError) as err:
        rooted.files_list_folder("")
    assert err.value.error.is_invalid_root() or err.value.error.is_no_permission()


# -- auth ----------------------------------------------------------------------------------------


def test_missing_authorization_is_400(emulator: EmulatorProcess) -> None:
    resp = post(emulator, "2/check/user", body='{"query": ""}')
    assert_text_400(resp, "check/user", 'Must provide HTTP header "Authorization" or URL parameter')


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Basic dXNlcjpwdw==", 'Expecting "Bearer <oauth2-access-token>"'),
        ("Bearer", 'Expecting "Bearer <oauth2-access-token>"'),
        ("Bearer bad token with spaces", "The given OAuth 2 access token is malformed."),
        ("Bearer sl.\u00e9", "The given OAuth 2 access token is malformed."),
    ],
)
def test_malformed_authorization_is_400(
    emulator: EmulatorProcess, value: str, message: str
) -> None:
    resp = requests.post(
        f"{emulator.url}/2/check/user",
        data=b'{"query": ""}',
        headers={"Authorization": value.encode("utf-8"), "Content-Type": "application/json"},
        verify=emulator.ca_bundle,
        timeout=60,
    )
    assert_text_400(resp, "check/user", message)
    assert "dXNlcjpwdw" not in resp.text  # credentials are never echoed


def test_unknown_token_is_401(emulator: EmulatorProcess) -> None:
    resp = post(emulator, "2/check/user", token="sl.not-a-real-token", body='{"query": ""}')
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="Dropbox-API"'
    body = resp.json()
    assert body["error"] == {".tag": "invalid_access_token"}
    assert body["error_summary"].startswith("invalid_access_token/")

    dbx = dropbox.Dropbox(oauth2_access_token="sl.not-a-real-token", max_retries_on_error=0)
    with pytest.raises(exceptions.AuthError) as err:
        dbx.check_user()
    assert err.value.error.is_invalid_access_token()


def test_missing_scope_is_401(emulator: EmulatorProcess) -> None:
    token = emulator.token(scopes=["files.metadata.read"])["access_token"]
    dbx = dropbox.Dropbox(oauth2_access_token=token, max_retries_on_error=0)
    dbx.files_list_folder("")  # allowed
    with pytest.raises(exceptions.AuthError) as err:
        dbx.files_upload(b"x", "/transport/denied.txt")
    assert err.value.error.is_missing_scope()
    assert err.value.error.get_missing_scope().required_scope == "files.content.write"
    with pytest.raises(exceptions.AuthError) as err:
        dbx.check_user()
    assert err.value.error.get_missing_scope().required_scope == "account_info.read"
    resp = post(emulator, "2/files/download", token=token, arg='{"path": "/x"}', content_type=None)
    assert resp.status_code == 401
    assert resp.json()["error"] == {".tag": "missing_scope", "required_scope": "files.content.read"}
    assert resp.json()["error_summary"].startswith("missing_scope/")


def test_revoke_route(emulator: EmulatorProcess) -> None:
    issued = emulator.token()
    dbx = dropbox.Dropbox(oauth2_access_token=issued["access_token"], max_retries_on_error=0)
    dbx.auth_token_revoke()
    with pytest.raises(exceptions.AuthError) as err:
        dbx.check_user()
    assert err.value.error.is_invalid_access_token()
    # It came from a refresh token: that one is revoked too.
    refreshing = dropbox.Dropbox(
        oauth2_refresh_token=issued["refresh_token"],
        app_key=emulator.env["DROPBOX_APP_KEY"],
        max_retries_on_error=0,
    )
    with pytest.raises(exceptions.AuthError):
        refreshing.check_user()


# -- 409 -----------------------------------------------------------------------------------------


def test_route_error_body(emulator: EmulatorProcess, token: str) -> None:
    resp = post(emulator, "2/files/get_metadata", token=token, body='{"path": "/no/such/file"}')
    assert resp.status_code == 409
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["error"] == {".tag": "path", "path": {".tag": "not_found"}}
    summary = body["error_summary"]
    assert summary.startswith("path/not_found/") and set(summary[len("path/not_found/") :]) <= {"."}


def test_error_summary_follows_struct_members(sdk_client: Any, emulator: EmulatorProcess) -> None:
    sdk_client.files_create_folder_v2("/transport/folder-here")
    token = emulator.token()["access_token"]
    resp = post(
        emulator,
        "2/files/upload",
        token=token,
        body=b"x",
        content_type="application/octet-stream",
        arg=json.dumps({"path": "/transport/folder-here", "mode": "add"}),
    )
    assert resp.status_code == 409
    assert resp.json()["error_summary"].startswith("path/conflict/folder/")


# -- downloads -----------------------------------------------------------------------------------


@pytest.fixture
def stored(sdk_client: Any) -> Iterator[tuple[str, bytes]]:
    data = bytes(range(256)) * 40  # 10240 bytes
    path = "/transport/Résumé ✓.bin"
    sdk_client.files_upload(data, path, mode=files.WriteMode.overwrite)
    yield path, data


def download(emu: EmulatorProcess, token: str, path: str, **headers: str) -> requests.Response:
    return post(
        emu,
        "2/files/download",
        token=token,
        arg=json.dumps({"path": path}),
        content_type=None,
        headers=headers,
    )


def test_download_headers(emulator: EmulatorProcess, token: str, stored: tuple[str, bytes]) -> None:
    path, data = stored
    resp = download(emulator, token, path)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    raw = resp.headers["Dropbox-API-Result"]
    assert raw.isascii() and "\\u00e9" in raw  # header JSON escapes non-ASCII
    meta = json.loads(raw)
    assert meta["path_display"] == path and meta["size"] == len(data)
    assert meta["content_hash"] == content_hash(data)
    assert resp.content == data
    assert int(resp.headers["Content-Length"]) == len(data)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=10000-", 10000, 10240),
        ("bytes=-40", 10200, 10240),
        ("bytes=10000-99999", 10000, 10240),
        ("bytes=5-5", 5, 6),
    ],
)
def test_download_ranges(
    emulator: EmulatorProcess,
    token: str,
    stored: tuple[str, bytes],
    header: str,
    start: int,
    end: int,
) -> None:
    path, data = stored
    resp = download(emulator, token, path, Range=header)
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}"
    assert resp.content == data[start:end]
    assert json.loads(resp.headers["Dropbox-API-Result"])["size"] == len(data)


def test_download_unsatisfiable_range(
    emulator: EmulatorProcess, token: str, stored: tuple[str, bytes]
) -> None:
    path, data = stored
    resp = download(emulator, token, path, Range="bytes=20000-")
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
    # Malformed or multiple ranges are ignored: the whole file.
    for header in ("bytes=abc", "bytes=0-1,5-6", "items=0-1"):
        resp = download(emulator, token, path, Range=header)
        assert resp.status_code == 200 and resp.content == data


def test_sdk_range_download(sdk_client: Any, stored: tuple[str, bytes]) -> None:
    path, data = stored
    meta, resp = download_with_headers(sdk_client, path, {"Range": "bytes=100-199"})
    with resp:
        assert resp.status_code == 206
        assert resp.content == data[100:200]
    assert meta.size == len(data)


def test_temporary_link_serves_content(sdk_client: Any, stored: tuple[str, bytes]) -> None:
    path, data = stored
    link = sdk_client.files_get_temporary_link(path)
    resp = requests.get(link.link, timeout=60)  # REQUESTS_CA_BUNDLE trusts the emulator
    assert resp.status_code == 200 and resp.content == data
    resp = requests.get(link.link, headers={"Range": "bytes=0-9"}, timeout=60)
    assert resp.status_code == 206 and resp.content == data[:10]
    bogus = link.link.rsplit("/", 2)[0] + "/nope/x"
    assert requests.get(bogus, timeout=60).status_code in (404, 410)


# -- bodies --------------------------------------------------------------------------------------


def test_chunked_upload_body(emulator: EmulatorProcess, token: str) -> None:
    data = b"chunk-" * 100_000

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    resp = post(
        emulator,
        "2/files/upload",
        token=token,
        body=pieces(),
        content_type="application/octet-stream",
        arg=json.dumps({"path": "/transport/chunked.bin", "mode": "overwrite"}),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["content_hash"] == content_hash(data)
    assert download(emulator, token, "/transport/chunked.bin").content == data


def _raw_request(emu: EmulatorProcess, head: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """Send raw bytes over TLS; return (status line + headers, whatever body arrives)."""
    host, port = emu.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=emu.ca_bundle)
    with (
        socket.create_connection((host, int(port)), timeout=30) as plain,
        context.wrap_socket(plain, server_hostname=host) as conn,
    ):
        conn.sendall(head + body)
        received = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                part = conn.recv(65536)
            except (ConnectionError, ssl.SSLError, OSError):
                break
            if not part:
                break
            received += part
            if b"\r\n\r\n" in received:
                headers, _, rest = received.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":", 1)[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
    headers, _, rest = received.partition(b"\r\n\r\n")
    return headers, rest


def test_oversized_body_refused_unread(emulator: EmulatorProcess, token: str) -> None:
    before = emulator.stats()["bytes_in"]
    arg = json.dumps({"path": "/transport/huge.bin"})
    head = (
        f"POST /2/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\nDropbox-API-Arg: {arg}\r\n"
        f"Content-Length: {200 * MiB}\r\n\r\n"
    ).encode()
    headers, body = _raw_request(emulator, head, b"x" * 4096)
    assert headers.startswith(b"HTTP/1.1 409 "), headers
    assert b"Connection: close" in headers
    payload = json.loads(body)
    assert payload["error"] == {".tag": "payload_too_large"}
    assert payload["error_summary"].startswith("payload_too_large/")
    assert emulator.stats()["bytes_in"] - before < MiB  # nothing of it was taken in


def test_oversized_body_with_expect_continue(emulator: EmulatorProcess, token: str) -> None:
    arg = json.dumps({"cursor": {"session_id": "x", "offset": 0}})
    head = (
        f"POST /2/files/upload_session/append_v2 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Dropbox-API-Arg: {arg}\r\nExpect: 100-continue\r\n"
        f"Content-Length: {150 * MiB + 1}\r\n\r\n"
    ).encode()
    headers, body = _raw_request(emulator, head)
    assert headers.startswith(b"HTTP/1.1 409 "), headers  # no "100 Continue" first
    assert json.loads(body)["error"] == {".tag": "payload_too_large"}


def test_oversized_rpc_body_is_400(emulator: EmulatorProcess, token: str) -> None:
    head = (
        f"POST /2/check/user HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {200 * MiB}\r\n\r\n"
    ).encode()
    headers, body = _raw_request(emulator, head, b"{")
    assert headers.startswith(b"HTTP/1.1 400 "), headers
    assert body.startswith(b'Error in call to API function "check/user"')


def test_bad_content_length(emulator: EmulatorProcess) -> None:
    head = b"POST /2/check/user HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"
    headers, _ = _raw_request(emulator, head)
    assert headers.startswith(b"HTTP/1.1 400 ")


@pytest.mark.slow
def test_sdk_upload_over_150_mib_is_payload_too_large(sdk_client: Any) -> None:
    with pytest.raises(exceptions.ApiError) as err:
        sdk_client.files_upload(b"\0" * (150 * MiB + 1), "/transport/too-big.bin")
    assert err.value.error.is_payload_too_large()


# -- latency -------------------------------------------------------------------------------------


def test_latency_knob(emulator: EmulatorProcess, token: str) -> None:
    emulator.control("POST", "config", {"latency_ms": 300})
    try:
        started = time.monotonic()
        resp = post(emulator, "2/check/user", token=token, body='{"query": ""}')
        elapsed = time.monotonic() - started
    finally:
        emulator.control("POST", "config", {"latency_ms": 0})
    assert resp.status_code == 200
    assert elapsed >= 0.3  # a lower bound only: the knob added at least that much


def test_sdk_transfer_helpers_parallel(sdk_client: Any) -> None:
    # The SDK's own transfer helpers: a concurrent upload session with parallel appends, and a
    # parallel download made of Range requests (after a bytes=0-0 probe). The plugin does not use
    # them; they only exist in SDK 12.2+ (Python 3.11+).
    file_transfer = pytest.importorskip(
        "dropbox.file_transfer", reason="dropbox.file_transfer is new in SDK 12.2"
    )

    data = bytes(range(251)) * (81 * 1024)  # ~19.9 MiB, not a multiple of 4 MiB
    uploaded = file_transfer.Uploader(sdk_client).upload(
        file_transfer.BytesSource(data),
        files.CommitInfo("/transport/parallel.bin", mode=files.WriteMode.overwrite),
        file_transfer.UploadOptions(parallel_uploads=4),
    )
    assert uploaded.metadata.content_hash == content_hash(data)
    target = file_transfer.Bytes()
    file_transfer.Downloader(sdk_client).download(
        "/transport/parallel.bin", target, file_transfer.DownloadOptions(parallel_downloads=4)
    )
    assert target.bytes() == data


# -- pure logic: bodies and ranges ---------------------------------------------------------------


def _reader(raw: bytes, length: Optional[int], chunked: bool = False) -> Any:
    import io

    from dropbox_emulator.http.bodies import BodyReader

    return BodyReader(io.BufferedReader(io.BytesIO(raw)), length, chunked)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 7])
def test_spool_inline_and_pipelined_agree(size: int) -> None:
    import io

    from dropbox_emulator.http.bodies import spool_inline, spool_pipelined

    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    for spool in (spool_inline, spool_pipelined):
        out = io.BytesIO()
        digest = spool(_reader(data, len(data)), out)
        assert digest == content_hash(data)
        assert out.getvalue() == data


def test_chunked_body_reader() -> None:
    raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    reader = _reader(raw, None, chunked=True)
    got = b""
    for _ in range(10):
        part = reader.read(3)
        if not part:
            break
        got += part
    assert got == b"hello, world" and reader.done
    from dropbox_emulator.http.bodies import ClientGone

    with pytest.raises(ClientGone):
        _reader(b"zz\r\nabc", None, chunked=True).read(10)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=2-", 10, (2, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=5-100", 10, (5, 10)),
        ("bytes=10-", 10, "unsatisfiable"),
        ("bytes=0-0", 0, "unsatisfiable"),
        ("bytes=-0", 10, "unsatisfiable"),
        ("bytes=4-2", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("lines=1-2", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_parse_range(header: str, size: int, expected: Any) -> None:
    from dropbox_emulator.http.bodies import parse_range

    assert parse_range(header, size) == expected


def test_content_hasher_matches_sdk_vectors() -> None:
    from dropbox_emulator.state.blobs import content_hash as ours

    assert ours(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert ours(b"abc") == "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"
    zeros = b"\0" * (4 * MiB + 1)
    assert ours(zeros) == "14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6"
    assert ours(b"a" * 10 * MiB) == content_hash(b"a" * 10 * MiB)


def test_error_summaries() -> None:
    from dropbox_emulator.http import wire

    cases = [
        (files.GetMetadataError.path(files.LookupError.not_found), "path/not_found/"),
        (
            files.UploadError.path(
                files.UploadWriteFailed(
                    files.WriteError.conflict(files.WriteConflictError.file), "sid"
                )
            ),
            "path/conflict/file/",
        ),
        (
            files.UploadSessionFinishError.lookup_failed(
                files.UploadSessionLookupError.incorrect_offset(files.UploadSessionOffsetError(8))
            ),
            "lookup_failed/incorrect_offset/",
        ),
        (
            files.DeleteError.path_lookup(files.LookupError.malformed_path("x")),
            "path_lookup/malformed_path/",
        ),
    ]
    for error, prefix in cases:
        summary = wire.error_summary(error)
        assert summary.startswith(prefix) and set(summary[len(prefix) :]) <= {"."}, summary
