"""Garbage in, no crash out: a few hundred random requests (seeded, bounded), then the emulator
must still answer properly. API paths never answer 404 or HTML, and nothing answers 5xx."""

from __future__ import annotations

import json
import random
import socket
import ssl
from typing import Any

import pytest
import requests

from tests.helpers.emulator import EmulatorProcess, sdk_client

ROUTES = [
    "files/upload",
    "files/download",
    "files/get_metadata",
    "files/list_folder",
    "files/list_folder/continue",
    "files/upload_session/start",
    "files/upload_session/append_v2",
    "files/upload_session/finish",
    "files/upload_session/finish_batch_v2",
    "files/delete_v2",
    "files/copy_v2",
    "check/user",
    "users/get_current_account",
    "auth/token/revoke",
    "files/nope",
    "zzz",
]
PATHS = ["/2/", "/oauth2/authorize", "/oauth2/token", "/", "/_links/abc", "/2/files/..%2f"]
METHODS = ["POST", "POST", "POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS"]
ALLOWED = {200, 206, 302, 400, 401, 403, 404, 405, 409, 410, 416, 422, 429}


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**70, 1.5])
    if kind == 2:
        return rng.choice(["", "/", "/a/b", "id:xyz", "rev:0123456789", "\u00e9\u2713", "a" * 300])
    if kind == 3:
        return {".tag": rng.choice(["add", "overwrite", "other", "file", "x"])}
    if kind == 4:
        return rng.randrange(-5, 10**6)
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["path", "cursor", "entries", "mode", "query", "limit", "from_path", "offset", "x"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_body(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return b""
    if kind == 1:
        return json.dumps(random_json(rng)).encode()
    if kind == 2:
        return rng.randbytes(rng.randrange(1, 5000))
    return b"null"


@pytest.fixture(scope="module")
def fuzz_target() -> Any:
    # Its own emulator: garbage must not disturb the session's state.
    with EmulatorProcess() as emu:
        yield emu


def test_random_requests(fuzz_target: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = fuzz_target
    rng = random.Random(20261127)
    good = emu.token()["access_token"]
    narrow = emu.token(scopes=["files.metadata.read"])["access_token"]
    session = requests.Session()
    session.verify = emu.ca_bundle
    session.trust_env = False
    for i in range(300):
        path = "/2/" + rng.choice(ROUTES) if rng.random() < 0.8 else rng.choice(PATHS)
        headers: dict[str, str] = {}
        auth = rng.randrange(6)
        if auth < 3:
            headers["Authorization"] = "Bearer " + rng.choice([good, good, narrow])
        elif auth == 3:
            headers["Authorization"] = rng.choice(["Bearer", "Basic !!", "Bearer sl.x", "x y z"])
        if rng.random() < 0.5:
            arg = random_json(rng)
            headers["Dropbox-API-Arg"] = (
                json.dumps(arg) if rng.random() < 0.8 else "{" + str(rng.random())
            )
        if rng.random() < 0.7:
            headers["Content-Type"] = rng.choice(
                ["application/json", "application/octet-stream", "text/plain", "x/y"]
            )
        if rng.random() < 0.2:
            headers["Range"] = rng.choice(["bytes=0-0", "bytes=-1", "bytes=9-2", "bytes=x"])
        if rng.random() < 0.1:
            headers["Dropbox-API-Path-Root"] = json.dumps(random_json(rng))
        method = rng.choice(METHODS)
        resp = session.request(
            method, emu.url + path, data=random_body(rng), headers=headers, timeout=60
        )
        context = f"request {i}: {method} {path} {headers} -> {resp.status_code} {resp.text[:300]}"
        assert resp.status_code in ALLOWED, context
        assert "X-Dropbox-Request-Id" in resp.headers, context
        if path.startswith("/2/"):
            assert resp.status_code != 404, context
            assert "html" not in resp.headers.get("Content-Type", ""), context
            if resp.status_code in (401, 409, 422, 429) or (
                resp.status_code == 200 and "Dropbox-API-Result" not in resp.headers
            ):
                assert resp.headers["Content-Type"] == "application/json", context
    session.close()

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
    assert sdk_client(emu).check_user("still alive").result == "still alive"


def _tls(emu: EmulatorProcess) -> tuple[str, int, ssl.SSLContext]:
    host, port = emu.url.removeprefix("https://").rsplit(":", 1)
    return host, int(port), ssl.create_default_context(cafile=emu.ca_bundle)


def test_raw_garbage(fuzz_target: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = fuzz_target
    rng = random.Random(7)
    host, port, context = _tls(emu)
    for i in range(60):
        with socket.create_connection((host, port), timeout=10) as plain:
            if i % 3 == 0:
                # Not even TLS: random bytes at the handshake.
                plain.sendall(rng.randbytes(rng.randrange(1, 2000)))
                plain.settimeout(5)
                try:
                    plain.recv(100)
                except OSError:
                    pass
                continue
            with context.wrap_socket(plain, server_hostname=host) as conn:
                choice = i % 3
                if choice == 1:
                    payload = rng.randbytes(rng.randrange(1, 3000)) + b"\r\n\r\n"
                else:
                    line = rng.choice([b"POST /2/check/user", b"GET /", b"BREW /pot"])
                    payload = (
                        line
                        + rng.choice([b" HTTP/1.1", b" HTTP/9.9", b"", b" HTTP/1.0"])
                        + b"\r\n"
                        + rng.choice(
                            [
                                b"Content-Length: -5\r\n",
                                b"Transfer-Encoding: chunked\r\n",
                                b"Content-Length: 3\r\n",
                                b"X: " + b"y" * 70000 + b"\r\n",
                                b"",
                            ]
                        )
                        + b"\r\n"
                        + rng.choice([b"zz\r\nabc", b"abc", b"", b"5\r\nab"])
                    )
                try:
                    conn.sendall(payload)
                    conn.settimeout(5)
                    reply = conn.recv(200)
                except OSError:
                    continue
                if reply:
                    assert reply.startswith(b"HTTP/1."), reply
                    assert b" 500 " not in reply.split(b"\r\n", 1)[0], reply
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
    assert sdk_client(emu).check_user("alive").result == "alive"
