"""The `dvc-dropbox` helper: login (pasted code or loopback redirect), status, export, logout."""

from __future__ import annotations

import os
import platform
import re
import stat
import subprocess
from pathlib import Path

import pexpect
import pytest
import requests

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import run_on_screen
from tests.integration.auth.conftest import (
    APP_KEY,
    DEFAULT_CREDENTIALS,
    DVC_DROPBOX,
    LINK_RE,
    approve,
    assert_no_secrets,
    base_env,
    read_credentials,
    run,
)

TIMEOUT = 120


def _spawn(args: list[str], cwd: Path, env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(
        DVC_DROPBOX, args, cwd=str(cwd), env=env, encoding="utf-8", timeout=TIMEOUT
    )


def _login(emulator: EmulatorProcess, repo: Path, env: dict[str, str]) -> str:
    child = _spawn(["login"], repo, env)
    child.expect(LINK_RE)
    url = child.match.group(1)
    child.expect_exact("Enter verification code: ")
    child.sendline(approve(emulator, url))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def test_login_status_export_logout(emulator: EmulatorProcess, repo: Path, tmp_path: Path) -> None:
    env = base_env(emulator)
    out = _login(emulator, repo, env)
    path = repo / DEFAULT_CREDENTIALS
    assert "Authorized Dropbox account" in out and str(path) in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = read_credentials(path)
    secrets = [saved["access_token"], saved["refresh_token"]]
    assert_no_secrets(out, secrets)

    status = run([DVC_DROPBOX, "status"], repo, env)
    assert status.returncode == 0, status.stderr
    assert "myremote" in status.stdout and "emulator@example.com" in status.stdout
    assert f"the credentials file {path} (git-ignored)" in status.stdout
    assert "Access token: expires" in status.stdout
    assert_no_secrets(status.stdout + status.stderr, secrets)

    exported = run([DVC_DROPBOX, "export-env", "myremote"], repo, env)
    assert exported.returncode == 0
    assert exported.stdout.splitlines() == [
        f"DROPBOX_REFRESH_TOKEN={saved['refresh_token']}",
        f"DROPBOX_APP_KEY={APP_KEY}",
    ]
    assert "WARNING" in exported.stderr and "secret" in exported.stderr

    # The exported pair is all CI needs, anywhere (here: outside any repository).
    ci_env = base_env(emulator, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    for line in exported.stdout.splitlines():
        key, value = line.split("=", 1)
        ci_env[key] = value
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ci = run([DVC_DROPBOX, "status"], elsewhere, ci_env)
    assert ci.returncode == 0, ci.stderr
    assert "environment variable DROPBOX_REFRESH_TOKEN" in ci.stdout

    logout = run([DVC_DROPBOX, "logout"], repo, env)
    assert logout.returncode == 0, logout.stderr
    assert "Revoked" in logout.stdout
    assert not path.exists()
    # Revoked at Dropbox: the exported refresh token no longer works either.
    gone = run([DVC_DROPBOX, "status"], elsewhere, ci_env)
    assert gone.returncode == 1
    assert "rejected the refresh token" in gone.stderr
    assert_no_secrets(gone.stdout + gone.stderr, secrets)

    again = run([DVC_DROPBOX, "status"], repo, env)
    assert again.returncode == 1 and "dvc-dropbox login myremote" in again.stderr


def test_login_wrong_code_then_right_one(emulator: EmulatorProcess, repo: Path) -> None:
    child = _spawn(["login", "myremote"], repo, base_env(emulator))
    child.expect(LINK_RE)
    url = child.match.group(1)
    child.expect_exact("Enter verification code: ")
    child.sendline("not-the-code")
    child.expect("did not accept that code")
    child.expect_exact("Enter verification code: ")
    child.sendline(approve(emulator, url))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (repo / DEFAULT_CREDENTIALS).exists()


def test_login_wrong_codes_are_bounded(emulator: EmulatorProcess, repo: Path) -> None:
    child = _spawn(["login"], repo, base_env(emulator))
    for _ in range(3):
        child.expect_exact("Enter verification code: ")
        child.sendline("nope")
    child.expect("3 times; nothing was saved")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert not (repo / DEFAULT_CREDENTIALS).exists()


@pytest.mark.parametrize("how", ["empty-line", "ctrl-c", "ctrl-d"])
def test_login_can_be_cancelled(emulator: EmulatorProcess, repo: Path, how: str) -> None:
    child = _spawn(["login"], repo, base_env(emulator))
    child.expect_exact("Enter verification code: ")
    if how == "empty-line":
        child.sendline("")
    elif how == "ctrl-c":
        child.sendintr()
    else:
        child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == (130 if how == "ctrl-c" else 1)
    assert "nothing was saved" in str(child.before)
    assert "Traceback" not in str(child.before)
    assert not (repo / DEFAULT_CREDENTIALS).exists()


def test_login_with_loopback_redirect(emulator: EmulatorProcess, repo: Path) -> None:
    proc = subprocess.Popen(
        [DVC_DROPBOX, "login", "--redirect", "--port", "0", "--timeout", "120"],
        cwd=str(repo),
        env=base_env(emulator),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = ""
        for _ in range(50):
            line = proc.stderr.readline()
            match = re.match(r"    (https://\S+)$", line.rstrip("\n"))
            if match:
                url = match.group(1)
                break
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
        requests.get(url, verify=emulator.ca_bundle, timeout=30).raise_for_status()
        answer = requests.post(
            url,
            data={"decision": "allow"},
            verify=emulator.ca_bundle,
            timeout=30,
            allow_redirects=False,
        )
        assert answer.status_code == 302
        landing = requests.get(answer.headers["Location"], timeout=30)  # the "browser" follows
        assert "authorized" in landing.text
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, stderr
    assert "Authorized Dropbox account" in stdout
    assert read_credentials(repo / DEFAULT_CREDENTIALS)["refresh_token"]


def test_login_without_terminal_fails_at_once(emulator: EmulatorProcess, repo: Path) -> None:
    result = run([DVC_DROPBOX, "login"], repo, base_env(emulator), timeout=60)
    assert result.returncode == 1
    assert "stdin is not a terminal" in result.stderr
    assert "dvc-dropbox export-env myremote" in result.stderr


def test_commands_need_an_app_key(emulator: EmulatorProcess, tmp_path: Path) -> None:
    result = run([DVC_DROPBOX, "status"], tmp_path, base_env(emulator))
    assert result.returncode == 1 and "--app-key" in result.stderr
    result = run([DVC_DROPBOX, "login", "--app-key", ""], tmp_path, base_env(emulator))
    assert result.returncode == 1


def test_version(tmp_path: Path) -> None:
    from importlib import metadata

    import dvc_dropbox

    status, lines = run_on_screen(DVC_DROPBOX, ["--version"], tmp_path, {**os.environ})
    assert status == 0
    assert lines == [
        f"dvc-dropbox {dvc_dropbox.__version__} (dvc {metadata.version('dvc')}, dropbox SDK "
        f"{metadata.version('dropbox')}, Python {platform.python_version()})"
    ]
    assert dvc_dropbox.__version__ == metadata.version("dvc-dropbox")


@pytest.mark.parametrize("where", ["before", "after", "none"])
def test_verbose_before_or_after_the_subcommand(
    emulator: EmulatorProcess, repo: Path, where: str
) -> None:
    tok = emulator.token()
    env = base_env(emulator, DROPBOX_REFRESH_TOKEN=tok["refresh_token"])
    args = {"before": ["-v", "status"], "after": ["status", "-v"], "none": ["status"]}[where]
    status, lines = run_on_screen(DVC_DROPBOX, args, repo / "data", env)
    assert status == 0, lines
    debug = "DEBUG: Dropbox credentials from the environment variable DROPBOX_REFRESH_TOKEN"
    assert (debug in lines) == (where != "none"), lines
    assert any(line.startswith("Account:      Emulator User") for line in lines)
    assert_no_secrets("\n".join(lines), [tok["refresh_token"], tok["access_token"]])
