"""Objects verified by their name, through the real `dvc` (issue 11, item 3).

A DVC object's remote path names its md5; a download whose bytes do not have it installs
nothing, and the run ends with DVC's own "N files failed to download", never "unexpected error".
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dropbox import files

from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.cli import dvc, make_repo


@pytest.fixture
def clean_faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()


def cache_files(repo: Path) -> dict[str, bytes]:
    cache = repo / ".dvc" / "cache"
    return {str(p.relative_to(cache)): p.read_bytes() for p in cache.rglob("*") if p.is_file()}


def empty_cache(repo: Path) -> None:
    cache = repo / ".dvc" / "cache"
    for path in sorted(cache.rglob("*"), reverse=True):
        if path.is_file():
            path.unlink()


def pushed_repo(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str, dict[str, bytes]]:
    """A repo with data/{a,b}.bin pushed to a fresh remote folder; workspace and cache emptied."""
    repo = make_repo(tmp_path / "repo", env)
    (repo / "data").mkdir()
    contents = {"a.bin": os.urandom(3000), "b.bin": os.urandom(4000)}
    for name, data in contents.items():
        (repo / "data" / name).write_bytes(data)
    dvc(repo, env, "add", "-q", "data")
    folder = f"integrity-{uuid.uuid4().hex[:8]}/proj"
    dvc(repo, env, "remote", "add", "-d", "r", f"dropbox://{folder}")
    dvc(repo, env, "push", "-q")
    for name in contents:
        (repo / "data" / name).unlink()
    empty_cache(repo)
    return repo, "/" + folder, contents


def object_path(folder: str, data: bytes) -> str:
    md5 = hashlib.md5(data).hexdigest()
    return f"{folder}/files/md5/{md5[:2]}/{md5[2:]}"


def test_object_overwritten_in_dropbox_is_not_installed(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any, clean_faults: EmulatorProcess
) -> None:
    repo, folder, contents = pushed_repo(tmp_path, cli_env)
    victim = object_path(folder, contents["a.bin"])
    other = os.urandom(3000)
    dropbox_sdk.files_upload(other, victim, mode=files.WriteMode.overwrite)

    proc = dvc(repo, cli_env, "pull", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "does not hold the DVC object its name says" in output, output
    assert victim in output  # names the object
    assert "Delete it in Dropbox, then push that object again from a DVC cache" in output
    assert output.count("does not hold the DVC object") == 1, output  # retries say it briefly
    assert "files failed to download" in output, output
    assert "unexpected error" not in output and "Traceback" not in output, output
    assert other not in cache_files(repo).values()  # the wrong bytes reached no cache file
    assert not (repo / "data" / "a.bin").exists()
    assert not any(p.name.endswith(".tmp") for p in (repo / ".dvc" / "cache").rglob("*"))


def test_a_corrupt_download_is_tried_again(
    tmp_path: Path, cli_env: dict[str, str], clean_faults: EmulatorProcess
) -> None:
    repo, _, contents = pushed_repo(tmp_path, cli_env)
    clean_faults.fault(route="files/download", corrupt_body=True, times=1)
    proc = dvc(repo, cli_env, "pull", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "downloading it again" in output
    for name, data in contents.items():
        assert (repo / "data" / name).read_bytes() == data


def test_a_download_that_stays_corrupt_fails_per_file(
    tmp_path: Path, cli_env: dict[str, str], clean_faults: EmulatorProcess
) -> None:
    # Files added one by one: no `.dir` listing, whose read (DVC loads it before the objects)
    # would end the run before any per-file download.
    repo = make_repo(tmp_path / "repo", cli_env)
    for name in ("a.bin", "b.bin"):
        (repo / name).write_bytes(os.urandom(3000))
        dvc(repo, cli_env, "add", "-q", name)
    dvc(repo, cli_env, "remote", "add", "-d", "r", f"dropbox://integrity-{uuid.uuid4().hex[:8]}/p")
    dvc(repo, cli_env, "push", "-q")
    for name in ("a.bin", "b.bin"):
        (repo / name).unlink()
    empty_cache(repo)
    clean_faults.fault(route="files/download", corrupt_body=True, times=10)
    proc = dvc(repo, cli_env, "pull", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "is corrupt" in output, output
    assert "2 files failed to download" in output, output
    assert "unexpected error" not in output and "Traceback" not in output, output
    assert not (repo / "a.bin").exists() and not (repo / "b.bin").exists()
    assert cache_files(repo) == {}


def test_a_dir_listing_that_stays_corrupt_is_one_clear_error(
    tmp_path: Path, cli_env: dict[str, str], clean_faults: EmulatorProcess
) -> None:
    repo, _, _ = pushed_repo(tmp_path, cli_env)
    clean_faults.fault(route="files/download", corrupt_body=True, times=100)
    proc = dvc(repo, cli_env, "pull", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert ".dir is corrupt" in output, output
    assert "unexpected error" not in output and "Traceback" not in output, output
    assert not (repo / "data" / "a.bin").exists()
    assert [k for k in cache_files(repo) if not k.endswith(".dir")] == []


def test_verify_is_a_remote_option(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    dvc(repo, cli_env, "remote", "add", "r", "dropbox://x/y")
    dvc(repo, cli_env, "remote", "modify", "r", "verify", "true")
    assert "verify = true" in (repo / ".dvc" / "config").read_text()
