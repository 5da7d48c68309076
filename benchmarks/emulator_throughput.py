"""The emulator's own ceiling: MiB/s up and down over loopback HTTPS with the official SDK, and
the emulator's CPU per small request (issue 12, item 3).

    .venv/bin/python benchmarks/emulator_throughput.py [--size MIB] [--files N] [--quick]

Starts its own emulator (no knobs: latency 0, commit 0) in a temporary directory, prints a header
(machine, date, settings), a table and the targets with PASS/MISS. Client and server share the
machine, so wall-clock rates are a lower bound of what the emulator alone could do; the CPU
columns are the emulator process's own user+system CPU (all threads, from /proc/<pid>/stat)
divided by the work, which does not depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Emulator, MiB, Target, point_sdk_at, print_header, print_table, print_targets

# Issue 12, item 3.
START_TARGET_MS = 1.0  # per small upload_session/start (16 KiB, close=True)
FINISH_ENTRY_TARGET_MS = 0.3  # per finish_batch_v2 entry
MAX_BATCH = 1000  # entries per finish_batch_v2 (Dropbox's limit)


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the emulator used so far; Linux only, else NaN."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Runs measured steps; each adds a table row (wall-clock rate, emulator CPU per unit)."""

    def __init__(self, emu: Emulator, profile_dir: Optional[Path] = None):
        self.emu = emu
        self.profile_dir = profile_dir
        self.rows: list[list[str]] = []
        self.cpu_ms: dict[str, float] = {}  # CPU ms per unit, by step key

    def run(
        self,
        key: str,
        name: str,
        amount: float,
        unit: str,
        action: Callable[[], Any],
        *,
        route: Optional[str] = None,
    ) -> Any:
        """Time `action`, which does `amount` units of work. With `route`, the requests the
        emulator counted for it (retries included) are shown too."""
        before = self.emu.stats()["requests"].get(route, 0) if route else 0
        spy = self._profile(key)
        cpu = server_cpu_s(self.emu.pid)
        started = time.perf_counter()
        result = action()
        wall = time.perf_counter() - started
        cpu = server_cpu_s(self.emu.pid) - cpu
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
        requests = self.emu.stats()["requests"].get(route, 0) - before if route else 0
        per_unit_ms = cpu * 1000 / amount
        self.cpu_ms[key] = per_unit_ms
        self.rows.append(
            [
                name,
                f"{amount:g} {unit}",
                str(requests) if route else "",
                f"{amount / wall:.1f} {unit}/s",
                f"{cpu:.2f} s",
                f"{per_unit_ms:.3f} ms/{unit}",
            ]
        )
        return result

    def _profile(self, key: str) -> Optional[subprocess.Popen[bytes]]:
        """`py-spy record` attached to the emulator for one step (collapsed stacks in
        DIR/KEY.txt). Only samples of the thread holding the GIL: py-spy's idle detection
        counts threads blocked in a socket read as busy on this kind of VM, which buried the
        real work. Native work that releases the GIL (TLS, SQLite, the kernel) is therefore
        missing from these profiles; `perf record -g -p PID` shows that part."""
        if self.profile_dir is None:
            return None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(self.emu.pid),
                "--format",
                "raw",
                "--rate",
                "500",
                "--gil",
                "--threads",
                "-o",
                str(self.profile_dir / f"{key}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attached before the step starts
        return spy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="large file MiB (1024; 0 = skip)")
    parser.add_argument("--chunk", type=int, default=64, help="upload session chunk, MiB (64)")
    parser.add_argument("--files", type=int, default=2000, help="number of small files (2000)")
    parser.add_argument("--file-bytes", type=int, default=16384, help="small file size (16384)")
    parser.add_argument("--threads", type=int, default=8, help="threads for small requests (8)")
    parser.add_argument("--page", type=int, default=500, help="list_folder limit per page (500)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy record the emulator per step into DIR/<step>.txt (install py-spy yourself)",
    )
    parser.add_argument(
        "--cap",
        type=float,
        metavar="MIB",
        help="run the emulator with --stream-mib-per-s and --total-mib-per-s MIB (a cap set "
        "high measures the pacing's own cost)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.size, args.chunk, args.files, args.page = 4, 4, 60, 20
    if not 1 <= args.chunk <= 150 or args.size < 0 or args.files < 1 or args.page < 1:
        parser.error("need --size >= 0, 1 <= --chunk <= 150, --files >= 1, --page >= 1")

    caps = () if args.cap is None else ("--stream-mib-per-s", str(args.cap))
    caps += () if args.cap is None else ("--total-mib-per-s", str(args.cap))
    emu = Emulator(*caps, echo_stderr=True).start()
    try:
        point_sdk_at(emu)
        import dropbox
        from dropbox import files

        token = emu.token()["access_token"]

        def client() -> Any:
            return dropbox.Dropbox(
                oauth2_access_token=token,
                max_retries_on_rate_limit=5,
                max_retries_on_error=0,
                session=dropbox.create_session(max_connections=args.threads),
            )

        dbx = client()
        dbx.check_user()  # connect once before timing
        print_header(
            "dropbox-emulator throughput and CPU per request (loopback HTTPS, official SDK)",
            emu,
            {
                "large": f"{args.size} MiB in {args.chunk} MiB appends",
                "small": f"{args.files} x {args.file_bytes} B",
                "threads": args.threads,
                "caps": "none" if args.cap is None else f"{args.cap:g} MiB/s per stream and total",
                "list page": args.page,
                "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            },
        )
        meter = Meter(emu, args.profile)

        if args.size:
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

            meter.run("append", "upload session appends", size / MiB, "MiB", append_all)
            meta = meter.run(
                "finish_large",
                "upload session finish",
                size / MiB,
                "MiB",
                lambda: dbx.files_upload_session_finish(
                    b"",
                    files.UploadSessionCursor(session_id, size),
                    files.CommitInfo("/bench/large.bin", mode=files.WriteMode.overwrite),
                ),
            )
            assert meta.size == size

            def download_large() -> int:
                _, resp = dbx.files_download("/bench/large.bin")
                received = 0
                with resp:
                    for block in resp.iter_content(4 * MiB):
                        received += len(block)
                return received

            assert meter.run("download_large", "download", size / MiB, "MiB", download_large)
            dbx.files_delete_v2("/bench/large.bin")

        n = args.files
        clients = [client() for _ in range(args.threads)]
        for each in clients:
            each.check_user()  # connections made before timing

        def parallel(action: Callable[[Any, int], Any]) -> list[Any]:
            with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
                return list(pool.map(lambda i: action(clients[i % len(clients)], i), range(n)))

        # What dvc-dropbox sends per small file: upload_session/start with the data, closed,
        # then one finish_batch_v2 entry per file (up to 1,000 per call).
        contents = [os.urandom(args.file_bytes) for _ in range(min(n, 64))]
        session_ids = meter.run(
            "start",
            f"upload_session/start ({args.file_bytes} B, close), {args.threads} threads",
            n,
            "req",
            lambda: parallel(
                lambda c, i: (
                    c.files_upload_session_start(contents[i % len(contents)], close=True).session_id
                )
            ),
            route="files/upload_session/start",
        )
        entries = [
            files.UploadSessionFinishArg(
                files.UploadSessionCursor(sid, args.file_bytes),
                files.CommitInfo(f"/bench/small/{i:06d}.bin", mode=files.WriteMode.overwrite),
            )
            for i, sid in enumerate(session_ids)
        ]

        def finish_all() -> None:
            for first in range(0, n, MAX_BATCH):
                result = dbx.files_upload_session_finish_batch_v2(
                    entries[first : first + MAX_BATCH]
                )
                assert all(e.is_success() for e in result.entries), result

        meter.run(
            "finish_entry",
            f"finish_batch_v2, {min(n, MAX_BATCH)} entries per call",
            n,
            "entry",
            finish_all,
            route="files/upload_session/finish_batch_v2",
        )
        meter.run(
            "upload",
            f"files/upload ({args.file_bytes} B), {args.threads} threads",
            n,
            "req",
            lambda: parallel(
                lambda c, i: c.files_upload(
                    contents[i % len(contents)],
                    f"/bench/single/{i:06d}.bin",
                    mode=files.WriteMode.overwrite,
                )
            ),
            route="files/upload",
        )
        meter.run(
            "get_metadata",
            f"files/get_metadata, {args.threads} threads",
            n,
            "req",
            lambda: parallel(lambda c, i: c.files_get_metadata(f"/bench/small/{i:06d}.bin")),
            route="files/get_metadata",
        )
        meter.run(
            "download",
            f"files/download ({args.file_bytes} B), {args.threads} threads",
            n,
            "req",
            lambda: parallel(lambda c, i: c.files_download(f"/bench/small/{i:06d}.bin")[1].content),
            route="files/download",
        )

        first_page = dbx.files_list_folder("/bench/small", limit=args.page)

        def list_rest() -> int:
            page, entries_seen = first_page, len(first_page.entries)
            while page.has_more:
                page = dbx.files_list_folder_continue(page.cursor)
                entries_seen += len(page.entries)
            assert entries_seen == n, entries_seen
            return entries_seen

        pages = max(1, -(-n // args.page) - 1)
        meter.run(
            "continue",
            f"list_folder/continue, {args.page} entries per page",
            pages,
            "page",
            list_rest,
            route="files/list_folder/continue",
        )
        meter.run(
            "check_user",
            "check/user, 1 thread",
            n,
            "req",
            lambda: [dbx.check_user() for _ in range(n)],
        )
        stats = emu.stats()
    finally:
        emu.stop()

    print(f"server: {stats['bytes_in'] / MiB:.0f} MiB in, {stats['bytes_out'] / MiB:.0f} MiB out, "
          f"{stats['commits']} commits, rate limited {stats.get('rate_limited', 0)}")  # fmt: skip
    print()
    print_table(
        ["measure", "work", "requests", "wall-clock rate", "emulator CPU", "emulator CPU per unit"],
        meter.rows,
    )
    print("wall-clock rate: what the SDK clients saw end to end; emulator CPU: the emulator")
    print("process's user+system CPU seconds (all threads) during the step; per unit: divided by")
    print("the work (requests, entries, pages, MiB).")
    print()
    start_ms, entry_ms = meter.cpu_ms["start"], meter.cpu_ms["finish_entry"]
    met = print_targets(
        [
            Target(
                f"emulator CPU per upload_session/start ({args.file_bytes} B, close=True)",
                f"{start_ms:.3f} ms",
                f"<= {START_TARGET_MS} ms",
                start_ms <= START_TARGET_MS,
            ),
            Target(
                "emulator CPU per finish_batch_v2 entry",
                f"{entry_ms:.3f} ms",
                f"<= {FINISH_ENTRY_TARGET_MS} ms",
                entry_ms <= FINISH_ENTRY_TARGET_MS,
            ),
        ]
    )
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
