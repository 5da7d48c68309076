"""Issue 5 target P1: `dvc push` / `dvc pull` of many small files, Dropbox (emulated) vs local.

One command:

    .venv/bin/python benchmarks/push_small_files.py            # 2000 x 16 KiB, ~ a few minutes
    .venv/bin/python benchmarks/push_small_files.py --files 200 --jobs 16,64

Starts its own emulator (`--latency-ms 50 --commit-ms 20` by default), makes a fresh DVC repo
with one tracked directory of N random files, then times the real `dvc` CLI:

- push / pull with a local-directory remote (the floor: DVC's own per-file cost);
- push / pull with a `dropbox://` remote, default options (batch commits), for each `--jobs`;
- push with `batch_size 1` (one commit per file: what batching saves).

Prints the machine, date and settings, a table, and the ratios of issue 5 P1:
(a) batch_size 1 time / batched time >= 10; (b) batched time <= local time + 2 x N x latency / jobs;
(c) commits <= ceil(N / batch_size) + retries (from the emulator's stats).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from dropbox_emulator.testing import EmulatorServer, isolated_env

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
COMMAND_TIMEOUT_S = 1800  # every dvc command is bounded


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a command, fail loudly if it fails; returns its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return elapsed


def dvc(cwd: Path, env: dict[str, str], *args: str) -> float:
    return run([DVC, *args], cwd, env)


def count(stats: dict[str, Any], route: str) -> int:
    return int(stats["requests"].get(route, 0))


def stats_delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    routes = (
        "files/upload_session/start",
        "files/upload_session/finish_batch_v2",
        "files/upload_session/finish",
        "files/upload",
        "files/download",
        "files/list_folder",
        "files/list_folder/continue",
        "files/get_metadata",
    )
    delta = {route: count(after, route) - count(before, route) for route in routes}
    delta["commits"] = int(after.get("commits", 0)) - int(before.get("commits", 0))
    return delta


def clear_cache(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(repo / "data", ignore_errors=True)


def header(args: argparse.Namespace) -> str:
    import dropbox
    import dvc.version

    cpu = platform.processor() or platform.machine()
    lines = [
        "# push_small_files benchmark (issue 5, P1)",
        f"date (UTC): {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {cpu}",
        f"python {platform.python_version()}, dvc {dvc.version.__version__}, "
        f"dropbox SDK {dropbox.__version__}",
        f"emulator: --latency-ms {args.latency_ms} --commit-ms {args.commit_ms} "
        f"(lock wait default), on 127.0.0.1; a fresh emulator for every Dropbox run",
        f"workload: {args.files} files x {args.size} bytes in one tracked directory",
        # Client, emulator and dvc share the CPUs: other load skews every number.
        "load average at start (1/5/15 min): " + " ".join(f"{x:.1f}" for x in os.getloadavg()),
    ]
    return "\n".join(lines)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.emu: Optional[EmulatorServer] = None
        self.repo = work / "repo"
        self.home = work / "home"
        self.home.mkdir()
        self.env = isolated_env(self.home)  # the local-remote runs: no Dropbox at all
        self.rows: list[dict[str, Any]] = []

    def use(self, emu: EmulatorServer) -> None:
        """Talk to `emu` from now on (each Dropbox run gets a fresh emulator: an emulator's
        per-commit cost may grow with what it stores, which would bias later runs)."""
        self.emu = emu
        self.env = emu.isolated_env(self.home, emu.token())

    def stats(self) -> dict[str, Any]:
        return self.emu.stats() if self.emu is not None else {"requests": {}}

    def prepare(self) -> None:
        self.repo.mkdir()
        run(["git", "init", "-q"], self.repo, self.env)
        dvc(self.repo, self.env, "init", "-q")
        data = self.repo / "data"
        data.mkdir()
        for i in range(self.args.files):
            (data / f"{i:06d}.bin").write_bytes(os.urandom(self.args.size))
        dvc(self.repo, self.env, "add", "-q", "data")
        self.backup = self.work / "cache-backup"
        shutil.copytree(self.repo / ".dvc" / "cache", self.backup)
        shutil.copytree(data, self.work / "data-backup")

    def restore_cache(self) -> None:
        clear_cache(self.repo)
        shutil.copytree(self.backup, self.repo / ".dvc" / "cache")
        shutil.copytree(self.work / "data-backup", self.repo / "data")

    def remote(self, name: str, url: str, **options: str) -> None:
        dvc(self.repo, self.env, "remote", "add", "-f", name, url)
        for key, value in options.items():
            dvc(self.repo, self.env, "remote", "modify", name, key, value)

    def measure(
        self, label: str, remote: str, *, pull: bool, jobs: Optional[int]
    ) -> dict[str, Any]:
        self.restore_cache()
        before = self.stats()
        push = dvc(self.repo, self.env, "push", "-q", "-r", remote)
        after = self.stats()
        row: dict[str, Any] = {
            "label": label,
            "jobs": jobs,
            "push": push,
            "push_stats": stats_delta(after, before),
        }
        if pull:
            clear_cache(self.repo)
            before = self.stats()
            row["pull"] = dvc(self.repo, self.env, "pull", "-q", "-r", remote)
            row["pull_stats"] = stats_delta(self.stats(), before)
        self.rows.append(row)
        print(f"  {label}: push {push:.1f} s" + (f", pull {row['pull']:.1f} s" if pull else ""))
        if self.args.verbose:
            print(f"    push requests: {row['push_stats']}")
            if pull:
                print(f"    pull requests: {row['pull_stats']}")
        return row


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--commit-ms", type=int, default=20)
    parser.add_argument(
        "--jobs",
        default="",
        help="comma-separated `jobs` values to measure for the batched push (default: the "
        "plugin's default only)",
    )
    parser.add_argument("--verbose", action="store_true", help="print request counts per run")
    parser.add_argument("--skip-single", action="store_true", help="skip the batch_size 1 run")
    parser.add_argument(
        "--quick", action="store_true", help="40 files of 1 KiB: a smoke run, not a measurement"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.size = 40, 1024
    from dvc_dropbox.options import DEFAULT_BATCH_SIZE, DEFAULT_JOBS

    jobs_values = [int(j) for j in args.jobs.split(",") if j.strip()] or [DEFAULT_JOBS]
    print(header(args))
    print(f"plugin defaults: jobs {DEFAULT_JOBS}, batch_size {DEFAULT_BATCH_SIZE}")
    print()
    work = Path(tempfile.mkdtemp(prefix="bench-small-"))
    emu_args = ["--latency-ms", str(args.latency_ms), "--commit-ms", str(args.commit_ms)]
    try:
        bench = Bench(args, work)
        print("preparing the repository ...")
        bench.prepare()
        bench.remote("local", str(work / "local-remote"))
        local = bench.measure("local directory remote", "local", pull=True, jobs=None)
        batched: list[dict[str, Any]] = []
        for run, jobs in enumerate(jobs_values):
            with EmulatorServer(*emu_args, data_dir=work / f"emulator{run}") as emu:
                bench.use(emu)
                name = f"dbx{jobs}"
                bench.remote(name, f"dropbox://bench/{uuid.uuid4().hex[:8]}", jobs=str(jobs))
                label = f"dropbox, jobs {jobs}, batch_size default"
                batched.append(bench.measure(label, name, pull=True, jobs=jobs))
        single: Optional[dict[str, Any]] = None
        if not args.skip_single:
            with EmulatorServer(*emu_args, data_dir=work / "emulator-single") as emu:
                bench.use(emu)
                jobs = jobs_values[0]
                bench.remote(
                    "single",
                    f"dropbox://bench/{uuid.uuid4().hex[:8]}",
                    jobs=str(jobs),
                    batch_size="1",
                )
                label = f"dropbox, jobs {jobs}, batch_size 1"
                single = bench.measure(label, "single", pull=False, jobs=jobs)
        report(args, local, batched, single, DEFAULT_BATCH_SIZE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace,
    local: dict[str, Any],
    batched: list[dict[str, Any]],
    single: Optional[dict[str, Any]],
    batch_size: int,
) -> None:
    n = args.files
    latency = args.latency_ms / 1000.0
    print()
    print("| run | push s | files/s | pull s | batch commits | single commits | data requests |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in [local, *batched, *([single] if single else [])]:
        st = row["push_stats"]
        pull = f"{row['pull']:.1f}" if "pull" in row else "-"
        dropbox = row is not local
        print(
            f"| {row['label']} | {row['push']:.1f} | {n / row['push']:.0f} | {pull} | "
            f"{st['files/upload_session/finish_batch_v2'] if dropbox else '-'} | "
            f"{st['files/upload_session/finish'] + st['files/upload'] if dropbox else '-'} | "
            f"{st['files/upload_session/start'] if dropbox else '-'} |"
        )
    print()
    print("Targets (issue 5, P1):")
    for row in batched:
        jobs = row["jobs"]
        allowance = 2 * n * latency / jobs
        bound = local["push"] + allowance
        st = row["push_stats"]
        commits = st["files/upload_session/finish_batch_v2"]
        # DVC pushes the .dir object too: N + 1 objects.
        ideal = math.ceil((n + 1) / batch_size)
        print(f"- jobs {jobs}:")
        if single is not None and single["jobs"] == jobs:
            ratio = single["push"] / row["push"]
            verdict = "met" if ratio >= 10 else "NOT met"
            print(f"  (a) batch_size 1 / batched = {ratio:.1f}x (target >= 10x): {verdict}")
        verdict = "met" if row["push"] <= bound else "NOT met"
        print(
            f"  (b) push {row['push']:.1f} s <= local {local['push']:.1f} s + "
            f"2 x N x latency / jobs {allowance:.1f} s = {bound:.1f} s: {verdict}"
        )
        pull_bound = local["pull"] + allowance
        verdict = "met" if row["pull"] <= pull_bound else "NOT met"
        print(
            f"      pull {row['pull']:.1f} s <= local {local['pull']:.1f} s + {allowance:.1f} s "
            f"= {pull_bound:.1f} s: {verdict}"
        )
        verdict = "met" if commits <= ideal else "NOT met"
        print(
            f"  (c) batch commits {commits} (ceil((N+1)/batch_size) = {ideal}; commits "
            f"reported by the emulator {st['commits']}): {verdict}"
            + (
                f" - uploads wait for their own commit, so a batch holds at most `jobs` "
                f"entries: ceil((N+1)/jobs) = {math.ceil((n + 1) / jobs)}"
                if commits > ideal
                else ""
            )
        )


if __name__ == "__main__":
    sys.exit(main())
