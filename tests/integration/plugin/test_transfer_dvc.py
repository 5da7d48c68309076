"""The transfer layer seen through the real `dvc` CLI: batch commits, visible waits, integrity."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.cli import dvc, make_repo


@pytest.fixture
def clean_faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.control("DELETE", "faults")
    yield emulator
    emulator.control("DELETE", "faults")


def count(stats: dict, route: str) -> int:
    return stats["requests"].get(route, 0)


def test_push_commits_in_batches_and_shows_waits(
    tmp_path: Path, cli_env: dict[str, str], clean_faults: EmulatorProcess
) -> None:
    emu = clean_faults
    repo = make_repo(tmp_path / "repo", cli_env)
    data = repo / "data"
    data.mkdir()
    for i in range(40):
        (data / f"f{i}").write_bytes(os.urandom(500))
    dvc(repo, cli_env, "add", "-q", "data")
    dvc(repo, cli_env, "remote", "add", "-d", "r", f"dropbox://p2-{uuid.uuid4().hex[:8]}/proj")
    emu.control(
        "POST",
        "faults",
        {
            # The small files go up in packs: their sessions come from start_batch.
            "route": "files/upload_session/start_batch",
            "status": 429,
            "reason": "too_many_requests",
            "retry_after": 2,
            "times": 1,
        },
    )
    before = emu.stats()
    proc = dvc(repo, cli_env, "push")
    after = emu.stats()
    output = proc.stdout + proc.stderr
    assert "41 files pushed" in output
    # The wait is shown to the user, once.
    assert output.count("Dropbox asked to slow down (too_many_requests)") == 1
    starts = "files/upload_session/start_batch"
    assert count(after, starts) - count(before, starts) == 1 + 1  # refused by the fault, retried
    appends = "files/upload_session/append_batch"
    assert count(after, appends) - count(before, appends) == 1  # the 40 files in one pack
    # The .dir listing alone, after them: one request.
    start = "files/upload_session/start"
    assert count(after, start) - count(before, start) == 1
    batches = count(after, "files/upload_session/finish_batch_v2") - count(
        before, "files/upload_session/finish_batch_v2"
    )
    assert 1 <= batches < 41
    for single in ("files/upload", "files/upload_session/finish"):
        assert count(after, single) == count(before, single)


def test_corrupt_download_writes_nothing_into_the_cache(
    tmp_path: Path, cli_env: dict[str, str], clean_faults: EmulatorProcess
) -> None:
    emu = clean_faults
    repo = make_repo(tmp_path / "repo", cli_env)
    content = os.urandom(5 * 1024 * 1024 + 3)
    (repo / "single.bin").write_bytes(content)
    dvc(repo, cli_env, "add", "-q", "single.bin")
    dvc(repo, cli_env, "remote", "add", "-d", "r", f"dropbox://p2-{uuid.uuid4().hex[:8]}/proj")
    dvc(repo, cli_env, "push", "-q")
    (repo / "single.bin").unlink()
    cache = repo / ".dvc" / "cache"
    for path in sorted(cache.rglob("*"), reverse=True):
        if path.is_file():
            path.unlink()
    emu.control("POST", "faults", {"route": "files/download", "corrupt_body": True, "times": 50})
    proc = dvc(repo, cli_env, "pull", "single.bin.dvc", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "is corrupt" in output and "content_hash" in output, output
    assert "Traceback" not in output
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    assert not (repo / "single.bin").exists()
    emu.control("DELETE", "faults")
    dvc(repo, cli_env, "pull", "-q", "single.bin.dvc")
    assert (repo / "single.bin").read_bytes() == content
