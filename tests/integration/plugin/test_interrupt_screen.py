"""Ctrl-C ends every wait at once (issue 16 item 7, design.md decision 20), as a person sees it.

The real `dvc` on a 120x40 pseudo-terminal (rendered by pyte), run from a subfolder of the
repository; Ctrl-C is typed on the terminal (the line discipline sends SIGINT to the command):

- in the middle of a large file's upload session (4 MiB chunks, 300 ms per request);
- while a push, or a pull, waits out a 300 s `retry_after`.

Each time the command ends within 2 s of the key with one line saying the transfer stopped and a
re-run continues; no partial object is on the remote (nor a partial file in the workspace), and
the re-run does transfer everything.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import PtyScreen
from tests.integration.plugin.cli import DVC, dvc, make_repo, md5_object, remote_files

MiB = 1024 * 1024
BIG = 24 * MiB + 11  # seven 4 MiB chunks: an upload session of several requests
# The promise is 2 s from the key to the end of the command; the bound adds 2 s for a loaded
# machine (Python's own shutdown, DVC's lock release) so it measures the waits, not the host.
PROMISE_S = 2.0
BOUND_S = PROMISE_S + 2.0
STOPPED = "Interrupted: stopped the upload"
RERUN = "running the command again uploads the rest"


def _project(tmp_path: Path, emulator: EmulatorProcess, files: dict[str, bytes]) -> Any:
    env = emulator.isolated_env(tmp_path / "home", emulator.token())
    repo = make_repo(tmp_path / "repo", env)
    folder = f"/interrupt-{os.urandom(4).hex()}"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox:/{folder}")
    dvc(repo, env, "remote", "modify", "r", "chunk_size", "4")
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    dvc(repo, env, "add", "-q", *sorted({name.split("/")[0] for name in files}))
    (repo / "notebooks").mkdir()
    return repo, env, folder


def _interrupt(term: PtyScreen) -> tuple[int, float]:
    """Type Ctrl-C; (exit status, seconds from the key to the end of the command)."""
    pressed = time.monotonic()
    term.control("c")
    term.pump(BOUND_S + 10)  # reads until the command ends (or gives up well past the bound)
    ended = time.monotonic() - pressed
    assert term.eof, "the command is still running after Ctrl-C:\n" + "\n".join(term.lines())
    return term.finish(), ended


def _assert_one_stop_line(term: PtyScreen, stopped: str = STOPPED, rerun: str = RERUN) -> None:
    printed = [line for line in term.printed_lines() if line.strip()]
    screen = "\n".join(printed)
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen, screen
    errors = [line for line in printed if line.startswith("ERROR")]
    assert len(errors) == 1, screen
    assert stopped in errors[0] and rerun in errors[0], screen


def _assert_no_partial_object_and_rerun_pushes_all(
    repo: Path, env: dict[str, str], folder: str, files: dict[str, bytes], sdk: Any
) -> None:
    wanted = {md5_object(data): data for data in files.values()}
    for name, metadata in remote_files(sdk, folder).items():
        if name in wanted:
            assert metadata.size == len(wanted[name]), name  # whole, or not there at all
    assert md5_object(files["big/big.bin"]) not in remote_files(sdk, folder)
    dvc(repo, env, "push", "-q")  # the re-run the message promises
    assert set(wanted) <= set(remote_files(sdk, folder))


def test_ctrl_c_in_a_large_upload_stops_within_two_seconds(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_sdk: Any
) -> None:
    files = {"big/big.bin": os.urandom(BIG), "data/a.txt": b"a" * 100, "data/b.txt": b"b" * 200}
    repo, env, folder = _project(tmp_path, emulator, files)
    before = emulator.config()["latency_ms"]
    emulator.config(latency_ms=300)
    try:
        start = emulator.stats()["bytes_in"]
        term = PtyScreen([DVC, "push"], repo / "notebooks", env, timeout=120)
        try:
            # Two chunks of the big file are in: its session is under way.
            term.wait_for(lambda: emulator.stats()["bytes_in"] - start >= 8 * MiB, "8 MiB sent")
            status, seconds = _interrupt(term)
        finally:
            term.close()
    finally:
        emulator.config(latency_ms=before)
    assert status != 0
    assert seconds < BOUND_S, f"{seconds:.1f} s after Ctrl-C"
    _assert_one_stop_line(term)
    _assert_no_partial_object_and_rerun_pushes_all(repo, env, folder, files, dropbox_sdk)


def test_ctrl_c_during_a_300_s_retry_after_stops_within_two_seconds(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_sdk: Any
) -> None:
    files = {"big/big.bin": os.urandom(5 * MiB), "data/a.txt": b"a" * 100}
    repo, env, folder = _project(tmp_path, emulator, files)
    emulator.fault(
        route="files/upload_session/*",
        status=429,
        reason="too_many_write_operations",
        retry_after=300,
        times=1,
    )
    try:
        term = PtyScreen([DVC, "push"], repo / "notebooks", env, timeout=120)
        try:
            term.wait_for_output(r"waiting 3\d\d s before retrying", timeout=60)
            term.pump(0.5)
            status, seconds = _interrupt(term)
        finally:
            term.close()
    finally:
        emulator.clear_faults()
    assert status != 0
    assert seconds < BOUND_S, f"{seconds:.1f} s after Ctrl-C"
    _assert_one_stop_line(term)
    _assert_no_partial_object_and_rerun_pushes_all(repo, env, folder, files, dropbox_sdk)


def test_ctrl_c_during_a_300_s_retry_after_in_a_pull_stops_within_two_seconds(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    files = {f"data/f{i:02}.txt": os.urandom(300 + i) for i in range(40)}
    repo, env, _folder = _project(tmp_path, emulator, files)
    dvc(repo, env, "push", "-q")
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    dvc(repo, env, "remote", "modify", "r", "jobs", "2")  # 40 files at 300 ms: it lasts
    requests = emulator.stats()["requests"].get("files/download", 0)
    before = emulator.config()["latency_ms"]
    emulator.config(latency_ms=300)
    term = PtyScreen([DVC, "pull"], repo / "notebooks", env, timeout=120)
    try:
        # DVC reads the `.dir` listing first, alone (three times): the files' downloads come
        # after, and meet the 429.
        term.wait_for(
            lambda: emulator.stats()["requests"].get("files/download", 0) > requests + 4,
            "the files' downloads under way",
        )
        emulator.fault(
            route="files/download",
            status=429,
            reason="too_many_requests",
            retry_after=300,
            times=1,
        )
        term.wait_for_output(r"waiting 3\d\d s before retrying", timeout=60)
        term.pump(0.5)
        status, seconds = _interrupt(term)
    finally:
        term.close()
        emulator.clear_faults()
        emulator.config(latency_ms=before)
    assert status != 0
    assert seconds < BOUND_S, f"{seconds:.1f} s after Ctrl-C"
    stopped = "Interrupted: stopped the download"
    _assert_one_stop_line(term, stopped, "running the command again downloads the rest")
    pulled = sorted(p.name for p in (repo / "data").glob("*")) if (repo / "data").exists() else []
    for name in pulled:  # whole files only
        assert (repo / "data" / name).read_bytes() == files[f"data/{name}"]
    dvc(repo, env, "pull", "-q")
    assert all((repo / name).read_bytes() == data for name, data in files.items())
