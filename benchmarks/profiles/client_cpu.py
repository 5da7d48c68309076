"""Issue 12 item 2: CPU of the `dvc` process per small file, Dropbox push vs local-remote push.

    .venv/bin/python benchmarks/profiles/client_cpu.py                 # 2000 x 16 KiB
    .venv/bin/python benchmarks/profiles/client_cpu.py --repeat 3 --profile /tmp/prof

Makes one DVC repo with N random files, then for each round pushes them (a fresh cache copy each
time) to a local-directory remote and to a `dropbox://` remote on a fresh emulator
(`--latency-ms 50 --commit-ms 20`). The CPU of each `dvc push` is the user+sys time wait4(2)
reports for that process (with whatever it reaped, e.g. git), so the emulator's CPU is not in it;
the emulator's own CPU is read from /proc for reference. With `--profile DIR`, one more Dropbox
push runs under `py-spy record -r 200 -f raw` (not timed: py-spy's own CPU would count) and writes
DIR/push.txt, summarised by `flame_summary.py`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

from dropbox_emulator.testing import EmulatorServer, isolated_env

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
TIMEOUT_S = 1800


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _proc_cpu(pid: int) -> float:
    """utime+stime of a live process in seconds (its own threads), from /proc."""
    with open(f"/proc/{pid}/stat") as fobj:
        fields = fobj.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LAST_USAGE: dict[str, float] = {}


def run_cpu(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, user+sys CPU s) of one command; fails loudly if it fails (details: LAST_USAGE)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()  # until EOF: the process is done writing
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    LAST_USAGE.update(
        user=usage.ru_utime,
        sys=usage.ru_stime,
        voluntary_switches=usage.ru_nvcsw,
        involuntary_switches=usage.ru_nivcsw,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{err.decode()[-4000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, timeout=TIMEOUT_S)


class Repo:
    def __init__(self, work: Path, files: int, size: int):
        self.work = work
        self.path = work / "repo"
        self.home = work / "home"
        self.home.mkdir()
        self.env = isolated_env(self.home)
        self.path.mkdir()
        run(["git", "init", "-q"], self.path, self.env)
        run([DVC, "init", "-q"], self.path, self.env)
        data = self.path / "data"
        data.mkdir()
        for i in range(files):
            (data / f"{i:06d}.bin").write_bytes(os.urandom(size))
        run([DVC, "add", "-q", "data"], self.path, self.env)
        self.backup = work / "cache-backup"
        shutil.copytree(self.path / ".dvc" / "cache", self.backup)

    def restore_cache(self) -> None:
        shutil.rmtree(self.path / ".dvc" / "cache", ignore_errors=True)
        shutil.copytree(self.backup, self.path / ".dvc" / "cache")

    def remote(self, env: dict[str, str], name: str, url: str, **options: str) -> None:
        run([DVC, "remote", "add", "-f", name, url], self.path, env)
        for key, value in options.items():
            run([DVC, "remote", "modify", name, key, value], self.path, env)

    def push(self, env: dict[str, str], remote: str) -> tuple[float, float]:
        self.restore_cache()
        return run_cpu([DVC, "push", "-q", "-r", remote], self.path, env)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--commit-ms", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=None, help="the remote's jobs")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of (local, dropbox) pushes")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy output directory")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="also push with PYTHONPATH=SRC (another checkout's src/, e.g. the base commit's), "
        "in the same rounds: an A/B comparison under the same load",
    )
    parser.add_argument(
        "--gil", action="store_true", help="py-spy --gil: only the thread holding the GIL"
    )
    args = parser.parse_args(argv)
    n = args.files
    print(f"client CPU per file: {n} x {args.size} B, --latency-ms {args.latency_ms} "
          f"--commit-ms {args.commit_ms}, jobs {args.jobs or 'default'}")  # fmt: skip
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    emu_args = ["--latency-ms", str(args.latency_ms), "--commit-ms", str(args.commit_ms)]
    options = {"jobs": str(args.jobs)} if args.jobs else {}
    rows: list[tuple[float, float, float, float, float]] = []
    by_variant: dict[str, list[float]] = {}
    by_variant_cpu: dict[str, list[float]] = {}
    variants = [("", "")] + [tuple(v.split("=", 1)) for v in args.variant]  # type: ignore[misc]
    try:
        repo = Repo(work, n, args.size)
        repo.remote(repo.env, "local", str(work / "local-remote"))
        for round_ in range(args.repeat):
            shutil.rmtree(work / "local-remote", ignore_errors=True)
            local_wall, local_cpu = repo.push(repo.env, "local")
            for label, src in variants:
                with EmulatorServer(*emu_args, data_dir=work / f"emu{round_}{label}") as emu:
                    env = emu.isolated_env(repo.home, emu.token())
                    if src:
                        env["PYTHONPATH"] = src
                    name = f"dbx{round_}{label}"
                    repo.remote(env, name, f"dropbox://bench/{uuid.uuid4().hex[:8]}", **options)
                    emu_before = _proc_cpu(emu.pid)
                    v_wall, v_cpu = repo.push(env, name)
                    v_emu = _proc_cpu(emu.pid) - emu_before
                if label:
                    by_variant.setdefault(label, []).append((v_cpu - local_cpu) / n * 1000)
                    by_variant_cpu.setdefault(label, []).append(v_cpu)
                    print(
                        f"  variant {label}: dropbox push {v_wall:.1f} s wall, {v_cpu:.2f} s CPU, "
                        f"beyond local {(v_cpu - local_cpu) / n * 1000:.2f} ms/file",
                        flush=True,
                    )
                    continue
                dbx_wall, dbx_cpu, emu_cpu = v_wall, v_cpu, v_emu
                dbx_usage = dict(LAST_USAGE)
            rows.append((local_wall, local_cpu, dbx_wall, dbx_cpu, emu_cpu))
            extra = (dbx_cpu - local_cpu) / n * 1000
            print(
                f"round {round_ + 1}: local push {local_wall:.1f} s wall, {local_cpu:.2f} s CPU | "
                f"dropbox push {dbx_wall:.1f} s wall, {dbx_cpu:.2f} s CPU | "
                f"beyond local {extra:.2f} ms/file | emulator {emu_cpu / n * 1000:.2f} ms/file | "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            print(
                f"  dropbox push: user {dbx_usage['user']:.2f} s, sys {dbx_usage['sys']:.2f} s, "
                f"context switches {dbx_usage['voluntary_switches']:.0f} voluntary + "
                f"{dbx_usage['involuntary_switches']:.0f} involuntary",
                flush=True,
            )
        # The local push's CPU varies most from round to round (the page cache, other load): the
        # medians of each side are compared as well as the rounds one by one.
        local_median = median([r[1] for r in rows])
        extras = sorted((r[3] - r[1]) / n * 1000 for r in rows)
        print(f"local push CPU: median {local_median:.2f} s; dropbox push CPU: median "
              f"{median([r[3] for r in rows]):.2f} s; emulator CPU per file: median "
              f"{median([r[4] for r in rows]) / n * 1000:.2f} ms")  # fmt: skip
        print(f"client CPU beyond the local push, ms/file: per round min {extras[0]:.2f}, "
              f"median {median(extras):.2f}; median vs median "
              f"{(median([r[3] for r in rows]) - local_median) / n * 1000:.2f} "
              "(target <= 3)")  # fmt: skip
        for label, values in by_variant.items():
            cpus = by_variant_cpu[label]
            print(f"  variant {label}: dropbox push CPU median {median(cpus):.2f} s; beyond "
                  f"local per round median {median(values):.2f}, median vs median "
                  f"{(median(cpus) - local_median) / n * 1000:.2f} ms/file")  # fmt: skip
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            with EmulatorServer(*emu_args, data_dir=work / "emu-profile") as emu:
                env = emu.isolated_env(repo.home, emu.token())
                repo.remote(env, "prof", f"dropbox://bench/{uuid.uuid4().hex[:8]}", **options)
                repo.restore_cache()
                out = args.profile / "push.txt"
                spy = [str(BIN / "py-spy"), "record", "-r", "200", "-f", "raw", "--threads",
                       *(["--gil"] if args.gil else []),
                       "-o", str(out), "--", DVC, "push", "-q", "-r", "prof"]  # fmt: skip
                run(spy, repo.path, env)
                print(f"profile: {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
