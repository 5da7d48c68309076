"""`dvc push` of many small files: batches that fill, `-j` as the limit of requests in flight.

Issue 12 item 1 and issue 11 item 5: the number of files waiting for a commit is independent of
the uploads in flight, so with `-j 4` one `finish_batch_v2` holds far more than 4 entries, while
the emulator never serves more than 4 uploads (+ the committer's one call) at once; a commit
failure fails only that file; `batch_size 1` still commits each file alone; and while files wait
for a commit, DVC's progress bar says so. Each test uses its own emulator (fresh counters).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess, sdk_client
from tests.helpers.screen import PtyScreen
from tests.integration.plugin.cli import DVC, dvc, make_repo, md5_object, remote_objects

FINISH_BATCH = "files/upload_session/finish_batch_v2"
FINISH = "files/upload_session/finish"
START = "files/upload_session/start"
JOBS = 4


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    # Some latency, so uploads overlap and the high-water mark of calls in flight means something.
    with EmulatorProcess("--latency-ms", "20", echo_stderr=False) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_bundle)  # for the in-process SDK
        yield emulator


def delta(after: dict[str, Any], before: dict[str, Any], route: str) -> int:
    return int(after["requests"].get(route, 0) - before["requests"].get(route, 0))


def repo_with_files(tmp_path: Path, emu: EmulatorProcess, count: int) -> tuple[Path, dict, str]:
    env = emu.isolated_env(tmp_path / "home", emu.token())
    repo = make_repo(tmp_path / "repo", env)
    data = repo / "data"
    data.mkdir()
    contents = {}
    for i in range(count):
        content = os.urandom(64) + str(i).encode()
        (data / f"f{i:04}").write_bytes(content)
        contents[f"f{i:04}"] = content
    dvc(repo, env, "add", "-q", "data")
    folder = f"fill-{uuid.uuid4().hex[:8]}"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://{folder}")
    return repo, {"env": env, "contents": contents}, folder


def expected_objects(contents: dict[str, bytes]) -> set[str]:
    return {md5_object(c) for c in contents.values()}


def test_one_batch_holds_many_more_files_than_jobs_and_requests_stay_within_jobs(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    count = 300
    repo, ctx, folder = repo_with_files(tmp_path, emu, count)
    env = ctx["env"]
    # The per-file path's batches (large files, `pack false`); packs: test_packs.py.
    dvc(repo, env, "remote", "modify", "r", "pack", "false")
    before = emu.stats()
    emu.control("DELETE", "concurrency")  # a new high-water mark for the push alone
    proc = dvc(repo, env, "push", "-j", str(JOBS))
    concurrency = emu.control("GET", "concurrency")
    after = emu.stats()
    output = proc.stdout + proc.stderr
    assert f"{count + 1} files pushed" in output, output
    assert delta(after, before, START) == count + 1  # every file's bytes went up once
    batches = delta(after, before, FINISH_BATCH)
    # 300 entries in at most 3 calls (the .dir listing is its own): a batch held >= 100 of them,
    # where a thread waiting for its own commit would cap a batch at JOBS = 4 (>= 75 calls).
    assert 1 <= batches <= 3, (batches, after["requests"])
    assert after["commits"] - before["commits"] == batches
    assert delta(after, before, FINISH) == 0
    # At most JOBS uploads and the committer's one call at once; and uploads did overlap.
    assert 2 <= concurrency["most_in_flight"] <= JOBS + 1, concurrency
    objects = remote_objects(sdk_client(emu), f"/{folder}")
    assert expected_objects(ctx["contents"]) <= objects


def test_a_failed_commit_fails_only_that_file_and_a_second_push_completes(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    count = 60
    repo, ctx, folder = repo_with_files(tmp_path, emu, count)
    env = ctx["env"]
    # One entry of the batch is refused for good (not a retriable contention).
    emu.control(
        "POST",
        "faults",
        {"route": FINISH_BATCH, "entry_failure": "too_many_shared_folder_targets", "times": 1},
    )
    proc = dvc(repo, env, "push", "-j", str(JOBS), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output
    # One file failed (DVC then also counts the folder's .dir listing, not sent without it).
    assert output.count("ERROR: failed to transfer") == 1, output
    assert "too_many_shared_folder_targets" in output
    assert "2 files failed to upload" in output, output
    objects = remote_objects(sdk_client(emu), f"/{folder}")
    # Everything but that one file is stored; the .dir listing waits for a complete upload.
    assert len(expected_objects(ctx["contents"]) & objects) == count - 1, len(objects)
    again = dvc(repo, env, "push", "-j", str(JOBS))
    assert "2 files pushed" in again.stdout + again.stderr  # the failed file and the listing
    objects = remote_objects(sdk_client(emu), f"/{folder}")
    assert expected_objects(ctx["contents"]) <= objects
    assert len(objects) == count + 1
    assert "Everything is up to date" in dvc(repo, env, "push").stdout


def test_batch_size_1_commits_each_file_alone(tmp_path: Path, emu: EmulatorProcess) -> None:
    count = 20
    repo, ctx, folder = repo_with_files(tmp_path, emu, count)
    env = ctx["env"]
    dvc(repo, env, "remote", "modify", "r", "batch_size", "1")
    before = emu.stats()
    emu.control("DELETE", "concurrency")
    proc = dvc(repo, env, "push", "-j", str(JOBS))
    concurrency = emu.control("GET", "concurrency")
    after = emu.stats()
    assert f"{count + 1} files pushed" in proc.stdout + proc.stderr
    assert delta(after, before, FINISH) == count + 1
    assert delta(after, before, FINISH_BATCH) == 0
    assert after["commits"] - before["commits"] == count + 1
    # Each thread commits its own file: no committer, so JOBS calls at most.
    assert concurrency["most_in_flight"] <= JOBS, concurrency
    assert expected_objects(ctx["contents"]) <= remote_objects(sdk_client(emu), f"/{folder}")


def test_the_progress_bar_says_files_wait_for_their_commit(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    count = 40
    repo, ctx, _ = repo_with_files(tmp_path, emu, count)
    env = ctx["env"]
    sub = repo / "sub"
    sub.mkdir()
    # A slow commit: the uploads are done long before it, so the files wait visibly.
    emu.control("POST", "config", {"commit_ms": 4000})
    screen = PtyScreen([DVC, "push", "-j", str(JOBS)], sub, env, timeout=120)
    try:
        screen.wait_for_output(r"files waiting for Dropbox to commit", timeout=90)
        screen.pump(1.5)  # the status is redrawn every 0.5 s; the commit takes 4 s
        during = screen.display()
        status = screen.finish()
        final = screen.display()
    finally:
        screen.close()
    assert status == 0, screen.transcript
    bar = [line for line in during if "waiting for Dropbox to commit" in line]
    assert bar, during
    assert any(
        f"Pushing to dropbox: {count} files waiting for Dropbox to commit" in line for line in bar
    ), bar
    assert any(f"{count + 1} files pushed" in line for line in final), final
    assert not any("waiting for Dropbox to commit" in line for line in final), final


def test_a_pull_without_j_downloads_with_the_remotes_jobs(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    """dvc-data sizes a pull by the local cache (4 x CPUs) when no -j is given: the remote's
    `jobs` decides instead, both ways (here lower than the cache's default, so it is visible)."""
    from dvc_objects.fs.base import FileSystem

    remote_jobs = 2
    assert remote_jobs + 1 < FileSystem._JOBS  # the cache's default would show above the bound
    count = 40
    repo, ctx, _ = repo_with_files(tmp_path, emu, count)
    env = ctx["env"]
    dvc(repo, env, "remote", "modify", "r", "jobs", str(remote_jobs))
    dvc(repo, env, "push", "-q")
    for path in (repo / ".dvc" / "cache", repo / "data"):
        shutil.rmtree(path)
    emu.control("DELETE", "concurrency")
    dvc(repo, env, "pull", "-q")
    concurrency = emu.control("GET", "concurrency")
    assert 1 <= concurrency["most_in_flight"] <= remote_jobs, concurrency
    for name, content in ctx["contents"].items():
        assert (repo / "data" / name).read_bytes() == content
