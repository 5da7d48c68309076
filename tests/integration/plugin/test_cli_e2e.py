"""The real `dvc` command with a `dropbox://` remote, against the emulator (issue 3 acceptance).

Each test works in a fresh `git init && dvc init` repository and inspects the remote side through
the SDK, never through the plugin.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from dropbox import exceptions

from tests.helpers.emulator import EmulatorProcess

from .cli import BIN, DVC, assert_clean_error, dvc, make_repo, md5_object, remote_objects, run

MiB = 1024 * 1024


def unique_folder(prefix: str) -> str:
    return f"dvc/{prefix}-{uuid.uuid4().hex[:12]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fobj:
        for block in iter(lambda: fobj.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def write_random(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as fobj:
        left = size
        while left:
            n = min(left, 8 * MiB)
            fobj.write(rng.randbytes(n))
            left -= n


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.slow
def test_push_delete_cache_pull_is_byte_identical(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    """A folder of files plus one file larger than one request (150 MiB), pushed and pulled."""
    repo = make_repo(tmp_path / "repo", cli_env)
    data = repo / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    for i in range(12):
        (data / f"file{i}.txt").write_text(f"small file {i}\n" * (i + 1))
    (data / "sub" / "empty.bin").write_bytes(b"")
    write_random(data / "sub" / "deeper" / "blob.bin", 5 * MiB + 7, seed=1)
    write_random(repo / "big.bin", 150 * MiB + 3 * MiB + 17, seed=2)
    before = tree_digest(data)
    big_before = sha256_file(repo / "big.bin")

    dvc(repo, cli_env, "add", "data", "big.bin")
    # The exact URL of the user guide; the session emulator is shared, so start from nothing.
    with contextlib.suppress(exceptions.ApiError):
        dropbox_sdk.files_delete_v2("/dvc/my-project")
    dvc(repo, cli_env, "remote", "add", "-d", "myremote", "dropbox://dvc/my-project")
    dvc(repo, cli_env, "push")

    objects = remote_objects(dropbox_sdk, "/dvc/my-project")
    big_md5 = yaml.safe_load((repo / "big.bin.dvc").read_text())["outs"][0]["md5"]
    assert f"files/md5/{big_md5[:2]}/{big_md5[2:]}" in objects
    assert md5_object((data / "file3.txt").read_bytes()) in objects
    big_path = f"/dvc/my-project/files/md5/{big_md5[:2]}/{big_md5[2:]}"
    big_meta = dropbox_sdk.files_get_metadata(big_path)
    assert big_meta.size == 153 * MiB + 17

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(data)
    (repo / "big.bin").unlink()
    dvc(repo, cli_env, "pull")
    assert tree_digest(data) == before
    assert sha256_file(repo / "big.bin") == big_before


def test_status_fetch_and_gc(tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any) -> None:
    folder = unique_folder("gc")
    repo = make_repo(tmp_path / "repo", cli_env)
    data = repo / "data"
    data.mkdir()
    (data / "a.txt").write_text("version 1 of a\n")
    (data / "b.txt").write_text("b stays\n")
    dvc(repo, cli_env, "add", "data")
    dvc(repo, cli_env, "remote", "add", "-d", "myremote", f"dropbox://{folder}")

    status = dvc(repo, cli_env, "status", "-c")
    assert "new:" in status.stdout
    dvc(repo, cli_env, "push")
    assert "in sync" in dvc(repo, cli_env, "status", "-c").stdout
    old = remote_objects(dropbox_sdk, f"/{folder}")
    assert md5_object(b"version 1 of a\n") in old

    # fetch: objects come back into an empty cache; checkout needs no network.
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(data)
    dvc(repo, cli_env, "fetch")
    assert (repo / ".dvc" / "cache" / md5_object(b"b stays\n")).is_file()
    dvc(repo, cli_env, "checkout")
    assert (data / "a.txt").read_text() == "version 1 of a\n"

    # A second version makes the first one's objects unreferenced in the workspace.
    (data / "a.txt").write_text("version 2 of a\n")
    dvc(repo, cli_env, "add", "data")
    dvc(repo, cli_env, "push")
    dir_md5 = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    current = {
        md5_object(b"version 2 of a\n"),
        md5_object(b"b stays\n"),
        f"files/md5/{dir_md5[:2]}/{dir_md5[2:]}",
    }
    before_gc = remote_objects(dropbox_sdk, f"/{folder}")
    assert current <= before_gc
    assert len(before_gc) == 5  # + old a + old .dir

    dvc(repo, cli_env, "gc", "-c", "-w", "-f")
    assert remote_objects(dropbox_sdk, f"/{folder}") == current
    assert "in sync" in dvc(repo, cli_env, "status", "-c").stdout


@pytest.fixture
def external_folder(dropbox_sdk: Any) -> str:
    """A Dropbox folder with data that is not a DVC remote (for ls-url/get-url/import-url)."""
    folder = unique_folder("ext")
    dropbox_sdk.files_upload(b"x contents\n", f"/{folder}/dir/x.txt")
    dropbox_sdk.files_upload(b"y contents\n", f"/{folder}/dir/sub/y.txt")
    dropbox_sdk.files_upload(b"first\n", f"/{folder}/file.txt")
    return folder


def test_ls_url_and_get_url(tmp_path: Path, cli_env: dict[str, str], external_folder: str) -> None:
    base = f"dropbox://{external_folder}"
    listing = dvc(tmp_path, cli_env, "ls-url", f"{base}/dir").stdout.split()
    assert sorted(listing) == ["sub", "x.txt"]
    recursive = dvc(tmp_path, cli_env, "ls-url", "-R", f"{base}/dir").stdout.split()
    assert sorted(recursive) == ["sub/y.txt", "x.txt"]

    dvc(tmp_path, cli_env, "get-url", f"{base}/file.txt", "got.txt")
    assert (tmp_path / "got.txt").read_text() == "first\n"
    dvc(tmp_path, cli_env, "get-url", f"{base}/dir", "gotdir")
    assert (tmp_path / "gotdir" / "sub" / "y.txt").read_text() == "y contents\n"
    assert (tmp_path / "gotdir" / "x.txt").read_text() == "x contents\n"

    missing = dvc(tmp_path, cli_env, "get-url", f"{base}/nope.txt", "x", check=False)
    assert_clean_error(missing, "nope.txt")


def test_import_url_and_update(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any, external_folder: str
) -> None:
    from dropbox import files

    repo = make_repo(tmp_path / "repo", cli_env)
    url = f"dropbox://{external_folder}/file.txt"
    dvc(repo, cli_env, "import-url", url, "imported.txt")
    assert (repo / "imported.txt").read_text() == "first\n"
    dep = yaml.safe_load((repo / "imported.txt.dvc").read_text())["deps"][0]
    meta = dropbox_sdk.files_get_metadata(f"/{external_folder}/file.txt")
    assert dep["checksum"] == meta.content_hash  # Dropbox's content_hash is DVC's checksum
    assert dep["path"] == url

    dvc(repo, cli_env, "import-url", f"dropbox://{external_folder}/dir", "imported_dir")
    assert (repo / "imported_dir" / "sub" / "y.txt").read_text() == "y contents\n"

    dropbox_sdk.files_upload(
        b"second\n", f"/{external_folder}/file.txt", mode=files.WriteMode.overwrite
    )
    dvc(repo, cli_env, "update", "imported.txt.dvc")
    assert (repo / "imported.txt").read_text() == "second\n"
    dep = yaml.safe_load((repo / "imported.txt.dvc").read_text())["deps"][0]
    meta = dropbox_sdk.files_get_metadata(f"/{external_folder}/file.txt")
    assert dep["checksum"] == meta.content_hash


def test_dvc_api_open_and_read(tmp_path: Path, cli_env: dict[str, str]) -> None:
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "data").mkdir()
    (repo / "data" / "a.txt").write_text("api contents\n")
    dvc(repo, cli_env, "add", "data")
    dvc(repo, cli_env, "remote", "add", "-d", "myremote", f"dropbox://{unique_folder('api')}")
    dvc(repo, cli_env, "push")
    shutil.rmtree(repo / ".dvc" / "cache")

    script = (
        "import dvc.api\n"
        "print(dvc.api.read('data/a.txt'), end='')\n"
        "with dvc.api.open('data/a.txt') as f:\n"
        "    print(f.read(), end='')\n"
        "print(dvc.api.get_url('data/a.txt'))\n"
    )
    out = run([str(BIN / "python"), "-c", script], repo, cli_env).stdout
    lines = out.splitlines()
    assert lines[:2] == ["api contents", "api contents"]
    assert lines[2].startswith("dropbox://dvc/api-") and "/files/md5/" in lines[2]


def assert_objects_intact(sdk: Any, folder: str) -> set[str]:
    """Every object below the remote folder holds exactly the bytes its md5 name says."""
    objects = remote_objects(sdk, folder)
    for obj in objects:
        _, response = sdk.files_download(f"{folder}/{obj}")
        try:
            digest = hashlib.md5()
            for block in response.iter_content(4 * MiB):
                digest.update(block)
        finally:
            response.close()
        name = obj.split("/", 2)[2].replace("/", "")
        assert digest.hexdigest() == name.removesuffix(".dir"), obj
    return objects


def test_interrupted_push_resumes_without_truncated_objects(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any, emulator: EmulatorProcess
) -> None:
    folder = unique_folder("killed")
    repo = make_repo(tmp_path / "repo", cli_env)
    (repo / "data").mkdir()
    for i in range(6):
        write_random(repo / "data" / f"part{i}.bin", 6 * MiB + i, seed=10 + i)
    dvc(repo, cli_env, "add", "data")
    dvc(repo, cli_env, "remote", "add", "-d", "myremote", f"dropbox://{folder}")
    dvc(repo, cli_env, "remote", "modify", "myremote", "chunk_size", "4MiB")

    bytes_before = emulator.stats()["bytes_in"]
    emulator.control("POST", "config", {"latency_ms": 40})
    try:
        proc = subprocess.Popen(
            [DVC, "push", "-j", "2"],
            cwd=repo,
            env=cli_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if emulator.stats()["bytes_in"] - bytes_before >= 10 * MiB:
                break
            time.sleep(0.05)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        emulator.control("POST", "config", {"latency_ms": 0})
    assert killed, "push finished before it could be interrupted"
    assert_objects_intact(dropbox_sdk, f"/{folder}")  # partial push: nothing truncated

    dvc(repo, cli_env, "push")
    objects = assert_objects_intact(dropbox_sdk, f"/{folder}")
    assert len(objects) == 7  # six files and the .dir object
    assert "in sync" in dvc(repo, cli_env, "status", "-c").stdout
