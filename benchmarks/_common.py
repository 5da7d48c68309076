"""Shared by the benchmarks: an emulator process (`dropbox_emulator.testing`, the launcher users'
CI gets), a DVC project wired to it, measured `dvc` runs, and the header/table/verdict printing
every benchmark uses.

Typical use (see large_file.py)::

    with tempfile.TemporaryDirectory() as tmp, Emulator("--latency-ms", "0", data_dir=...) as emu:
        point_sdk_at(emu)                    # before anything imports `dropbox`
        repo = DvcRepo(Path(tmp) / "repo", emu, "dropbox://bench/large").init()
        run = repo.dvc("push")               # run.seconds, run.peak_rss
        calls = stats_delta(before, emu.stats())

Everything runs on 127.0.0.1; the `dvc` subprocesses get `EmulatorServer.isolated_env`: the
emulator's env and a token from its control API (never printed), and nothing of the user's
Dropbox, DVC or git configuration.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from dropbox_emulator.testing import EmulatorServer

MiB = 1024 * 1024
GiB = 1024 * MiB
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
DEFAULT_COMMAND_TIMEOUT_S = 3600
POLL_S = 0.02
LISTING_ROUTES = ("files/list_folder", "files/list_folder/continue")


# -- the emulator --------------------------------------------------------------------------------

# `python -m dropbox_emulator KNOBS...` in its own process, with its control API. The package's
# launcher, not the tests' (benchmarks do not import the `tests` package).
Emulator = EmulatorServer


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
    cpu_seconds: float  # user + system CPU of the process and its reaped descendants
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU `pid` has used so far (from /proc; 0.0 where that is missing): the
    emulator's share of a run is the difference of two readings."""
    try:
        with open(f"/proc/{pid}/stat") as fobj:
            fields = fobj.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the ")" that ends the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        # One measured command at a time: what the children's counters gain is this one's CPU.
        cpu_before = _children_cpu()
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
        cpu_seconds = _children_cpu() - cpu_before
        out.seek(0)
        err.seek(0)
        return Run(
            args=list(args),
            seconds=seconds,
            returncode=proc.returncode,
            peak_rss=peak,
            children_peak_rss=children_peak,
            cpu_seconds=cpu_seconds,
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
        self.env = emu.isolated_env(home, emu.token())
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
    print(f"emulator:  {knobs} (flags: {' '.join(emu.args) or 'none'})")
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
    "process_cpu_seconds",
    "run_measured",
    "sdk_client",
    "stats_delta",
]
