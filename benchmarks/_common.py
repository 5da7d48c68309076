"""Shared by the benchmarks: an emulator process, a DVC project wired to it, measured `dvc` runs,
and the header/table/verdict printing every benchmark uses.

Typical use (see large_file.py)::

    with tempfile.TemporaryDirectory() as tmp, Emulator("--latency-ms", "0", data_dir=...) as emu:
        point_sdk_at(emu)                    # before anything imports `dropbox`
        repo = DvcRepo(Path(tmp) / "repo", emu, "dropbox://bench/large").init()
        run = repo.dvc("push")               # run.seconds, run.peak_rss
        calls = stats_delta(before, emu.stats())

Everything runs on 127.0.0.1; the `dvc` subprocesses get the emulator's env and a token from its
control API (never printed), and nothing of the user's Dropbox or DVC configuration.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

MiB = 1024 * 1024
GiB = 1024 * MiB
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
READY_TIMEOUT_S = 60
DEFAULT_COMMAND_TIMEOUT_S = 3600
POLL_S = 0.02
LISTING_ROUTES = ("files/list_folder", "files/list_folder/continue")


# -- the emulator --------------------------------------------------------------------------------


class Emulator:
    """`python -m dropbox_emulator KNOBS...` in its own process, with its control API."""

    def __init__(self, *knobs: str, data_dir: Optional[Path] = None):
        self.knobs = list(knobs)
        self.data_dir = data_dir
        self.proc: Optional[subprocess.Popen[str]] = None
        self.ready: dict[str, Any] = {}

    def start(self) -> Emulator:
        cmd = [sys.executable, "-m", "dropbox_emulator", *self.knobs]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        # The emulator must not inherit another emulator's hosts or CA bundle (e.g. under pytest).
        env = {k: v for k, v in os.environ.items() if not k.startswith("DROPBOX_")}
        env.pop("REQUESTS_CA_BUNDLE", None)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = ""
        while not line and time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the emulator did not start")
        self.ready = json.loads(line)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """What the SDK needs to reach this emulator (hosts and CA bundle), no credentials."""
        env = dict(self.ready["env"])
        env.setdefault("REQUESTS_CA_BUNDLE", self.ready["ca_bundle"])
        return env

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        import requests

        url = f"{self.ready['control_url']}/{path.lstrip('/')}"
        resp = requests.request(
            method, url, json=payload, verify=self.ready["ca_bundle"], timeout=120
        )
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def token(self) -> dict[str, Any]:
        return self.control("POST", "tokens", {})

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def config(self) -> dict[str, Any]:
        return self.control("GET", "config")


def point_sdk_at(emu: Emulator) -> None:
    """Make this process's SDK talk to `emu`. The SDK reads its hosts once, at import."""
    if "dropbox" in sys.modules:
        raise RuntimeError("point_sdk_at() must run before `dropbox` is imported")
    for key in [k for k in os.environ if k.startswith("DROPBOX_")]:
        del os.environ[key]
    os.environ.update(emu.env)


def sdk_client(emu: Emulator, retries: int = 5, max_connections: int = 8) -> Any:
    """An official SDK client with a fresh token (call `point_sdk_at` first)."""
    import dropbox

    return dropbox.Dropbox(
        oauth2_access_token=emu.token()["access_token"],
        max_retries_on_rate_limit=retries,
        max_retries_on_error=retries,
        session=dropbox.create_session(max_connections=max_connections),
    )


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests per route between two `GET /_emulator/stats` snapshots (+ commits)."""
    out = {
        route: n - before["requests"].get(route, 0)
        for route, n in after["requests"].items()
        if n - before["requests"].get(route, 0)
    }
    out["(commits)"] = after["commits"] - before["commits"]
    return out


def listing_calls(delta: dict[str, int]) -> int:
    return sum(delta.get(route, 0) for route in LISTING_ROUTES)


# -- measured subprocesses -----------------------------------------------------------------------


@dataclass
class Run:
    args: list[str]
    seconds: float
    returncode: int
    peak_rss: int  # bytes: VmHWM of the process itself (0 where /proc is missing)
    children_peak_rss: int  # bytes: the largest VmHWM among its descendants (git, ...)
    stdout: str
    stderr: str

    def check(self) -> Run:
        if self.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.args)} exited {self.returncode}\n"
                f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
            )
        return self


def vm_hwm(pid: int) -> int:
    """Peak resident set size of `pid` in bytes (VmHWM), 0 if unknown or gone.

    Not wait4's ru_maxrss: on Linux a child's ru_maxrss starts from its parent's high-water mark
    (the address space it was forked from is accounted at exec), so a benchmark that held big
    buffers would inflate every measurement. VmHWM belongs to the process's own address space.
    """
    try:
        with open(f"/proc/{pid}/status") as fobj:
            for line in fobj:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except Exception:  # psutil missing, or the process just ended
        return []


def run_measured(
    args: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = DEFAULT_COMMAND_TIMEOUT_S
) -> Run:
    """Run a command: wall time, and its peak RSS polled from /proc every POLL_S seconds.

    VmHWM is a high-water mark, so polling misses only growth in the last POLL_S before exit.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(args), cwd=cwd, env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        peak = children_peak = 0
        polls = 0
        while True:
            peak = max(peak, vm_hwm(proc.pid))  # before reaping: /proc/<pid> goes with it
            if polls % 10 == 0:
                for child in _descendants(proc.pid):
                    children_peak = max(children_peak, vm_hwm(child))
            polls += 1
            try:
                proc.wait(POLL_S)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    break
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Run(
            args=list(args),
            seconds=seconds,
            returncode=proc.returncode,
            peak_rss=peak,
            children_peak_rss=children_peak,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _run(args: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(list(args), cwd=cwd, env=env, check=True, capture_output=True, timeout=300)


class DvcRepo:
    """A fresh `git init && dvc init` project whose default remote `bench` is on the emulator."""

    def __init__(
        self,
        path: Path,
        emu: Emulator,
        remote_url: str,
        remote_options: Optional[dict[str, str]] = None,
    ):
        self.path = path
        self.remote_url = remote_url
        self.remote_options = dict(remote_options or {})
        home = path.parent / f"{path.name}-home"
        token = emu.token()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DROPBOX_", "DVC_")) and k != "REQUESTS_CA_BUNDLE"
        }
        env.update(emu.env)
        env.update(
            {
                "DROPBOX_ACCESS_TOKEN": token["access_token"],
                "DROPBOX_REFRESH_TOKEN": token["refresh_token"],
                "DVC_NO_ANALYTICS": "1",
                "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@example.com",
                "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@example.com",
            }
        )
        self.env = env
        self.home = home

    def init(self) -> DvcRepo:
        self.path.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        _run(["git", "init", "-q"], self.path, self.env)
        _run([DVC, "init", "-q"], self.path, self.env)
        # What `dvc remote add -d bench URL` + `dvc remote modify` write, without two more
        # `dvc` start-ups per project (the smoke runs of the benchmarks must stay short).
        lines = [
            "[core]",
            "    remote = bench",
            "['remote \"bench\"']",
            f"    url = {self.remote_url}",
        ]
        lines += [f"    {key} = {value}" for key, value in self.remote_options.items()]
        (self.path / ".dvc" / "config").write_text("\n".join(lines) + "\n")
        return self

    def dvc(
        self,
        *args: str,
        timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
        profile: Optional[Path] = None,
    ) -> Run:
        """`dvc ARGS` measured; raises with its output if it fails.

        With `profile`, runs under `py-spy record` (install it into the venv yourself) and writes
        collapsed stacks there (flamegraph.pl / speedscope read them); RSS is then py-spy's.
        """
        cmd = [DVC, *args]
        if profile is not None:
            spy = str(BIN / "py-spy")
            cmd = [spy, "record", "--format", "raw", "--rate", "200", "--threads",
                   "--subprocesses", "--nonblocking", "-o", str(profile), "--", *cmd]  # fmt: skip
        return run_measured(cmd, self.path, self.env, timeout).check()


# -- output --------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fobj:
            for line in fobj:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        with open("/proc/meminfo") as fobj:
            for line in fobj:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def print_header(title: str, emu: Emulator, settings: dict[str, Any]) -> None:
    """Machine, versions, date, the emulator's live config and the benchmark's settings."""
    now = datetime.datetime.now(datetime.timezone.utc)
    config = emu.config()
    knobs = ", ".join(
        f"{k}={config.get(k)}"
        for k in ("latency_ms", "commit_ms", "lock_wait_ms", "rate_limit_per_s")
    )
    versions = " ".join(
        f"{dist} {_version(dist)}"
        for dist in ("dvc", "dvc-data", "dvc-objects", "dropbox", "dvc-dropbox")
    )
    print(f"# {title}")
    print()
    print(f"date:      {now:%Y-%m-%d %H:%M:%S} UTC")
    print(
        f"machine:   {_cpu_model()}, {os.cpu_count()} cores, {_ram()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"python:    {platform.python_version()} ({sys.executable})")
    print(f"versions:  {versions}")
    print(f"emulator:  {knobs} (flags: {' '.join(emu.knobs) or 'none'})")
    print("settings:  " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(flush=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return "| " + " | ".join(parts) + " |"

    print(line(cells[0]))
    print(
        "|"
        + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    for row in cells[1:]:
        print(line(row))
    print(flush=True)


@dataclass
class Target:
    """One target of issue 5 with the measured value: printed as PASS or MISS."""

    name: str
    measured: str
    goal: str
    met: bool

    def row(self) -> list[str]:
        return [self.name, self.measured, self.goal, "PASS" if self.met else "MISS"]


def print_targets(targets: Sequence[Target]) -> bool:
    """The verdict table; True when every target is met."""
    print_table(["target", "measured", "goal", "verdict"], [t.row() for t in targets])
    return all(t.met for t in targets)


def mib_s(size: int, seconds: float) -> float:
    return size / MiB / seconds if seconds > 0 else float("inf")


def fmt_mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB"


__all__ = [
    "BIN",
    "DVC",
    "DvcRepo",
    "Emulator",
    "GiB",
    "MiB",
    "Run",
    "Target",
    "listing_calls",
    "mib_s",
    "point_sdk_at",
    "print_header",
    "print_table",
    "print_targets",
    "run_measured",
    "sdk_client",
    "stats_delta",
]
