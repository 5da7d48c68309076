"""The `dropbox-emulator` command: ready line, env file, clean exit, data dir lifetime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import certifi
import pytest
import requests

from tests.helpers.emulator import HOST_VARS, EmulatorProcess
from tests.helpers.screen import render


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


# -- what a person sees in a terminal ------------------------------------------------------------


def _spawn(*args: str, env: Optional[dict[str, str]] = None) -> Any:
    import pexpect

    return pexpect.spawn(
        sys.executable,
        ["-m", "dropbox_emulator", *args],
        env=env or _clean_env(),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=60,
    )


def _run_in_terminal(*args: str, env: Optional[dict[str, str]] = None) -> tuple[int, list[str]]:
    import pexpect

    child = _spawn(*args, env=env)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, render(child.before)


@pytest.mark.parametrize("package", ["cryptography", "certifi"])
def test_missing_extra_says_what_to_install(tmp_path: Path, package: str) -> None:
    # What `pip install dvc-dropbox` without `[emulator]` looks like to Python: the import fails.
    shim = tmp_path / "shim" / package
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(f'raise ImportError("No module named {package!r}")\n')
    env = {**_clean_env(), "PYTHONPATH": str(tmp_path / "shim")}
    code, lines = _run_in_terminal(env=env)
    assert code == 1
    assert lines == [
        f"dropbox-emulator: the '{package}' package is missing or broken; the emulator needs it",
        "dropbox-emulator: install the emulator extra: pip install 'dvc-dropbox[emulator]'",
    ]


def test_busy_port_names_the_address_and_the_way_out() -> None:
    with EmulatorProcess() as running:
        port = running.url.rsplit(":", 1)[1]
        code, lines = _run_in_terminal("--port", port)
    assert code == 1
    assert lines == [
        f"dropbox-emulator: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another program holds it)",
        "dropbox-emulator: choose another --port, or --port 0 to pick a free one",
    ]


def test_verbose_lines_carry_utc_timestamps_and_no_secrets() -> None:
    import datetime
    import re

    import pexpect

    child = _spawn("--verbose")
    try:
        ready = json.loads(child.readline())
        verify = ready["ca_bundle"]
        token = requests.post(
            f"{ready['control_url']}/tokens", json={}, verify=verify, timeout=30
        ).json()["access_token"]
        requests.post(
            f"{ready['url']}/2/check/user",
            json={"query": "body-secret-7f3a"},
            headers={"Authorization": f"Bearer {token}"},
            verify=verify,
            timeout=30,
        )
        # A token in the URL (Dropbox accepts `authorization` as a parameter) stays out too.
        requests.post(
            f"{ready['url']}/2/check/user",
            params={"authorization": f"Bearer {token}"},
            json={"query": "x"},
            verify=verify,
            timeout=30,
        )
        started = datetime.datetime.now(datetime.timezone.utc)
    finally:
        child.kill(signal.SIGTERM)
        child.expect(pexpect.EOF)
        child.close()
    lines = [line for line in render(child.before) if line.startswith("dropbox-emulator:")]
    shape = re.compile(
        r'dropbox-emulator: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z 127\.0\.0\.1 "(\S+) (\S+) '
        r'HTTP/1\.1" (\d{3}) \d+'
    )
    seen = []
    for line in lines:
        match = shape.fullmatch(line)
        assert match, line
        stamp = datetime.datetime.fromisoformat(match.group(1)).replace(
            tzinfo=datetime.timezone.utc
        )
        assert abs((stamp - started).total_seconds()) < 120  # UTC, not local time
        seen.append((match.group(2), match.group(3), match.group(4)))
    assert seen == [
        ("POST", "/_emulator/tokens", "200"),
        ("POST", "/2/check/user", "200"),
        ("POST", "/2/check/user", "200"),
    ]
    screen = "\n".join(render(child.before))
    assert token not in screen and token[:20] not in screen
    assert "body-secret-7f3a" not in screen and "Bearer" not in screen


def test_env_file_holds_the_control_url(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    proc, ready = _start("--env-file", str(env_file))
    try:
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert env == ready["env"]
        control_url = env["DROPBOX_EMULATOR_CONTROL_URL"]
        assert control_url == ready["control_url"]
        # What a CI script does with the env file alone: reach the control API.
        stats = requests.get(f"{control_url}/stats", verify=env["REQUESTS_CA_BUNDLE"], timeout=30)
        assert stats.json()["requests"] == {}
    finally:
        assert _stop(proc)[0] == 0
