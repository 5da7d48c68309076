"""Authorization inside the real `dvc` CLI (subprocesses; a pseudo-terminal where a user types).

These are the issue's acceptance tests: the first `dvc push` asks exactly as the user guide shows,
later commands do not; env variables, expiry mid-push, revocation, no terminal, two processes
renewing one file, and no token in any output (including `-v`).
"""

from __future__ import annotations

import datetime
import json
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.integration.auth.conftest import (
    APP_KEY,
    DEFAULT_CREDENTIALS,
    DVC,
    LINK_RE,
    RepoFactory,
    approve,
    assert_no_secrets,
    base_env,
    read_credentials,
    remote_url,
    run,
)

TIMEOUT = 180


def _interactive_push(
    emulator: EmulatorProcess, repo: Path, env: dict[str, str], args: tuple[str, ...] = ("push",)
) -> str:
    child = pexpect.spawn(
        DVC, list(args), cwd=str(repo), env=env, encoding="utf-8", timeout=TIMEOUT
    )
    child.expect(LINK_RE)
    url = child.match.group(1)
    assert "response_type=code" in url and f"client_id={APP_KEY}" in url
    assert "token_access_type=offline" in url and "code_challenge_method=S256" in url
    assert "scope=account_info.read+files.metadata.read+files.metadata.write" in url
    child.expect_exact("Enter verification code: ")
    child.sendline(approve(emulator, url))
    child.expect(pexpect.EOF)
    child.close()
    output = str(child.before)
    assert child.exitstatus == 0, output
    return output


def _stored_tokens(path: Path) -> list[str]:
    saved = read_credentials(path)
    return [saved["access_token"], saved["refresh_token"]]


def _git_check_ignore(repo: Path, path: Path) -> int:
    return subprocess.run(
        ["git", "check-ignore", "-q", str(path)], cwd=str(repo), check=False, timeout=60
    ).returncode


def _works(emulator: EmulatorProcess, access_token: str) -> bool:
    import dropbox

    client = dropbox.Dropbox(oauth2_access_token=access_token, max_retries_on_error=0)
    client.users_get_current_account()
    return True


def test_first_push_prompts_then_pull_does_not(
    emulator: EmulatorProcess, repo: Path, tmp_path: Path
) -> None:
    env = base_env(emulator)
    output = _interactive_push(emulator, repo, env, ("push", "-v"))
    assert "2 files pushed" in output  # the file and its directory object
    path = repo / DEFAULT_CREDENTIALS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _git_check_ignore(repo, path) == 0  # DVC's .dvc/.gitignore ignores /tmp
    assert "NOT ignored" not in output
    secrets = _stored_tokens(path)
    assert_no_secrets(output, secrets)

    # A second command in the same repo needs no prompt (and no terminal).
    run([DVC, "cache", "dir", str(tmp_path / "other-cache")], repo, env)
    (repo / "data" / "f000.txt").unlink()
    pulled = run([DVC, "pull", "-v"], repo, env)
    assert pulled.returncode == 0, pulled.stderr
    assert (repo / "data" / "f000.txt").exists()
    assert "Go to the following link" not in pulled.stdout + pulled.stderr
    assert_no_secrets(pulled.stdout + pulled.stderr, secrets)


def test_custom_credentials_file_not_ignored_is_warned_about(
    emulator: EmulatorProcess, repo: Path
) -> None:
    custom = repo / "secrets" / "myremote-credentials.json"
    env = base_env(emulator, DROPBOX_CREDENTIALS_FILE="secrets/myremote-credentials.json")
    output = _interactive_push(emulator, repo, env)
    assert custom.exists() and not (repo / DEFAULT_CREDENTIALS).exists()
    assert stat.S_IMODE(custom.stat().st_mode) == 0o600
    assert "NOT ignored" in output
    assert _git_check_ignore(repo, custom) == 1
    # Once ignored, no warning; the custom file is used without prompting.
    (repo / ".gitignore").write_text("/secrets/\n")
    again = run([DVC, "push", "-v"], repo, env)
    assert again.returncode == 0, again.stderr
    assert "NOT ignored" not in again.stderr
    assert_no_secrets(again.stdout + again.stderr, _stored_tokens(custom))


def test_no_terminal_fails_at_once_with_three_ways(emulator: EmulatorProcess, repo: Path) -> None:
    result = run([DVC, "push"], repo, base_env(emulator), timeout=120)
    assert result.returncode != 0
    assert "stdin is not a terminal" in result.stderr
    assert "interactive terminal" in result.stderr
    assert "DROPBOX_REFRESH_TOKEN" in result.stderr
    assert "dvc-dropbox export-env myremote" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (repo / DEFAULT_CREDENTIALS).exists()


@pytest.mark.parametrize("combo", ["refresh", "access", "access+expires", "all_three"])
def test_env_credentials_push(emulator: EmulatorProcess, repo: Path, combo: str) -> None:
    tok = emulator.token()
    extra: dict[str, str] = {}
    if combo in ("refresh", "all_three"):
        extra["DROPBOX_REFRESH_TOKEN"] = tok["refresh_token"]
    if combo != "refresh":
        extra["DROPBOX_ACCESS_TOKEN"] = tok["access_token"]
    if combo in ("access+expires", "all_three"):
        extra["DROPBOX_EXPIRES_AT"] = tok["expires_at"].replace("Z", "")  # naive = UTC
    result = run([DVC, "push", "-v"], repo, base_env(emulator, **extra))
    assert result.returncode == 0, result.stderr
    assert not (repo / DEFAULT_CREDENTIALS).exists(), "env credentials must not be saved"
    assert_no_secrets(result.stdout + result.stderr, [tok["access_token"], tok["refresh_token"]])


def test_env_errors_are_clear(emulator: EmulatorProcess, repo: Path) -> None:
    tok = emulator.token()
    bad_expiry = run(
        [DVC, "push"],
        repo,
        base_env(emulator, DROPBOX_ACCESS_TOKEN=tok["access_token"], DROPBOX_EXPIRES_AT="soon"),
    )
    assert bad_expiry.returncode != 0 and "DROPBOX_EXPIRES_AT" in bad_expiry.stderr
    expired = run(
        [DVC, "push"],
        repo,
        base_env(
            emulator,
            DROPBOX_ACCESS_TOKEN=tok["access_token"],
            DROPBOX_EXPIRES_AT="2001-01-01T00:00:00",
        ),
    )
    assert expired.returncode != 0
    assert "expired" in expired.stderr and "DROPBOX_REFRESH_TOKEN" in expired.stderr
    for result in (bad_expiry, expired):
        assert "Traceback" not in result.stderr
        assert_no_secrets(result.stdout + result.stderr, [tok["access_token"]])


def _seed_file(path: Path, tok: dict[str, Any], expires_at: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "app_key": APP_KEY,
        "account_id": tok["account_id"],
        "refresh_token": tok["refresh_token"],
        "access_token": tok["access_token"],
        "expires_at": expires_at or tok["expires_at"],
    }
    path.write_text(
        json.dumps(
            {"format": "dvc-dropbox-credentials", "version": 1, "credentials": {APP_KEY: entry}}
        )
    )
    path.chmod(0o600)


def test_token_expiring_mid_push_is_renewed_and_saved(
    emulator: EmulatorProcess,
    tmp_path: Path,
    repo_factory: RepoFactory,
    request: pytest.FixtureRequest,
) -> None:
    repo = repo_factory(tmp_path / "repo", remote_url(request), files=40)
    tok = emulator.token()
    path = repo / DEFAULT_CREDENTIALS
    _seed_file(path, tok)
    emulator.control("POST", "config", {"latency_ms": 100})
    try:
        before = emulator.stats()["requests"].get("oauth2/token", 0)
        proc = subprocess.Popen(
            [DVC, "push", "-j", "2", "-v"],
            cwd=str(repo),
            env=base_env(emulator),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.append(proc.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        # Expire the token once the push is under way (its first upload reached the emulator).
        for _ in range(600):
            requests = emulator.stats()["requests"]
            if requests.get("files/upload_session/start", 0) + requests.get("files/upload", 0):
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        still_pushing = proc.poll() is None
        emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
        proc.wait(TIMEOUT)
        reader.join(30)
    finally:
        emulator.control("POST", "config", {"latency_ms": 0})
    text = "".join(output)
    assert proc.returncode == 0, text
    assert "41 files pushed" in text
    assert still_pushing, "the push ended before the token could be expired"
    assert "renewing the Dropbox access token" in text
    saved = read_credentials(path)
    assert saved["access_token"] != tok["access_token"]
    assert saved["refresh_token"] == tok["refresh_token"]
    assert emulator.stats()["requests"].get("oauth2/token", 0) > before
    assert _works(emulator, saved["access_token"])
    assert_no_secrets(text, [tok["access_token"], tok["refresh_token"], saved["access_token"]])


def test_revoked_refresh_token_is_a_clear_error(emulator: EmulatorProcess, repo: Path) -> None:
    tok = emulator.token()
    path = repo / DEFAULT_CREDENTIALS
    _seed_file(path, tok)
    emulator.control("POST", "tokens/revoke", {"refresh_token": tok["refresh_token"]})
    for args in (["push"], ["push", "-v"]):
        result = run([DVC, *args], repo, base_env(emulator), timeout=120)
        assert result.returncode != 0
        assert "rejected" in result.stderr
        assert f"remove {path} and run the command again to re-authorize" in result.stderr
        assert_no_secrets(
            result.stdout + result.stderr, [tok["access_token"], tok["refresh_token"]]
        )
    assert "Traceback" not in run([DVC, "push"], repo, base_env(emulator)).stderr


def test_two_processes_renewing_one_file(
    emulator: EmulatorProcess,
    tmp_path: Path,
    repo_factory: RepoFactory,
    request: pytest.FixtureRequest,
) -> None:
    shared = tmp_path / "shared-credentials.json"
    tok = emulator.token()
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    _seed_file(shared, tok, expires_at=past.replace(microsecond=0).isoformat())
    emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
    repos = [
        repo_factory(tmp_path / f"repo{i}", remote_url(request, f"-{i}"), files=5) for i in range(2)
    ]
    env = base_env(emulator, DROPBOX_CREDENTIALS_FILE=str(shared))
    procs = [
        subprocess.Popen(
            [DVC, "push"],
            cwd=str(r),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in repos
    ]
    outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "6 files pushed" in out + err
    saved = json.loads(shared.read_text())["credentials"][APP_KEY]  # still valid JSON
    assert saved["access_token"] != tok["access_token"]
    assert _works(emulator, saved["access_token"])
    assert stat.S_IMODE(shared.stat().st_mode) == 0o600


def test_outside_a_repository_the_per_user_file_is_used(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    env = base_env(emulator, XDG_CONFIG_HOME=str(xdg), DROPBOX_APP_KEY=APP_KEY)
    output = _interactive_push(emulator, tmp_path, env, ("ls-url", "dropbox://auth-tests"))
    path = xdg / "dvc-dropbox" / "dropbox-user-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert_no_secrets(output, _stored_tokens(path))
    again = run([DVC, "ls-url", "dropbox://auth-tests"], tmp_path, env)
    assert again.returncode == 0, again.stderr
