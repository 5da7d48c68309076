"""Run the Dropbox API emulator from your own tests: what `ThreadedMotoServer` is to moto users.

    from dropbox_emulator.testing import EmulatorServer

    with EmulatorServer("--latency-ms", "20") as emu:   # the `dropbox-emulator` options
        env = emu.isolated_env(home, token=emu.token())  # for a `dvc` subprocess
        subprocess.run(["dvc", "push"], cwd=repo, env=env, check=True)
        assert emu.stats()["commits"] >= 1

The emulator runs in its own process (`python -m dropbox_emulator ARGS`), exactly as from a
shell. This module talks to it only as a user would: it reads the one JSON ready line and calls
the control API over HTTPS with the emulator's CA. So it imports nothing of the emulator's
internals and needs nothing beyond `pip install dvc-dropbox[emulator]` (the standard library and
`requests`, which the `dropbox` SDK brings). It does not import pytest: a fixture is a few lines
(the README shows one).
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import requests

__all__ = [
    "SDK_HOST_VARS",
    "ControlError",
    "EmulatorError",
    "EmulatorServer",
    "EmulatorStartError",
    "isolated_env",
]

# The official SDK reads these once, when `dropbox` is first imported.
SDK_HOST_VARS = (
    "DROPBOX_API_HOST",
    "DROPBOX_API_CONTENT_HOST",
    "DROPBOX_API_NOTIFY_HOST",
    "DROPBOX_WEB_HOST",
)
# The credential variables of dvc-dropbox (see the README's "Where credentials come from").
ACCESS_TOKEN_VAR = "DROPBOX_ACCESS_TOKEN"
REFRESH_TOKEN_VAR = "DROPBOX_REFRESH_TOKEN"
APP_KEY_VAR = "DROPBOX_APP_KEY"
# requests reads the first, then the second; an inherited one would trust another server.
CA_BUNDLE_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
READY_KEYS = ("url", "control_url", "ca_bundle", "env")

DEFAULT_READY_TIMEOUT_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 20.0
DEFAULT_CONTROL_TIMEOUT_S = 60.0
STDERR_TAIL_LINES = 40
# After the process ends, how long its pipes may take to reach EOF (a grandchild could hold them).
PIPE_DRAIN_TIMEOUT_S = 5.0


class EmulatorError(RuntimeError):
    """The emulator is not running, or not in the state the call needs."""


class EmulatorStartError(EmulatorError):
    """The emulator exited, or printed no ready line in time; the message ends with its stderr."""

    def __init__(self, message: str, returncode: Optional[int], stderr: str):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class ControlError(requests.HTTPError):
    """The control API refused a call; the message carries the emulator's own explanation."""


def _strip_inherited(base: Mapping[str, str]) -> dict[str, str]:
    """`base` without anything that would point a process at another Dropbox or CA."""
    return {
        key: value
        for key, value in base.items()
        if not key.startswith("DROPBOX_") and key not in CA_BUNDLE_VARS
    }


def isolated_env(
    home: Union[str, os.PathLike[str]], base: Optional[Mapping[str, str]] = None
) -> dict[str, str]:
    """An environment for a `dvc` or `git` subprocess that sees nothing of the developer's own
    Dropbox credentials, DVC or git configuration (and no Dropbox at all: see
    `EmulatorServer.isolated_env` for one pointed at an emulator).

    It is `base` (default `os.environ`) minus every `DROPBOX_*`, `DVC_*` and `GIT_*` variable and
    any CA bundle, with a private `home` directory (yours to make, e.g. pytest's `tmp_path`) for
    HOME, the XDG directories and DVC's global, system and site-cache directories, analytics off
    and a git identity.
    """
    home = Path(home)
    env = {
        key: value
        for key, value in _strip_inherited(os.environ if base is None else base).items()
        if not key.startswith(("DVC_", "GIT_"))
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global-config"),
            "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system-config"),
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "dropbox-emulator test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "dropbox-emulator test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
        }
    )
    if os.name == "nt":  # where platformdirs looks on Windows
        env.update(
            USERPROFILE=str(home),
            APPDATA=str(home / "AppData" / "Roaming"),
            LOCALAPPDATA=str(home / "AppData" / "Local"),
        )
    return env


class EmulatorServer:
    """One `dropbox-emulator` process: start it, reach it, drive its control API, stop it.

    `args` are the `dropbox-emulator` command-line options (`"--latency-ms", "20"`, ...);
    `data_dir` keeps its state across restarts (default: a temporary directory it removes).
    Its stderr is passed through to this process's stderr (`echo_stderr=False` keeps it quiet)
    and its last lines are kept for error messages.
    """

    def __init__(
        self,
        *args: str,
        data_dir: Union[str, os.PathLike[str], None] = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT_S,
        control_timeout: float = DEFAULT_CONTROL_TIMEOUT_S,
        echo_stderr: bool = True,
        python: str = sys.executable,
    ):
        self.args = list(args)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.control_timeout = control_timeout
        self.echo_stderr = echo_stderr
        self.python = python
        self.process: Optional[subprocess.Popen[str]] = None
        self._ready: Optional[dict[str, Any]] = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_held: list[str] = []
        self._stderr_lock = threading.Lock()
        self._echoing = False
        self._holding = True
        self._threads: list[threading.Thread] = []

    # -- life cycle ------------------------------------------------------------------------------

    @property
    def command(self) -> list[str]:
        cmd = [self.python, "-m", "dropbox_emulator", *self.args]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd

    def start(self) -> EmulatorServer:
        """Start the process and wait (at most `ready_timeout` s) for its ready line."""
        if self.process is not None:
            raise EmulatorError("this EmulatorServer was already started; make a new one")
        self._stderr_tail.clear()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=_strip_inherited(os.environ),
        )
        _LIVE.add(self)
        lines: queue.Queue[Optional[str]] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(lines,), daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            line = lines.get(timeout=self.ready_timeout)
        except queue.Empty:
            self.stop(timeout=0)
            what = f"printed no ready line within {self.ready_timeout:g} s"
            raise self._start_error(what) from None
        if line is None:  # stdout closed: the process is gone (or going)
            self.stop()
            code = self.process.returncode
            raise self._start_error(f"exited with code {code} before it was ready")
        try:
            ready = json.loads(line)
            missing = [key for key in READY_KEYS if key not in ready]
        except (ValueError, TypeError):
            ready, missing = None, list(READY_KEYS)
        if not isinstance(ready, dict) or missing:
            self.stop()
            raise self._start_error(f"printed {line.strip()[:200]!r} instead of its ready line")
        self._ready = ready
        self._start_echoing()
        return self

    def _read_stdout(self, lines: queue.Queue[Optional[str]]) -> None:
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        lines.put(stream.readline() or None)
        # The emulator prints nothing else on stdout; draining keeps a stray print from blocking it.
        for _ in stream:
            pass

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            with self._stderr_lock:
                self._stderr_tail.append(line)
                if self._echoing:
                    self._echo(line)
                elif self._holding:  # until ready (then echoed) or failed (then in the error)
                    self._stderr_held.append(line)

    def _start_echoing(self) -> None:
        """Once ready, pass stderr through, what came before first (a failed start shows it
        once, in the exception, instead)."""
        with self._stderr_lock:
            for line in self._stderr_held if self.echo_stderr else ():
                self._echo(line)
            self._stderr_held.clear()
            self._holding = False
            self._echoing = self.echo_stderr

    def _echo(self, line: str) -> None:
        # sys.__stderr__, not sys.stderr: pytest swaps the latter per test, and closes it.
        stream = sys.__stderr__
        if stream is None:
            return
        try:
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):  # our own stderr is closed: keep the tail only
            self.echo_stderr = self._echoing = False

    def _start_error(self, what: str) -> EmulatorStartError:
        tail = self.stderr_tail()
        shown = "".join(f"    {line}\n" for line in tail.splitlines()) or "    (nothing)\n"
        message = (
            f"dropbox-emulator {what}.\n"
            f"  command: {' '.join(self.command)}\n"
            f"  its stderr ended with:\n{shown}"
        )
        return EmulatorStartError(message.rstrip("\n"), self.returncode, tail)

    def stderr_tail(self) -> str:
        """The last lines the emulator wrote to stderr (for diagnostics)."""
        return "".join(self._stderr_tail)

    def stop(self, timeout: Optional[float] = None) -> Optional[int]:
        """SIGTERM, wait up to `timeout` (default `stop_timeout`) s, then kill. Idempotent.

        Returns the exit code (0 after a clean SIGTERM), or None if it was never started.
        """
        proc = self.process
        if proc is None:
            return None
        wait = self.stop_timeout if timeout is None else timeout
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(PIPE_DRAIN_TIMEOUT_S)
        for thread in self._threads:
            thread.join(PIPE_DRAIN_TIMEOUT_S)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        _LIVE.discard(self)
        return proc.returncode

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        return self._started().pid

    @property
    def returncode(self) -> Optional[int]:
        return None if self.process is None else self.process.poll()

    def _started(self) -> subprocess.Popen[str]:
        if self.process is None or self._ready is None:
            raise EmulatorError("the emulator is not started: call start() or use `with`")
        return self.process

    # -- where it is -----------------------------------------------------------------------------

    @property
    def ready(self) -> dict[str, Any]:
        """The parsed ready line: url, control_url, ca_bundle, env."""
        self._started()
        assert self._ready is not None
        return self._ready

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    @property
    def control_url(self) -> str:
        return str(self.ready["control_url"])

    @property
    def ca_bundle(self) -> str:
        return str(self.ready["ca_bundle"])

    @property
    def app_key(self) -> str:
        return str(self.ready["env"][APP_KEY_VAR])

    @property
    def env(self) -> dict[str, str]:
        """The SDK host variables, `REQUESTS_CA_BUNDLE` and `DROPBOX_APP_KEY`; no credentials.

        Give it to a subprocess, or put it in `os.environ` before `dropbox` is first imported
        (the SDK reads its hosts at import).
        """
        return {str(k): str(v) for k, v in self.ready["env"].items()}

    def isolated_env(
        self,
        home: Union[str, os.PathLike[str]],
        token: Optional[Mapping[str, Any]] = None,
        *,
        app_key: bool = True,
        base: Optional[Mapping[str, str]] = None,
    ) -> dict[str, str]:
        """The environment for a `dvc` (or `git`, `dvc-dropbox`) subprocess using this emulator.

        `isolated_env(home, base)` (nothing of the developer's own Dropbox, DVC or git
        configuration) plus this emulator's `env`. `token` (from `token()`) becomes
        `DROPBOX_ACCESS_TOKEN` + `DROPBOX_REFRESH_TOKEN`; without it the child has to authorize.
        `app_key=False` leaves `DROPBOX_APP_KEY` out (the remote's `app_key` option is then what
        counts, as for a user).
        """
        env = isolated_env(home, base)
        env.update(self.env)
        if not app_key:
            env.pop(APP_KEY_VAR, None)
        if token is not None:
            env[ACCESS_TOKEN_VAR] = str(token["access_token"])
            if token.get("refresh_token"):
                env[REFRESH_TOKEN_VAR] = str(token["refresh_token"])
        return env

    # -- the control API -------------------------------------------------------------------------

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call `/_emulator/PATH`, e.g. `control("POST", "tokens", {"ttl": 60})`; the JSON answer.

        Raises `ControlError` (a `requests.HTTPError`) with the emulator's message on 4xx/5xx,
        and `EmulatorError` with its stderr if the process is gone.
        """
        proc = self._started()
        name = path.strip("/")
        name = name[len("_emulator") :].lstrip("/") if name.startswith("_emulator") else name
        url = f"{self.control_url}/{name}" if name else self.control_url
        try:
            resp = requests.request(
                method, url, json=json, verify=self.ca_bundle, timeout=self.control_timeout
            )
        except requests.ConnectionError:
            if proc.poll() is None:
                raise
            raise EmulatorError(
                f"dropbox-emulator is not running (exit code {proc.returncode}); its stderr "
                f"ended with:\n{self.stderr_tail() or '(nothing)'}"
            ) from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("error", resp.text)
            except ValueError:
                detail = resp.text
            raise ControlError(
                f"{method} /_emulator/{name} answered {resp.status_code}: {detail}", response=resp
            )
        return resp.json() if resp.content else None

    def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        """`control()` for the endpoints that answer a JSON object."""
        answer = self.control(method, path, json)
        if not isinstance(answer, dict):
            raise EmulatorError(f"{method} /_emulator/{path} answered {answer!r}, not an object")
        return answer

    def info(self) -> dict[str, Any]:
        """Version, url, app keys, account id and config."""
        return self._call("GET", "")

    def token(self, **fields: Any) -> dict[str, Any]:
        """A token pair without the browser step; fields: app_key, scopes, ttl, offline."""
        return self._call("POST", "tokens", fields)

    def expire_token(self, access_token: str) -> None:
        """That access token answers 401 `expired_access_token` from now on."""
        self.control("POST", "tokens/expire", {"access_token": access_token})

    def revoke_token(self, refresh_token: str) -> None:
        """Revoke the refresh token and its access tokens."""
        self.control("POST", "tokens/revoke", {"refresh_token": refresh_token})

    def fault(self, *specs: Mapping[str, Any], **fields: Any) -> list[dict[str, Any]]:
        """Arm faults, all or none: `fault(route="files/upload", status=503, times=2)`, or
        several specs as dicts. Returns every armed fault."""
        armed = [dict(spec) for spec in specs] + ([fields] if fields else [])
        if not armed:
            raise ValueError("fault() needs a spec, e.g. fault(route='files/upload', status=503)")
        return list(self._call("POST", "faults", armed)["faults"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "faults")["faults"])

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        """`{"requests": {route: n}, "commits", "bytes_in", "bytes_out"}` since start or reset."""
        return self._call("GET", "stats")

    def config(self, **changes: Any) -> dict[str, Any]:
        """The live config; with keyword arguments (latency_ms=..., ...) changes it first."""
        if changes:
            return self._call("POST", "config", changes)
        return self._call("GET", "config")

    def reset(self) -> None:
        """Empty the Dropbox, clear faults and stats (tokens stay valid)."""
        self.control("POST", "reset")


# Started and not stopped yet (strong references: a dropped server must still be stopped), so
# that no emulator process outlives the interpreter that started it.
_LIVE: set[EmulatorServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()
