"""Issue 5 target P3: `dvc status -c` and `dvc gc -c` against a remote with many objects.

    python3 dev.py bench remote_queries [--objects 20000] [--quick] [--latency-ms MS]

Against its own emulator:

1. a DVC project with N separately tracked tiny files (N `.dvc` files, objects in the cache; the
   files are written directly, as `dvc add` would, to keep the setup fast);
2. the same N objects seeded on the remote with the official SDK (upload sessions closed by
   their only request + `upload_session/finish_batch_v2` of 1000 entries);
3. `dvc status -c`: counts listing calls (`list_folder` + `list_folder/continue`) from the
   emulator's stats (target <= 20) and checks DVC found every object;
4. half of the `.dvc` files deleted, then `dvc gc -c -w -f`: counts `delete_batch` launches
   (target <= 20) and checks exactly the unused objects are gone from the remote.

`--quick` uses 300 objects (a smoke run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    DvcRepo,
    Emulator,
    Target,
    listing_calls,
    point_sdk_at,
    print_header,
    print_table,
    print_targets,
    sdk_client,
    stats_delta,
)

LISTING_LIMIT = 20
DELETE_BATCH_LIMIT = 20
QUICK_OBJECTS = 300
REMOTE_FOLDER = "bench/remote-queries"
COMMIT_BATCH = 1000  # finish_batch_v2's maximum
SEED_THREADS = 16


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def object_content(i: int) -> bytes:
    return f"tracked object {i}\n".encode()


def write_tracked_files(repo: Path, n: int) -> list[tuple[str, bytes, str]]:
    """`data/fNNNNNN.txt` + its `.dvc` file + its cache object, as `dvc add` leaves them.

    Returns (name, content, md5) per file.
    """
    data = repo / "data"
    data.mkdir()
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    tracked = []
    for i in range(n):
        name = f"f{i:06d}.txt"
        content = object_content(i)
        md5 = hashlib.md5(content).hexdigest()
        (data / name).write_bytes(content)
        (data / f"{name}.dvc").write_text(
            f"outs:\n- md5: {md5}\n  size: {len(content)}\n  hash: md5\n  path: {name}\n"
        )
        obj = cache / md5[:2] / md5[2:]
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(content)
        tracked.append((name, content, md5))
    # One pattern, not the line per file `dvc add` writes: DVC matches every path against every
    # .gitignore line (dulwich), which is quadratic in N and has nothing to do with the remote.
    (data / ".gitignore").write_text("/*.txt\n")
    return tracked


def remote_path(md5: str) -> str:
    return f"/{REMOTE_FOLDER}/files/md5/{md5[:2]}/{md5[2:]}"


def seed_remote(dbx: Any, objects: list[tuple[bytes, str]], threads: int) -> int:
    """Upload every (content, md5) as a remote object; returns the number of commit calls."""
    from dropbox import files

    def upload(item: tuple[bytes, str]) -> Any:
        content, md5 = item
        session = dbx.files_upload_session_start(content, close=True)
        cursor = files.UploadSessionCursor(session.session_id, len(content))
        commit = files.CommitInfo(remote_path(md5), mode=files.WriteMode.overwrite, mute=True)
        return files.UploadSessionFinishArg(cursor, commit)

    commits = 0
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        # All uploads queued at once: the pool keeps uploading while a batch commits.
        pending = [pool.submit(upload, item) for item in objects]
        for start in range(0, len(pending), COMMIT_BATCH):
            entries = [f.result() for f in pending[start : start + COMMIT_BATCH]]
            result = dbx.files_upload_session_finish_batch_v2(entries)
            commits += 1
            failed = [e for e in result.entries if not e.is_success()]
            if failed:
                raise RuntimeError(f"seeding failed for {len(failed)} objects: {failed[0]}")
    return commits


def count_remote_objects(dbx: Any) -> int:
    from dropbox import files

    result = dbx.files_list_folder(f"/{REMOTE_FOLDER}/files/md5", recursive=True, limit=2000)
    count = 0
    for _ in range(100_000):
        count += sum(isinstance(e, files.FileMetadata) for e in result.entries)
        if not result.has_more:
            return count
        result = dbx.files_list_folder_continue(result.cursor)
    raise RuntimeError("listing did not end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000, help="objects (20000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_OBJECTS}-object smoke run")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulator latency (0)")
    parser.add_argument("--jobs", type=int, help="remote `jobs` option (default: the plugin's)")
    parser.add_argument("--tmp-dir", type=Path, help="where the files go (default: system temp)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    n = QUICK_OBJECTS if args.quick else args.objects
    if n < 2:
        parser.error("--objects must be at least 2")

    with tempfile.TemporaryDirectory(prefix="bench-queries-", dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        knobs = ("--latency-ms", f"{args.latency_ms:g}")
        with Emulator(*knobs, data_dir=tmp / "emulator") as emu:
            point_sdk_at(emu)
            return run(emu, tmp, n, args)


def run(emu: Emulator, tmp: Path, n: int, args: argparse.Namespace) -> int:
    options = {"jobs": str(args.jobs)} if args.jobs else {}
    repo = DvcRepo(tmp / "repo", emu, f"dropbox://{REMOTE_FOLDER}", options).init()
    progress(f"writing {n} separately tracked files")
    tracked = write_tracked_files(repo.path, n)
    progress(f"seeding {n} objects on the remote through the SDK")
    dbx = sdk_client(emu, max_connections=SEED_THREADS)
    started = time.perf_counter()
    seed_commits = seed_remote(dbx, [(c, m) for _, c, m in tracked], SEED_THREADS)
    seed_s = time.perf_counter() - started

    progress("dvc status -c")
    before = emu.stats()
    status = repo.dvc("status", "-c")
    status_calls = stats_delta(before, emu.stats())
    in_sync = "in sync" in status.stdout

    removed = n // 2
    for name, _, _ in tracked[:removed]:
        (repo.path / "data" / f"{name}.dvc").unlink()
        (repo.path / "data" / name).unlink()
    progress(f"dvc gc -c -w -f (removes {removed} objects)")
    before = emu.stats()
    gc = repo.dvc("gc", "-c", "-w", "-f")
    gc_calls = stats_delta(before, emu.stats())
    left = count_remote_objects(dbx)

    print_header(
        "dvc-dropbox remote queries: dvc status -c / dvc gc -c on a large remote (issue 5, P3)",
        emu,
        {
            "objects": n,
            "separately tracked": n,
            "removed by gc": removed,
            "jobs": args.jobs or "default",
            "mode": "quick (smoke run)" if args.quick else "full",
        },
    )
    print(f"setup: {n} objects seeded in {seed_s:.1f} s ({seed_commits} finish_batch_v2 calls)")
    print()
    print_table(
        ["command", "seconds", "listing calls", "get_metadata", "delete_batch", "delete_v2",
         "peak RSS"],
        [
            ["dvc status -c", f"{status.seconds:.2f}", listing_calls(status_calls),
             status_calls.get("files/get_metadata", 0), status_calls.get("files/delete_batch", 0),
             status_calls.get("files/delete_v2", 0), f"{status.peak_rss / 2**20:.0f} MiB"],
            ["dvc gc -c -w -f", f"{gc.seconds:.2f}", listing_calls(gc_calls),
             gc_calls.get("files/get_metadata", 0), gc_calls.get("files/delete_batch", 0),
             gc_calls.get("files/delete_v2", 0), f"{gc.peak_rss / 2**20:.0f} MiB"],
        ],
    )  # fmt: skip
    print("emulator calls during status -c: " + _calls(status_calls))
    print("emulator calls during gc -c:     " + _calls(gc_calls))
    print(f"remote objects after gc: {left} (expected {n - removed})")
    print()
    status_lists = listing_calls(status_calls)
    launches = gc_calls.get("files/delete_batch", 0)
    targets = [
        Target("status -c: DVC sees every object", "yes" if in_sync else "NO", "in sync", in_sync),
        Target(
            f"status -c: listing calls ({n} objects)",
            str(status_lists),
            f"<= {LISTING_LIMIT}",
            status_lists <= LISTING_LIMIT,
        ),
        Target(
            f"gc -c: delete_batch launches ({removed} objects)",
            str(launches),
            f"<= {DELETE_BATCH_LIMIT}",
            launches <= DELETE_BATCH_LIMIT,
        ),
        Target(
            "gc -c: single-file deletes",
            str(gc_calls.get("files/delete_v2", 0)),
            "0",
            gc_calls.get("files/delete_v2", 0) == 0,
        ),
        Target("gc -c: remote objects left", str(left), str(n - removed), left == n - removed),
    ]
    met = print_targets(targets)
    if not in_sync:
        print("dvc status -c said:\n" + status.stdout[-2000:])
    return 1 if args.strict and not met else 0


def _calls(delta: dict[str, int]) -> str:
    return ", ".join(f"{route} {n}" for route, n in sorted(delta.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
