"""`dropbox_emulator.testing`, the launcher users' CI gets: life cycle, start errors, control API
round trips, the isolated `dvc` environment, and the README's example run verbatim."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dropbox_emulator.testing import (
    SDK_HOST_VARS,
    ControlError,
    EmulatorError,
    EmulatorServer,
    EmulatorStartError,
    isolated_env,
)

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
posix_only = pytest.mark.skipif(os.name == "nt", reason="fake interpreters are shell scripts")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One private emulator for the round trips (the session one is shared with other tests)."""
    with EmulatorServer() as emu:
        yield emu


@pytest.fixture
def pristine(server: EmulatorServer) -> Iterator[EmulatorServer]:
    server.reset()
    yield server
    server.clear_faults()
    server.config(latency_ms=0)


def check_user(emu: EmulatorServer, access_token: str) -> requests.Response:
    """What the SDK sends for `check_user`, with this emulator's CA."""
    return requests.post(
        f"{emu.url}/2/check/user",
        json={"query": "ping"},
        headers={"Authorization": f"Bearer {access_token}"},
        verify=emu.ca_bundle,
        timeout=30,
    )


def test_the_launcher_imports_neither_pytest_nor_emulator_internals() -> None:
    """Users' CI has only `dvc-dropbox[emulator]`; the emulator's insides may move freely."""
    code = (  # (the start-up hook imports a bit of dvc_dropbox before: not ours to count)
        "import sys; before = set(sys.modules); import dropbox_emulator.testing\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "{'dropbox_emulator', 'pytest', '_pytest', 'dvc', 'dvc_dropbox', 'dropbox'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "['dropbox_emulator', 'dropbox_emulator.testing']"


# -- life cycle ----------------------------------------------------------------------------------


def test_start_stop_and_the_process_is_gone(tmp_path: Path) -> None:
    with EmulatorServer("--latency-ms", "1", data_dir=tmp_path / "state") as emu:
        pid = emu.pid
        assert emu.running
        assert emu.info()["url"] == emu.url
        assert emu.control_url == f"{emu.url}/_emulator"
        assert emu.config()["latency_ms"] == 1
        netloc = emu.url.removeprefix("https://")
        assert {emu.env[var] for var in SDK_HOST_VARS} == {netloc}
        assert emu.env["REQUESTS_CA_BUNDLE"] == emu.ca_bundle
        assert emu.env["DROPBOX_APP_KEY"] == emu.app_key == "emulator-app-key"
        assert not any("TOKEN" in key for key in emu.env)  # no credentials in `env`
    assert not emu.running
    assert emu.returncode == 0  # SIGTERM is a clean exit
    assert _gone(pid)
    assert (tmp_path / "state").is_dir()


def test_stop_is_idempotent_and_start_is_once() -> None:
    emu = EmulatorServer()
    assert emu.stop() is None  # never started
    with pytest.raises(EmulatorError, match="not started"):
        emu.stats()
    emu.start()
    with pytest.raises(EmulatorError, match="already started"):
        emu.start()
    assert emu.stop() == 0
    assert emu.stop() == 0
    emu.__exit__(None, None, None)  # leaving a `with` after an explicit stop()
    assert emu.returncode == 0


def test_stop_kills_what_ignores_sigterm() -> None:
    with EmulatorServer(stop_timeout=1) as emu:
        emu.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]  # deaf to SIGTERM
        started = time.monotonic()
        code = emu.stop()
        assert time.monotonic() - started < 10
        assert code == -signal.SIGKILL
        assert _gone(emu.pid)


def test_a_bad_argument_is_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(EmulatorStartError) as err:
        EmulatorServer("--latency-ms", "-1").start()
    assert time.monotonic() - started < 30
    message = str(err.value)
    assert message.startswith("dropbox-emulator exited with code 2 before it was ready.")
    assert "-m dropbox_emulator --latency-ms -1" in message  # the command
    assert "argument --latency-ms: must be >= 0, got -1" in message  # its stderr
    assert err.value.returncode == 2
    assert "must be >= 0" in err.value.stderr


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


@posix_only
def test_no_ready_line_in_time_is_a_clear_error(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, "echo 'loading the certificates' >&2\nexec sleep 60\n")
    emu = EmulatorServer(python=python, ready_timeout=1)
    started = time.monotonic()
    with pytest.raises(EmulatorStartError) as err:
        emu.start()
    assert time.monotonic() - started < 15
    assert str(err.value).startswith("dropbox-emulator printed no ready line within 1 s.")
    assert "loading the certificates" in str(err.value)
    assert not emu.running  # killed, not left behind


@posix_only
def test_something_else_than_a_ready_line_is_a_clear_error(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, "echo 'Python 2.7.18'\nexec sleep 60\n")
    emu = EmulatorServer(python=python)
    with pytest.raises(
        EmulatorStartError, match=re.escape("printed 'Python 2.7.18' instead of its ready")
    ):
        emu.start()
    assert not emu.running


def test_a_server_left_running_is_stopped_at_interpreter_exit() -> None:
    code = (
        "from dropbox_emulator.testing import EmulatorServer; print(EmulatorServer().start().pid)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    pid = int(out.stdout)
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid)


def test_control_after_the_process_died_says_so() -> None:
    with EmulatorServer() as emu:
        emu.process.kill()  # type: ignore[union-attr]
        emu.process.wait(30)  # type: ignore[union-attr]
        with pytest.raises(EmulatorError, match=r"is not running \(exit code -9\)"):
            emu.stats()


# -- the control API -----------------------------------------------------------------------------


def test_token_fault_stats_round_trip(pristine: EmulatorServer) -> None:
    emu = pristine
    token = emu.token(ttl=120)
    assert check_user(emu, token["access_token"]).json() == {"result": "ping"}

    armed = emu.fault(route="check/user", status=503, times=1)
    assert [(f["route"], f["status"], f["times"]) for f in armed] == [("check/user", 503, 1)]
    assert emu.faults() == armed
    assert check_user(emu, token["access_token"]).status_code == 503
    assert check_user(emu, token["access_token"]).status_code == 200  # used up
    assert emu.faults() == []

    emu.fault({"route": "check/user", "times": 2}, {"route": "files/upload"})
    assert len(emu.faults()) == 2
    emu.clear_faults()
    assert emu.faults() == []

    stats = emu.stats()
    assert stats["requests"]["check/user"] == 3
    emu.reset()
    assert emu.stats()["requests"] == {}


def test_token_expire_and_revoke(pristine: EmulatorServer) -> None:
    token = pristine.token()
    pristine.expire_token(token["access_token"])
    expired = check_user(pristine, token["access_token"])
    assert expired.status_code == 401
    assert "expired_access_token" in expired.text
    pristine.revoke_token(token["refresh_token"])
    with pytest.raises(ControlError, match="unknown refresh token"):
        pristine.revoke_token("never-issued")


def test_config_changes_live(pristine: EmulatorServer) -> None:
    assert pristine.config(latency_ms=5)["latency_ms"] == 5
    assert pristine.config()["latency_ms"] == 5
    assert pristine.control("GET", "/_emulator/config")["latency_ms"] == 5  # either path form


def test_a_refused_control_call_carries_the_emulators_message(pristine: EmulatorServer) -> None:
    with pytest.raises(ControlError) as err:
        pristine.token(scopes=["files.everything"])
    assert isinstance(err.value, requests.HTTPError)
    assert err.value.response is not None and err.value.response.status_code == 400
    assert (
        str(err.value)
        == "POST /_emulator/tokens answered 400: unknown scopes: ['files.everything']"
    )
    with pytest.raises(ValueError, match="needs a spec"):
        pristine.fault()


# -- the isolated environment of a `dvc` subprocess ----------------------------------------------


def _developer_env(tmp_path: Path) -> dict[str, str]:
    """A developer's shell: own credentials, DVC config and a git hook's variables."""
    home = tmp_path / "developer"
    (home / ".config" / "dvc").mkdir(parents=True)
    (home / ".config" / "dvc" / "config").write_text("[core]\n    remote = leaked\n")
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "DROPBOX_ACCESS_TOKEN": "developers-own-token",
        "DROPBOX_CREDENTIALS_FILE": str(home / "creds.json"),
        "DROPBOX_API_HOST": "api.dropboxapi.com",
        "REQUESTS_CA_BUNDLE": "/etc/ssl/other.pem",
        "DVC_GLOBAL_CONFIG_DIR": str(home / ".config" / "dvc"),
        "GIT_DIR": str(tmp_path / "elsewhere" / ".git"),
    }


def test_isolated_env_keeps_nothing_of_the_developers(
    server: EmulatorServer, tmp_path: Path
) -> None:
    base = _developer_env(tmp_path)
    token = server.token()
    env = server.isolated_env(tmp_path / "home", token, base=base)
    assert env["PATH"] == base["PATH"]
    assert env["HOME"] == str(tmp_path / "home")
    assert env["XDG_CONFIG_HOME"].startswith(env["HOME"])
    assert env["DVC_GLOBAL_CONFIG_DIR"].startswith(env["HOME"])
    assert "GIT_DIR" not in env and "DROPBOX_CREDENTIALS_FILE" not in env
    assert env["DROPBOX_ACCESS_TOKEN"] == token["access_token"]
    assert env["DROPBOX_REFRESH_TOKEN"] == token["refresh_token"]
    assert {key: env[key] for key in server.env} == server.env  # hosts, CA bundle, app key
    assert env["DVC_NO_ANALYTICS"] == "1"

    no_key = server.isolated_env(tmp_path / "home", base=base, app_key=False)
    assert not {"DROPBOX_APP_KEY", "DROPBOX_ACCESS_TOKEN", "DROPBOX_REFRESH_TOKEN"} & set(no_key)

    offline = isolated_env(tmp_path / "home", base=base)  # no Dropbox at all
    assert not [key for key in offline if key.startswith("DROPBOX_")]
    assert "REQUESTS_CA_BUNDLE" not in offline


def test_a_dvc_subprocess_sees_none_of_the_developers_config(
    server: EmulatorServer, tmp_path: Path
) -> None:
    base = _developer_env(tmp_path)
    show = [str(BIN / "dvc"), "config", "--global", "core.remote"]
    leaked = subprocess.run(
        show, env=base, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert leaked.stdout.strip() == "leaked"  # the developer's setup is really there
    (tmp_path / "home").mkdir()
    env = server.isolated_env(tmp_path / "home", base=base)
    isolated = subprocess.run(
        show, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "leaked" not in isolated.stdout + isolated.stderr


# -- the README's example ------------------------------------------------------------------------


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Using the emulator in your tests (Python)\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README section lost its example"
    return match.group(1)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "test_dropbox_remote.py").write_text(readme_example())
    (tmp_path / "home").mkdir()
    # As on a user's CI machine: nothing of ours, not even this pytest's own variables.
    env = {k: v for k, v in isolated_env(tmp_path / "home").items() if not k.startswith("PYTEST")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_dropbox_remote.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
