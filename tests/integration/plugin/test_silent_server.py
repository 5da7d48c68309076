"""A server that accepts connections and never answers (issue 11, item 2): the real `dvc push`
says "timed out" and names the host (and DROPBOX_API_HOST) within a minute, not after ten."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.cli import dvc, make_repo

LIFETIME_S = 80.0  # the server closes itself by then, whatever happens to the test


@pytest.fixture
def silent_server() -> Iterator[str]:
    """host:port of a TCP server on 127.0.0.1 that accepts and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        deadline = time.monotonic() + LIFETIME_S
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
        for conn in accepted:
            conn.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)


def test_push_to_a_silent_server_times_out_clearly(
    tmp_path: Path, emulator: EmulatorProcess, silent_server: str
) -> None:
    token = emulator.token()
    env = emulator.isolated_env(tmp_path / "home", token)
    repo = make_repo(tmp_path / "repo", env)
    (repo / "data.bin").write_bytes(os.urandom(100))
    dvc(repo, env, "add", "-q", "data.bin")
    dvc(repo, env, "remote", "add", "-d", "r", "dropbox://silent/p")
    dvc(repo, env, "remote", "modify", "r", "timeout", "3")
    dvc(repo, env, "remote", "modify", "r", "connect_timeout", "2")
    env["DROPBOX_API_HOST"] = silent_server
    env["DROPBOX_API_CONTENT_HOST"] = silent_server

    started = time.monotonic()
    proc = dvc(repo, env, "push", check=False)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert elapsed < 45, (elapsed, output)
    assert "timed out" in output, output
    assert silent_server in output, output
    assert "DROPBOX_API_HOST" in output, output
    assert "connection error" not in output.lower(), output
    assert "unexpected error" not in output and "Traceback" not in output, output
    assert token["refresh_token"] not in output and token["access_token"] not in output


def test_timeouts_are_remote_options(tmp_path: Path, emulator: EmulatorProcess) -> None:
    env = emulator.isolated_env(tmp_path / "home")
    repo = make_repo(tmp_path / "repo", env)
    dvc(repo, env, "remote", "add", "r", "dropbox://x/y")
    dvc(repo, env, "remote", "modify", "r", "connect_timeout", "5")
    bad = dvc(repo, env, "remote", "modify", "r", "connect_timeout", "0", check=False)
    assert bad.returncode != 0
    assert "connect_timeout = 5" in (repo / ".dvc" / "config").read_text()
