"""The `dropbox-emulator` command: ready line, env file, clean exit, data dir lifetime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import certifi
import pytest
import requests

from tests.helpers.emulator import HOST_VARS, EmulatorProcess


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPBOX_")}
    env.pop("REQUESTS_CA_BUNDLE", None)
    return env


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropbox_emulator", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the emulator prints it within seconds, or exits
    assert line, f"no ready line (exit code {proc.poll()})"
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=20)
        raise
    return proc.returncode, out


def test_ready_line_env_and_sigterm(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    proc, ready = _start("--env-file", str(env_file), "--app-key", "key-one", "--app-key", "two")
    try:
        assert set(ready) == {"url", "control_url", "ca_bundle", "env"}
        netloc = ready["url"].removeprefix("https://")
        host, port = netloc.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert ready["control_url"] == ready["url"] + "/_emulator"
        env = ready["env"]
        assert {env[var] for var in HOST_VARS} == {netloc}
        assert env["REQUESTS_CA_BUNDLE"] == ready["ca_bundle"]
        assert env["DROPBOX_APP_KEY"] == "key-one"
        lines = env_file.read_text().splitlines()
        assert lines == [f"{k}={v}" for k, v in env.items()]

        # The bundle holds our CA and the public ones, so other HTTPS keeps working.
        bundle = Path(ready["ca_bundle"]).read_text()
        assert Path(certifi.where()).read_text().strip() in bundle
        assert bundle.count("BEGIN CERTIFICATE") > 10
        info = requests.get(ready["control_url"], verify=ready["ca_bundle"], timeout=30).json()
        assert info["app_keys"] == ["key-one", "two"]
        # The certificate is valid for localhost too.
        local = ready["url"].replace("127.0.0.1", "localhost") + "/_emulator/stats"
        assert requests.get(local, verify=ready["ca_bundle"], timeout=30).status_code == 200
    finally:
        code, rest = _stop(proc)
    assert code == 0
    assert rest == ""  # exactly one line on stdout
    # Without --data-dir the temporary directory (certificates included) is gone.
    assert not Path(ready["ca_bundle"]).exists()
    assert not Path(ready["ca_bundle"]).parent.parent.exists()


def test_sigint_exits_cleanly() -> None:
    proc, _ = _start()
    code, _ = _stop(proc, signal.SIGINT)
    assert code == 0


def test_data_dir_survives_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.emulator import sdk_client

    data_dir = tmp_path / "state"
    with EmulatorProcess(data_dir=data_dir) as first:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", first.ca_bundle)
        token = first.token()
        dbx = sdk_client(first)
        dbx.files_upload(b"kept", "/persist/a.txt")
    assert data_dir.is_dir()
    with EmulatorProcess(data_dir=data_dir) as second:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", second.ca_bundle)
        dbx = sdk_client(second)
        # The token issued by the first run still works (tokens live in the data dir).
        dbx._oauth2_access_token = token["access_token"]
        assert dbx.check_user("again").result == "again"
        _, resp = dbx.files_download("/persist/a.txt")
        assert resp.content == b"kept"
    assert data_dir.is_dir()


def test_console_script_help() -> None:
    script = Path(sys.executable).with_name("dropbox-emulator")
    assert script.exists()
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for option in ("--data-dir", "--env-file", "--app-key", "--latency-ms", "--commit-ms"):
        assert option in out.stdout
    for option in ("--token-ttl", "--auto-approve", "--quota-bytes", "--rate-limit-per-s"):
        assert option in out.stdout


def test_bad_arguments_fail() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dropbox_emulator", "--latency-ms", "-5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
    )
    assert out.returncode == 2
    assert out.stdout == ""


def test_busy_port_fails_without_ready_line() -> None:
    with EmulatorProcess() as running:
        port = running.url.rsplit(":", 1)[1]
        out = subprocess.run(
            [sys.executable, "-m", "dropbox_emulator", "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
        )
    assert out.returncode == 1
    assert out.stdout == ""
    assert "dropbox-emulator" in out.stderr


def test_shared_ca_dir(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    first, ready_one = _start("--ca-dir", str(ca_dir))
    second, ready_two = _start("--ca-dir", str(ca_dir))
    try:
        # One emulator's bundle trusts the other: they share the CA.
        for ready in (ready_one, ready_two):
            resp = requests.get(
                f"{ready['control_url']}/stats", verify=ready_one["ca_bundle"], timeout=30
            )
            assert resp.status_code == 200
        assert (ca_dir / "root" / "ca.pem").read_bytes() == Path(ready_two["ca_bundle"]).with_name(
            "ca.pem"
        ).read_bytes()
        assert (ca_dir / "root" / "ca-key.pem").stat().st_mode & 0o077 == 0
    finally:
        assert _stop(first)[0] == 0
        assert _stop(second)[0] == 0
    assert (ca_dir / "root" / "ca.pem").exists()  # outlives the runs
