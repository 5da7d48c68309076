"""How the real `dvc` queries and cleans a remote with many objects (issue 5, P3 mechanisms).

Counts only, never times: the emulator's `GET /_emulator/stats` before and after one command.
One project with N separately tracked files (N `.dvc` files) is pushed once per test module.
`benchmarks/remote_queries.py` measures the same at 20,000 objects.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess

from .cli import dvc, make_repo, remote_objects
from .conftest import isolated_cli_env

N_OBJECTS = 300
LIST_PAGE = 2000  # list_folder's maximum page size
LISTING_ROUTES = ("files/list_folder", "files/list_folder/continue")


@dataclass
class TrackedRepo:
    path: Path
    env: dict[str, str]
    folder: str  # the remote's Dropbox folder, e.g. /dvc/queries-1234
    files: list[tuple[str, str]]  # (workspace name, md5) per separately tracked file


def calls_during(emulator: EmulatorProcess, action: Any) -> tuple[Any, dict[str, int]]:
    """Run `action()`; return its result and the requests per route it caused."""
    before = emulator.stats()["requests"]
    result = action()
    after = emulator.stats()["requests"]
    return result, {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def listings(calls: dict[str, int]) -> int:
    return sum(calls.get(route, 0) for route in LISTING_ROUTES)


def write_tracked_files(repo: Path, n: int) -> list[tuple[str, str]]:
    """What `dvc add data/fNNNN.txt` leaves for each file: the file, its .dvc, its cache object."""
    data = repo / "data"
    data.mkdir()
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    tracked = []
    for i in range(n):
        name = f"f{i:04d}.txt"
        content = f"separately tracked object {i}\n".encode()
        md5 = hashlib.md5(content).hexdigest()
        (data / name).write_bytes(content)
        (data / f"{name}.dvc").write_text(
            f"outs:\n- md5: {md5}\n  size: {len(content)}\n  hash: md5\n  path: {name}\n"
        )
        obj = cache / md5[:2] / md5[2:]
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(content)
        tracked.append((name, md5))
    # One pattern, not the line per file `dvc add` writes: DVC matches every path against every
    # .gitignore line (dulwich), which is quadratic in N and has nothing to do with the remote.
    (data / ".gitignore").write_text("/*.txt\n")
    return tracked


def object_key(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


@pytest.fixture(scope="module")
def tracked_repo(
    emulator: EmulatorProcess,
    dropbox_token: dict[str, Any],
    dropbox_sdk: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TrackedRepo]:
    """N separately tracked files, pushed with `dvc push` to a fresh remote folder."""
    root = tmp_path_factory.mktemp("remote-queries")
    home = root / "home"
    env = isolated_cli_env(emulator, dropbox_token, home)
    home.mkdir()
    repo = make_repo(root / "repo", env)
    files = write_tracked_files(repo, N_OBJECTS)
    folder = f"dvc/queries-{uuid.uuid4().hex[:12]}"
    dvc(repo, env, "remote", "add", "-d", "myremote", f"dropbox://{folder}")
    dvc(repo, env, "push")
    assert remote_objects(dropbox_sdk, f"/{folder}") == {object_key(m) for _, m in files}
    yield TrackedRepo(repo, env, f"/{folder}", files)


def test_status_c_lists_the_remote_instead_of_asking_per_object(
    tracked_repo: TrackedRepo, emulator: EmulatorProcess
) -> None:
    proc, calls = calls_during(
        emulator, lambda: dvc(tracked_repo.path, tracked_repo.env, "status", "-c")
    )
    assert "in sync" in proc.stdout, proc.stdout
    # A size estimate (one prefix) plus one recursive listing of 2000-entry pages.
    assert listings(calls) <= math.ceil(N_OBJECTS / LIST_PAGE) + 3, calls
    assert calls.get("files/get_metadata", 0) <= 3, calls


def test_status_c_reports_objects_missing_on_the_remote_and_push_restores_them(
    tracked_repo: TrackedRepo, emulator: EmulatorProcess, dropbox_sdk: Any
) -> None:
    from dropbox import files as dbx_files

    # The last files are never removed by the gc test, whatever the order of the tests.
    gone = tracked_repo.files[-3:]
    dropbox_sdk.files_delete_batch(
        [dbx_files.DeleteArg(f"{tracked_repo.folder}/{object_key(md5)}") for _, md5 in gone]
    )
    for _ in range(100):  # delete_batch may run asynchronously; bounded wait for it
        left = remote_objects(dropbox_sdk, tracked_repo.folder)
        if not {object_key(md5) for _, md5 in gone} & left:
            break
    proc, calls = calls_during(
        emulator, lambda: dvc(tracked_repo.path, tracked_repo.env, "status", "-c")
    )
    for name, _ in gone:
        assert f"data/{name}" in proc.stdout, proc.stdout
    assert "in sync" not in proc.stdout
    assert listings(calls) <= math.ceil(N_OBJECTS / LIST_PAGE) + 3, calls

    proc, calls = calls_during(emulator, lambda: dvc(tracked_repo.path, tracked_repo.env, "push"))
    assert "3 files pushed" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    # Committed in batches (how many depends on timing), never file by file.
    assert 1 <= calls.get("files/upload_session/finish_batch_v2", 0) <= len(gone), calls
    assert calls.get("files/upload_session/finish", 0) == 0, calls
    assert listings(calls) <= math.ceil(N_OBJECTS / LIST_PAGE) + 3, calls


def test_gc_c_deletes_unused_objects_in_batches(
    tracked_repo: TrackedRepo, emulator: EmulatorProcess, dropbox_sdk: Any
) -> None:
    removed = tracked_repo.files[: N_OBJECTS // 2]
    for name, _ in removed:
        (tracked_repo.path / "data" / f"{name}.dvc").unlink()
        (tracked_repo.path / "data" / name).unlink()
    _, calls = calls_during(
        emulator, lambda: dvc(tracked_repo.path, tracked_repo.env, "gc", "-c", "-w", "-f")
    )
    # One delete_batch job per 1000 paths, polled with delete_batch/check; no per-file deletes.
    assert calls.get("files/delete_batch", 0) == math.ceil(len(removed) / 1000), calls
    assert calls.get("files/delete_v2", 0) == 0, calls
    assert calls.get("files/delete", 0) == 0, calls
    # Both object databases DVC cleans (files/md5 and the 2.x layout at the root) are listed.
    assert listings(calls) <= 2 * (math.ceil((N_OBJECTS + 256) / LIST_PAGE) + 2), calls
    kept = {object_key(md5) for _, md5 in tracked_repo.files[N_OBJECTS // 2 :]}
    assert remote_objects(dropbox_sdk, tracked_repo.folder) == kept
