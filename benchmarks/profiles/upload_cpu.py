"""The plugin's own CPU per small upload, without DVC: `Transfers.upload_fileobj` from N threads.

    .venv/bin/python benchmarks/profiles/upload_cpu.py          # 2000 x 16 KiB, 64 threads
    .venv/bin/python benchmarks/profiles/upload_cpu.py --threads 1 --cprofile 30

Starts an emulator (`--latency-ms 0 --commit-ms 0` by default: only CPU matters here), builds the
plugin's connection the way `DropboxFS` does, and uploads N in-memory files through the transfer
layer (one `upload_session/start` each, batch commits). Prints this process's CPU
(`time.process_time`, all threads) per file, which holds the plugin, the SDK, stone, requests,
urllib3 and ssl but not DVC and not the emulator (its own process). `--cprofile K` profiles one
thread's uploads (use `--threads 1`) and prints the top K functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from dropbox_emulator.testing import EmulatorServer


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--commit-ms", type=int, default=0)
    parser.add_argument("--cprofile", type=int, default=0, help="print the top K by own time")
    parser.add_argument(
        "--yappi", type=int, default=0, help="yappi (CPU clock, all threads): print the top K"
    )
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    emu_args = ["--latency-ms", str(args.latency_ms), "--commit-ms", str(args.commit_ms)]
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(
        *emu_args, data_dir=Path(tmp) / "emu"
    ) as emu:
        os.environ.update(emu.isolated_env(Path(tmp) / "home", emu.token()))
        os.chdir(tmp)  # no repository: credentials come from the environment
        from dvc_dropbox.connection import Settings, connection_for

        conn = connection_for(Settings(jobs=max(args.threads, 1)), "dropbox://bench")
        conn.check()
        payloads = [os.urandom(args.size) for _ in range(args.files)]
        for round_ in range(args.repeat):
            folder = f"/bench/{uuid.uuid4().hex[:8]}"

            def upload(i: int, folder: str = folder) -> None:
                data = payloads[i]
                conn.transfers.upload_fileobj(io.BytesIO(data), f"{folder}/{i:06d}", len(data))

            profiler = cProfile.Profile() if args.cprofile else None
            if args.yappi:
                import yappi  # not a project dependency: pip install it into .venv yourself

                yappi.set_clock_type("cpu")
                yappi.clear_stats()
                yappi.start()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            if args.threads <= 1:
                for i in range(args.files):
                    upload(i)
            else:
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(upload, range(args.files)))
            if profiler is not None:
                profiler.disable()
            if args.yappi:
                yappi.stop()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            committer = conn.transfers.committer
            print(
                f"round {round_ + 1}: {args.files} x {args.size} B, {args.threads} threads: "
                f"{wall:.2f} s wall, {cpu:.2f} s CPU = {cpu / args.files * 1000:.3f} ms/file "
                f"(load {os.getloadavg()[0]:.2f}, batches so far "
                f"{committer.batches_sent if committer else 0})",
                flush=True,
            )
            if profiler is not None:
                stats = pstats.Stats(profiler, stream=sys.stdout)
                stats.sort_stats("tottime").print_stats(args.cprofile)
                stats.sort_stats("cumulative").print_stats(args.cprofile)
            if args.yappi:
                _print_yappi(args.yappi, args.files)
        conn.transfers.close()
        # What the interpreter's exit does with the pooled connections (urllib3's finalizers).
        cpu0, wall0 = time.process_time(), time.perf_counter()
        conn.client._session.close()
        print(
            f"closing the session: {time.perf_counter() - wall0:.3f} s wall, "
            f"{time.process_time() - cpu0:.3f} s CPU"
        )
    return 0


def _print_yappi(top: int, files: int) -> None:
    import yappi

    stats = yappi.get_func_stats()
    for key, title in (("ttot", "inclusive"), ("tsub", "own")):
        print(f"\ntop {top} by {title} CPU (ms per file; calls per file)")
        for entry in list(stats.sort(key, "desc"))[:top]:
            where = f"{entry.module.split('site-packages/')[-1]}:{entry.lineno}"
            print(
                f"  {getattr(entry, key) / files * 1000:7.3f}  {entry.ncall / files:7.2f}  "
                f"{entry.name}  ({where})"
            )


if __name__ == "__main__":
    sys.exit(main())
