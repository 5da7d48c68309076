"""Summarise a py-spy `--format raw` profile (collapsed stacks): top frames by self and inclusive
share, and the share of each package in the leaf frames.

    .venv/bin/python benchmarks/profiles/flame_summary.py push.txt [--top 25] [--files 2000]
        [--cpu-s 7.5]

With `--cpu-s` (the measured CPU of the profiled process) and `--files`, shares are also printed
as CPU ms per file (share x CPU / files), which assumes the samples are spread like the CPU is.
Frames waiting on a lock, a socket or a condition are on no CPU: they are listed apart
(`--include-waits` counts them in the totals).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Optional

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")

# Leaves that mean "this thread waits", not "this thread computes" (py-spy's idle detection
# misses GIL and futex waits of threads it saw runnable).
WAIT_LEAVES = (
    "Condition.wait",
    "Event.wait",
    "Semaphore.acquire",
    "Thread.join",
    "_wait_for_tstate_lock",
    "select",
    "poll",
    "SSLSocket.recv_into",
    "SSLSocket.read",
    "socket.recv_into",
    "SocketIO.readinto",
    "time.sleep",
    "sleep",
    "Queue.get",
    "SimpleQueue.get",
    "_worker",
)

PACKAGES = (
    ("dvc_dropbox", "plugin (dvc_dropbox)"),
    ("dropbox/stone", "stone"),
    ("stone/", "stone"),
    ("dropbox/", "dropbox SDK"),
    ("requests/", "requests"),
    ("urllib3/", "urllib3"),
    ("ssl.py", "ssl / socket / http.client"),
    ("socket.py", "ssl / socket / http.client"),
    ("http/client.py", "ssl / socket / http.client"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("dvc_objects/", "dvc-objects"),
    ("dvc_data/", "dvc-data"),
    ("dvc/", "dvc"),
    ("fsspec/", "fsspec"),
    ("tqdm/", "tqdm"),
    ("threading.py", "threading"),
    ("concurrent/", "threading"),
)


def package(file: str) -> str:
    for needle, name in PACKAGES:
        if needle in file:
            return name
    return "other"


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = []
        for raw in body.split(";")[1:]:  # the first item names the thread
            match = _FRAME.match(raw.strip())
            if match:
                frames.append((match["func"], match["file"]))
            else:
                frames.append((raw.strip(), ""))
        stacks.append((frames, int(count)))
    return stacks


def is_wait(frames: list[tuple[str, str]]) -> bool:
    if not frames:
        return True
    func = frames[-1][0]
    return any(func == w or func.endswith("." + w) for w in WAIT_LEAVES)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--files", type=int, default=0)
    parser.add_argument("--cpu-s", type=float, default=0.0)
    parser.add_argument("--include-waits", action="store_true")
    parser.add_argument("--match", default="", help="only stacks with a frame containing this")
    args = parser.parse_args(argv)
    stacks = parse(args.profile)
    if args.match:
        stacks = [s for s in stacks if any(args.match in f"{fn} ({fl})" for fn, fl in s[0])]
    waits = Counter[str]()
    kept = []
    for frames, count in stacks:
        if not args.include_waits and is_wait(frames):
            waits[frames[-1][0] if frames else "?"] += count
            continue
        kept.append((frames, count))
    total = sum(c for _, c in kept)
    selfs = Counter[str]()
    incl = Counter[str]()
    pkgs = Counter[str]()
    pkg_incl = Counter[str]()
    for frames, count in kept:
        leaf = frames[-1] if frames else ("(no Python frame)", "")
        selfs[f"{leaf[0]} ({leaf[1]})"] += count
        pkgs[package(leaf[1])] += count
        for name in {f"{fn} ({fl})" for fn, fl in frames}:
            incl[name] += count
        for name in {package(fl) for _, fl in frames}:
            pkg_incl[name] += count

    def ms(count: int) -> str:
        if not (args.files and args.cpu_s and total):
            return ""
        return f" | {count / total * args.cpu_s / args.files * 1000:.3f}"

    unit = " | CPU ms/file" if args.files and args.cpu_s else ""
    print(f"{total} on-CPU samples ({sum(waits.values())} waiting samples left out)")
    print()
    print(f"| package (leaf frame) | self % | inclusive %{unit} (self) |")
    print("|---|---:|---:|" + ("---:|" if unit else ""))
    for name, count in pkgs.most_common():
        print(f"| {name} | {count / total:.1%} | {pkg_incl[name] / total:.1%}{ms(count)} |")
    print()
    print(f"| top frames by self | self %{unit} |")
    print("|---|---:|" + ("---:|" if unit else ""))
    for name, count in selfs.most_common(args.top):
        print(f"| {name} | {count / total:.1%}{ms(count)} |")
    print()
    print(f"| top frames by inclusive | inclusive %{unit} |")
    print("|---|---:|" + ("---:|" if unit else ""))
    for name, count in incl.most_common(args.top):
        print(f"| {name} | {count / total:.1%}{ms(count)} |")
    if waits and not args.include_waits:
        print()
        print("waiting leaves left out: " + ", ".join(f"{k} {v}" for k, v in waits.most_common(8)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
