"""Issue 5 target P2: one large file through the real `dvc` CLI vs the emulator's raw throughput.

    python3 dev.py bench large_file [--size 2GiB] [--chunk-size MIB] [--quick] [--strict]

In one run, against its own emulator started with `--latency-ms 0`:

1. raw loopback throughput with the official SDK alone: an upload session with the plugin's
   chunk size (start with the first chunk, `append_v2` the rest, `finish`) and a streamed
   `files/download` of the same bytes (dropped, and once more written to a local file);
2. `dvc add` of a random file of `--size` bytes, `dvc push` to a `dropbox://` remote, `dvc fetch`
   into an empty cache (download only), then `dvc pull` into an empty cache (download and
   checkout into the workspace; the bytes are checked);
3. the raw download into a local file once more, right after the pull (the box's load changes
   within a run: the pull is compared with the mean time of the two, which bracket it).

Prints MiB/s each way, the ratio to the raw numbers (targets: push >= 70 % of the raw upload,
pull >= 70 % of the raw download into a file, issue 12 item 5), the CPU seconds each step used
(the `dvc` process and its children; the benchmark process for the raw steps: on a shared
machine wall time follows CPU), and the peak RSS of the `dvc` process (VmHWM; target <= 250 MiB
with the default chunk size). `--quick` uses 64 MiB (a smoke run, not a measurement). Needs about
5 x size of free disk in --tmp-dir. `--profile DIR` also records push and pull with py-spy
(`.venv/bin/pip install py-spy` first).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from _common import (
    DvcRepo,
    Emulator,
    GiB,
    MiB,
    Run,
    Target,
    mib_s,
    point_sdk_at,
    print_header,
    print_table,
    print_targets,
    sdk_client,
    stats_delta,
)

THROUGHPUT_RATIO = 0.70
RSS_LIMIT = 250 * MiB
QUICK_SIZE = 64 * MiB
WRITE_BLOCK = 8 * MiB
REMOTE_FOLDER = "bench/large-file"
RAW_PATH = "/bench/raw/large.bin"


def parse_size(text: str) -> int:
    """'2GiB', '512MiB', '512M', '1G' or a number of bytes."""
    value = text.strip().lower()
    for suffix, factor in (("gib", GiB), ("g", GiB), ("mib", MiB), ("m", MiB), ("b", 1)):
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value)


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def write_random_file(path: Path, size: int) -> str:
    """`size` random bytes at `path`; returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fobj:
        left = size
        while left:
            block = os.urandom(min(left, WRITE_BLOCK))
            fobj.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fobj:
        for block in iter(lambda: fobj.read(WRITE_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def cpu_seconds(who: int) -> float:
    """User + system CPU of this process (RUSAGE_SELF) or of its reaped children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds of each measured step, keyed by its name."""

    def __init__(self) -> None:
        self.used: dict[str, float] = {}

    def step(self, name: str, who: int, action: Callable[[], Any]) -> Any:
        before = cpu_seconds(who)
        result = action()
        self.used[name] = cpu_seconds(who) - before
        return result

    def text(self, name: str) -> str:
        return f"{self.used[name]:.2f}" if name in self.used else ""


def load_average() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def raw_upload(dbx: Any, source: Path, chunk_size: int) -> Any:
    """What the plugin does for a large file, with the SDK alone and no hashing on our side."""
    from dropbox import files

    with open(source, "rb") as fobj:
        first = fobj.read(chunk_size)
        session = dbx.files_upload_session_start(first)
        offset = len(first)
        for chunk in iter(lambda: fobj.read(chunk_size), b""):
            cursor = files.UploadSessionCursor(session.session_id, offset)
            dbx.files_upload_session_append_v2(chunk, cursor)
            offset += len(chunk)
    return dbx.files_upload_session_finish(
        b"",
        files.UploadSessionCursor(session.session_id, offset),
        files.CommitInfo(RAW_PATH, mode=files.WriteMode.overwrite),
    )


def raw_download(dbx: Any, target: Optional[Path] = None) -> int:
    """Stream the raw file in 4 MiB reads; into `target` if given, else dropped."""
    _, resp = dbx.files_download(RAW_PATH)
    received = 0
    with resp, open(target or os.devnull, "wb") as out:
        for block in resp.iter_content(4 * MiB):
            if target is not None:
                out.write(block)
            received += len(block)
    return received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=2 * GiB, help="file size (2GiB)")
    parser.add_argument(
        "--chunk-size", type=int, help="remote chunk_size in MiB (default: the plugin's)"
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB smoke run")
    parser.add_argument("--tmp-dir", type=Path, help="where the files go (default: system temp)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also run dvc push/pull under py-spy, writing DIR/push.txt and DIR/pull.txt",
    )
    args = parser.parse_args()
    size = QUICK_SIZE if args.quick else args.size
    if size < 1:
        parser.error("--size must be positive")

    free = shutil.disk_usage(args.tmp_dir or tempfile.gettempdir()).free
    if free < 5 * size + GiB:
        parser.error(f"needs about {5 * size / GiB:.1f} GiB free, {free / GiB:.1f} GiB left")

    with tempfile.TemporaryDirectory(prefix="bench-large-", dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        with Emulator("--latency-ms", "0", data_dir=tmp / "emulator") as emu:
            point_sdk_at(emu)
            from dvc_dropbox.options import DEFAULT_CHUNK_SIZE

            chunk_size = args.chunk_size * MiB if args.chunk_size else DEFAULT_CHUNK_SIZE
            return run(emu, tmp, size, chunk_size, args)


def run(emu: Emulator, tmp: Path, size: int, chunk_size: int, args: argparse.Namespace) -> int:
    options = {"chunk_size": str(chunk_size // MiB)} if args.chunk_size else {}
    repo = DvcRepo(tmp / "repo", emu, f"dropbox://{REMOTE_FOLDER}", options).init()
    data = repo.path / "data.bin"
    progress(f"writing {size / MiB:.0f} MiB of random bytes")
    original = write_random_file(data, size)

    dbx = sdk_client(emu)
    dbx.check_user()  # connect before timing
    load_start = load_average()
    cpu = CpuMeter()
    me, children = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    progress("raw SDK upload")
    up_s, meta = cpu.step("up", me, lambda: timed(lambda: raw_upload(dbx, data, chunk_size)))
    if meta.size != size:
        raise RuntimeError(f"raw upload stored {meta.size} bytes, not {size}")
    progress("raw SDK download")
    down_s, received = cpu.step("down", me, lambda: timed(lambda: raw_download(dbx)))
    if received != size:
        raise RuntimeError(f"raw download got {received} bytes, not {size}")
    local = tmp / "raw-download.bin"

    def raw_into_file(name: str) -> float:
        progress("raw SDK download into a local file")
        seconds, received = cpu.step(name, me, lambda: timed(lambda: raw_download(dbx, local)))
        if received != size:
            raise RuntimeError(f"raw download got {received} bytes, not {size}")
        local.unlink()
        return float(seconds)

    down_file_s = raw_into_file("file")

    progress("dvc version (baseline RSS)")
    baseline = cpu.step("version", children, lambda: repo.dvc("version"))
    progress("dvc add")
    add = cpu.step("add", children, lambda: repo.dvc("add", "data.bin"))
    progress("dvc push")
    before = emu.stats()
    push = cpu.step("push", children, lambda: repo.dvc("push", profile=_profile(args, "push")))
    push_calls = stats_delta(before, emu.stats())

    shutil.rmtree(repo.path / ".dvc" / "cache")
    data.unlink()
    progress("dvc fetch into an empty cache")
    fetch = cpu.step("fetch", children, lambda: repo.dvc("fetch"))
    shutil.rmtree(repo.path / ".dvc" / "cache")
    progress("dvc pull into an empty cache")
    before = emu.stats()
    pull = cpu.step("pull", children, lambda: repo.dvc("pull", profile=_profile(args, "pull")))
    pull_calls = stats_delta(before, emu.stats())
    down_file_after_s = raw_into_file("file after")
    dbx.files_delete_v2(RAW_PATH)
    load_end = load_average()
    progress("checking the pulled bytes")
    if sha256_file(data) != original:
        raise RuntimeError("dvc pull did not give back the same bytes")

    raw_up, raw_down = mib_s(size, up_s), mib_s(size, down_s)
    raw_file = mib_s(size, (down_file_s + down_file_after_s) / 2)
    push_rate, pull_rate = mib_s(size, push.seconds), mib_s(size, pull.seconds)
    fetch_rate = mib_s(size, fetch.seconds)
    default_chunk = not args.chunk_size
    print_header(
        "dvc-dropbox large file: dvc push / dvc pull vs raw SDK throughput (issue 5 P2, 12.5)",
        emu,
        {
            "size": f"{size / MiB:.0f} MiB",
            "chunk_size": f"{chunk_size // MiB} MiB" + (" (default)" if default_chunk else ""),
            "mode": "quick (smoke run)" if args.quick else "full",
            "profiled": "yes (RSS is py-spy's)" if args.profile else "no",
            "load average": f"{load_start} at the start, {load_end} at the end",
        },
    )
    file_pct = _pct(mib_s(size, down_file_s), raw_down)
    after_pct = _pct(mib_s(size, down_file_after_s), raw_down)
    print_table(
        ["step", "seconds", "MiB/s", "vs raw", "vs raw into a file", "CPU s", "peak RSS"],
        [
            ["raw SDK upload session (same chunk size)", f"{up_s:.2f}", f"{raw_up:.1f}", "", "",
             cpu.text("up"), ""],
            ["raw SDK files/download", f"{down_s:.2f}", f"{raw_down:.1f}", "", "",
             cpu.text("down"), ""],
            ["raw SDK files/download into a file", f"{down_file_s:.2f}",
             f"{mib_s(size, down_file_s):.1f}", file_pct, "", cpu.text("file"), ""],
            ["dvc version (start-up baseline)", f"{baseline.seconds:.2f}", "", "", "",
             cpu.text("version"), _mib(baseline)],
            ["dvc add", f"{add.seconds:.2f}", f"{mib_s(size, add.seconds):.1f}", "", "",
             cpu.text("add"), _mib(add)],
            ["dvc push", f"{push.seconds:.2f}", f"{push_rate:.1f}", _pct(push_rate, raw_up), "",
             cpu.text("push"), _mib(push)],
            ["dvc fetch (empty cache, no checkout)", f"{fetch.seconds:.2f}", f"{fetch_rate:.1f}",
             _pct(fetch_rate, raw_down), _pct(fetch_rate, raw_file), cpu.text("fetch"),
             _mib(fetch)],
            ["dvc pull (empty cache)", f"{pull.seconds:.2f}", f"{pull_rate:.1f}",
             _pct(pull_rate, raw_down), _pct(pull_rate, raw_file), cpu.text("pull"), _mib(pull)],
            ["raw SDK files/download into a file, again", f"{down_file_after_s:.2f}",
             f"{mib_s(size, down_file_after_s):.1f}", after_pct, "", cpu.text("file after"), ""],
        ],
    )  # fmt: skip
    print("emulator calls during push: " + _calls(push_calls))
    print("emulator calls during pull: " + _calls(pull_calls))
    print()
    targets = [
        Target(
            "push throughput vs raw upload",
            _pct(push_rate, raw_up),
            f">= {THROUGHPUT_RATIO:.0%}",
            push_rate >= THROUGHPUT_RATIO * raw_up,
        ),
        Target(
            "pull throughput vs raw download into a file (mean of 2)",
            _pct(pull_rate, raw_file),
            f">= {THROUGHPUT_RATIO:.0%}",
            pull_rate >= THROUGHPUT_RATIO * raw_file,
        ),
        Target(
            "dvc push peak RSS" + ("" if default_chunk else " (non-default chunk)"),
            _mib(push),
            f"<= {RSS_LIMIT // MiB} MiB",
            push.peak_rss <= RSS_LIMIT,
        ),
        Target("dvc pull peak RSS", _mib(pull), f"<= {RSS_LIMIT // MiB} MiB",
               pull.peak_rss <= RSS_LIMIT),
    ]  # fmt: skip
    met = print_targets(targets)
    return 1 if args.strict and not met else 0


def _profile(args: argparse.Namespace, step: str) -> Optional[Path]:
    if args.profile is None:
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    return args.profile / f"{step}.txt"


def _pct(value: float, reference: float) -> str:
    return f"{value / reference:.0%}" if reference > 0 else "n/a"


def _mib(run: Run) -> str:
    return f"{run.peak_rss / MiB:.0f} MiB"


def _calls(delta: dict[str, int]) -> str:
    return ", ".join(f"{route} {n}" for route, n in sorted(delta.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
