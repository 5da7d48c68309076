"""The emulator's own ceiling: MiB/s up and down over loopback HTTPS with the official SDK, and
small-file requests/s. Later benchmarks compare against these numbers.

    .venv/bin/python benchmarks/emulator_throughput.py [--size MIB] [--chunk MIB] [--small N]

Starts its own emulator (no knobs: latency 0, commit 0) in a temporary directory, prints a header
(machine, date, settings) and a table. Client and server share the machine, so the numbers are a
lower bound of what the emulator alone could do.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import platform
import sys
import time
from typing import Any, Callable

from dropbox_emulator.testing import EmulatorServer

MiB = 1024 * 1024


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the emulator used so far; Linux only, else NaN.

    Unlike wall time this does not depend on what else the machine runs, so the ceiling it
    implies (work / CPU seconds) stays comparable between runs.
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    def __init__(self, pid: int):
        self.pid = pid
        self.rows: list[tuple[str, str, str]] = []

    def run(self, name: str, amount: float, unit: str, action: Callable[[], Any]) -> Any:
        """Time `action`, which does `amount` units of work, and add a table row."""
        cpu = server_cpu_s(self.pid)
        started = time.perf_counter()
        result = action()
        wall = time.perf_counter() - started
        cpu = server_cpu_s(self.pid) - cpu
        ceiling = f"{amount / cpu:10.1f} {unit}" if cpu > 0 else "n/a"
        self.rows.append((name, f"{amount / wall:10.1f} {unit}", ceiling))
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="large file size in MiB (1024)")
    parser.add_argument("--chunk", type=int, default=64, help="upload session chunk, MiB (64)")
    parser.add_argument("--small", type=int, default=300, help="number of small files (300)")
    parser.add_argument("--small-bytes", type=int, default=1024, help="small file size (1024)")
    parser.add_argument("--threads", type=int, default=8, help="threads for parallel small ops")
    args = parser.parse_args()
    if not 1 <= args.chunk <= 150 or args.size < 1 or args.small < 1:
        parser.error("need --size >= 1, 1 <= --chunk <= 150, --small >= 1")

    emu = EmulatorServer().start()
    try:
        # The SDK reads its host variables at import: set them first.
        os.environ.update(emu.env)
        import dropbox
        from dropbox import files

        token = emu.token()["access_token"]

        def client() -> Any:
            return dropbox.Dropbox(
                oauth2_access_token=token, max_retries_on_rate_limit=5, max_retries_on_error=0
            )

        dbx = client()
        dbx.check_user()  # connect once before timing
        meter = Meter(emu.pid)

        size = args.size * MiB
        chunk = os.urandom(args.chunk * MiB)
        session_id = dbx.files_upload_session_start(b"").session_id

        def append_all() -> int:
            offset = 0
            while offset < size:
                piece = chunk if size - offset >= len(chunk) else chunk[: size - offset]
                cursor = files.UploadSessionCursor(session_id, offset)
                dbx.files_upload_session_append_v2(piece, cursor)
                offset += len(piece)
            return offset

        meter.run("upload session appends", size / MiB, "MiB/s", append_all)
        meta = meter.run(
            "upload session finish",
            size / MiB,
            "MiB/s",
            lambda: dbx.files_upload_session_finish(
                b"",
                files.UploadSessionCursor(session_id, size),
                files.CommitInfo("/bench/large.bin", mode=files.WriteMode.overwrite),
            ),
        )
        assert meta.size == size

        def download() -> int:
            _, resp = dbx.files_download("/bench/large.bin")
            received = 0
            with resp:
                for block in resp.iter_content(4 * MiB):
                    received += len(block)
            return received

        assert meter.run("download", size / MiB, "MiB/s", download) == size

        small = os.urandom(args.small_bytes)
        n = args.small
        meter.run(
            f"small upload ({args.small_bytes} B), 1 thread",
            n,
            "req/s",
            lambda: [dbx.files_upload(small, f"/bench/small/{i}.bin") for i in range(n)],
        )
        meter.run(
            "get_metadata, 1 thread",
            n,
            "req/s",
            lambda: [dbx.files_get_metadata(f"/bench/small/{i}.bin") for i in range(n)],
        )
        meter.run("check/user, 1 thread", n, "req/s", lambda: [dbx.check_user() for _ in range(n)])

        clients = [client() for _ in range(args.threads)]

        def parallel(action: Callable[[Any, int], Any]) -> None:
            with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(lambda i: action(clients[i % len(clients)], i), range(n)))

        meter.run(
            f"get_metadata, {args.threads} threads",
            n,
            "req/s",
            lambda: parallel(lambda c, i: c.files_get_metadata(f"/bench/small/{i}.bin")),
        )
        meter.run(
            f"small download, {args.threads} threads",
            n,
            "req/s",
            lambda: parallel(lambda c, i: c.files_download(f"/bench/small/{i}.bin")[1].content),
        )
        stats = emu.stats()
    finally:
        emu.stop()

    import dropbox as sdk

    print("# dropbox-emulator throughput (loopback HTTPS, official SDK, client on the same host)")
    print(f"date:     {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
    print(f"machine:  {platform.node()} | {platform.platform()} | {os.cpu_count()} CPUs")
    print(f"python:   {platform.python_version()} | dropbox SDK {sdk.__version__}")
    print(
        f"settings: size={args.size} MiB chunk={args.chunk} MiB small={n} x {args.small_bytes} B "
        f"threads={args.threads} latency=0 commit=0"
    )
    print(f"server:   {stats['bytes_in'] / MiB:.0f} MiB in, {stats['bytes_out'] / MiB:.0f} MiB out")
    print()
    rows = meter.rows
    width = max(len(name) for name, _, _ in rows)
    print(f"| {'measure'.ljust(width)} | {'wall-clock rate':>16} | {'server-CPU ceiling':>18} |")
    print(f"|{'-' * (width + 2)}|{'-' * 18}|{'-' * 20}|")
    for name, rate, ceiling in rows:
        print(f"| {name.ljust(width)} | {rate:>16} | {ceiling:>18} |")
    print()
    print("wall-clock rate: what the SDK client saw end to end; server-CPU ceiling: the work")
    print("divided by the emulator's own CPU seconds (what one fully available core would allow).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
